"""The action registry (ledger/domain/actions.py): one definition per action, every view of it
derived from it, and every view covering every action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest

from cli.case_commands import case_group, command_for, reverse_check_group
from ledger import ACTIONS, action_catalogue, fields_of, import_schema
from ledger.domain.actions import (
    CASE_ACTION_NAMES,
    REGISTRY,
    Action,
    F,
    custody_steps,
    markdown,
    permissions_for,
)
from ledger.domain.cases import REVERSE_CHECK_ACTIONS
from ledger.domain.policy import DEFAULT_PERMISSIONS, Policy
from projections import fold
from projections.accountability import CUSTODY
from projections.events import LedgerEvent
from projections.labels import LABELS
from schemas.actions import (
    ACTION_MODELS,
    CASE_ACTIONS,
    CODE_LABELS,
    DIRECTORY_ACTIONS,
    ENUM_KINDS,
    Model,
)

ROOT = Path(__file__).resolve().parents[1]
CASE = [a for a in ACTIONS if a.stream == "case"]

#: The default grants of rules versions 1-2 as the release before the registry wrote them.
RULES_2_GRANTS = {
    "admin": {"unit.add", "actor.add", "actor.rotate_key", "actor.revoke_key"},
    "registrar": {"register", "petitioner_sign", "desist", "review_request"},
    "petition_office": {"accept", "assign", "close", "reopen"},
    "handler": {"progress", "reply", "attest"},
    "unit_leader": {"extend", "consent"},
    "leader": {"supervise", "package", "register"},
    "supervisor": {"supervise", "remind"},
    "inspector": {"reverse_check_open", "reverse_check_finding", "reverse_check_conclude"},
    "reviewer": {"review_decide"},
    "petitioner": {"petitioner_sign"},
}


def test_every_model_has_one_definition_and_every_definition_a_model() -> None:
    assert list(REGISTRY) == [a.name for a in ACTIONS]   # names are unique
    assert set(REGISTRY) == set(ACTION_MODELS)
    assert {a.name for a in ACTIONS if a.stream == "case"} == set(CASE_ACTIONS)
    assert {a.name for a in ACTIONS if a.stream == "directory"} == set(DIRECTORY_ACTIONS)
    assert set(CASE_ACTION_NAMES) == set(CASE_ACTIONS)


@pytest.mark.parametrize("definition", ACTIONS, ids=lambda a: a.name)
def test_every_field_is_described_and_no_description_is_stray(definition: Action) -> None:
    assert set(definition.fields) == set(definition.model.model_fields), definition.name
    for info in fields_of(definition):
        assert info.spec.zh and info.spec.en and info.spec.help
        if info.kind in ("code", "codes"):
            assert info.label_kind in CODE_LABELS, (definition.name, info.name)
            for code in info.choices or ():
                assert code in CODE_LABELS[info.label_kind], (definition.name, code)


@pytest.mark.parametrize("definition", CASE, ids=lambda a: a.name)
def test_every_case_action_has_a_rule_an_effect_labels_and_roles(definition: Action) -> None:
    assert definition.check is not None
    if definition.name == "register":
        assert definition.create is not None and definition.effect is None
    else:
        assert definition.effect is not None and definition.create is None
    assert definition.zh and definition.en and definition.help and definition.example
    assert definition.example.startswith(f"xinfang {definition.group} {definition.cli_name} ")
    assert definition.roles and definition.scope
    assert LABELS["action"][definition.name] == (definition.zh, definition.en)


def test_every_code_list_is_labelled() -> None:
    for enum, kind in ENUM_KINDS.items():
        assert {e.value for e in enum} <= set(CODE_LABELS[kind]), kind
        assert LABELS[kind] == CODE_LABELS[kind]
    coded = {f.label_kind for a in ACTIONS for f in fields_of(a) if f.label_kind}
    assert coded <= set(CODE_LABELS)


def test_role_grants_come_from_the_registry_per_rules_version() -> None:
    newest = permissions_for(3)
    assert Policy().permissions == newest == DEFAULT_PERMISSIONS
    for a in CASE:
        assert any(a.name in acts for acts in newest.values()), a.name
    assert {role: set(acts) for role, acts in permissions_for(2).items()} == RULES_2_GRANTS
    assert {role: set(acts) for role, acts in Policy(rules=2).permissions.items()} == \
        RULES_2_GRANTS
    assert "extend" in newest["leader"] and "extend" not in newest["unit_leader"]
    assert "hearing" in newest["reviewer"] and "report_back" in newest["handler"]


def test_the_read_model_fold_covers_every_case_action_and_refuses_others() -> None:
    assert set(fold._APPLY) == set(CASE_ACTION_NAMES) - {"register"}
    row = fold.register(_event("register", {"channel": "letter", "source": "direct",
                                            "category": "help", "petitioner": "p",
                                            "summary": "s"}), Policy())
    with pytest.raises(fold.UnknownEventType, match="bogus"):
        fold.apply(row, _event("bogus", {}, seq=2), Policy())
    with pytest.raises(fold.UnknownEventType):   # also before a registration
        fold.apply(None, _event("actor.add", {}, seq=2), Policy())


def _event(kind: str, data: dict[str, Any], seq: int = 1) -> LedgerEvent:
    return LedgerEvent(seq, "XF-2025-000001", seq, kind, "2025-03-02T09:00:00+08:00",
                       "2025-03-02", "registrar-01", data, b"")


def test_custody_and_reverse_checks_come_from_the_registry() -> None:
    assert custody_steps() == CUSTODY
    assert set(CUSTODY) == {a.name for a in CASE if a.group == "case"}
    assert tuple(a.name for a in ACTIONS if a.group == "reverse-check") == REVERSE_CHECK_ACTIONS


def _option_names(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option)
            and p.name is not None}


@pytest.mark.parametrize("definition", CASE, ids=lambda a: a.name)
def test_every_case_action_has_its_command_with_an_option_per_field(definition: Action
                                                                    ) -> None:
    group = case_group if definition.group == "case" else reverse_check_group
    command = group.commands[definition.cli_name]
    assert command.help is not None and definition.help in command.help
    options = _option_names(command)
    for info in fields_of(definition):
        option = options[info.name]
        assert info.flag in option.opts
        assert option.multiple == info.multiple or option.is_flag
        if info.choices is not None:   # the model's codes, each shown with its label
            assert getattr(option.type, "codes", None) == list(info.choices)
            assert all(f"{c} " in (option.help or "") for c in info.choices)
        if info.required and info.default is None:
            assert option.required, (definition.name, info.name)
    assert ("case_no" in {p.name for p in command.params}) == (definition.name != "register")


def test_import_schema_and_catalogue_hold_every_action() -> None:
    schema = import_schema()
    assert set(schema["properties"]["action"]["enum"]) == set(REGISTRY)
    for a in ACTIONS:
        sub = schema["$defs"][a.model.__name__]
        assert sub["title"].startswith(a.name) and a.zh in sub["title"]
        for name in a.fields:
            assert sub["properties"][name]["description"] == a.fields[name].help
    catalogue = json.loads(json.dumps(action_catalogue(), ensure_ascii=False))
    assert [c["name"] for c in catalogue] == [a.name for a in ACTIONS]
    extend = next(c for c in catalogue if c["name"] == "extend")
    assert extend["label"] == {"zh": "延期", "en": "extension"} and extend["roles"] == ["leader"]
    assert extend["article"] == "Art. 34" and extend["command"] == ["case", "extend"]
    assert [f["name"] for f in extend["fields"]] == ["days", "reason", "notified_at"]
    assert [f["type"] for f in extend["fields"]] == ["int", "text", "time"]
    accept = next(c for c in catalogue if c["name"] == "accept")
    ground = next(f for f in accept["fields"] if f["name"] == "ground")
    assert {"code": "legal_procedure", "zh": "涉法涉诉，导入法定途径",
            "en": "belongs to a legal procedure"} in ground["choices"]
    assert not ground["required"] and ground["label"]["zh"] == "不予受理依据"
    register = next(c for c in catalogue if c["name"] == "register")
    category = next(f for f in register["fields"] if f["name"] == "category")
    assert category["type"] == "code" and category["open_choices"]
    assert next(c for c in action_catalogue(2) if c["name"] == "extend")["roles"] == \
        ["unit_leader"]
    assert next(c for c in action_catalogue(2) if c["name"] == "hearing")["roles"] == []


def test_the_docs_table_is_the_registry() -> None:
    text = (ROOT / "docs" / "actions.md").read_text(encoding="utf-8")
    assert text == markdown(), "regenerate docs/actions.md (its header says how)"
    for a in ACTIONS:
        assert f"| `{a.name}` | {a.zh} |" in text


def test_an_action_defined_once_gets_every_derived_view(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """What "adding an action touches two files" buys: a model and a definition, and the
    command, its options, the grants, the catalogue and the docs follow."""
    class Note(Model):
        text: str
        urgent: bool = False

    note = Action("case_note", "备注", "note", "Add a note.", "xinfang case case-note X",
                  ("handler",), "the handler",
                  {"text": F("内容", "text", "What to note."),
                   "urgent": F("紧急", "urgent", "Mark it urgent.")},
                  check=lambda *args: None, effect=lambda case, fact: None, read_model=False)
    monkeypatch.setitem(ACTION_MODELS, "case_note", Note)
    monkeypatch.setattr("ledger.domain.actions.ACTIONS", (*ACTIONS, note))
    command = command_for(note)
    assert command.name == "case-note"
    assert [(o.flag, o.is_flag) for o in command.options] == [("--text", False),
                                                              ("--urgent", True)]
    assert "case_note" in permissions_for(3)["handler"]
    assert "`case_note` | 备注" in markdown()


def test_the_demo_year_exercises_every_case_action() -> None:
    from cli.scenario import build_scenario, reverse_check_commands

    scenario = build_scenario(2025)
    written = {c.action for c in scenario.commands}

    class Ledger:   # the stored reply the reverse-check commands cite
        class store:  # noqa: N801
            @staticmethod
            def stream(case: str) -> list[Any]:
                return []

    assert set(CASE_ACTION_NAMES) - set(REVERSE_CHECK_ACTIONS) <= written
    assert reverse_check_commands(Ledger(), scenario) == []   # no stored reply, none cited
    data = [c.data for c in scenario.commands]
    assert any("received_at" in d for d in data) and any("new_facts" in d for d in data)
    assert any("notified_at" in d for d in data if "days" in d)
    assert any(d.get("form") == "notice" for d in data if "authority" in d)
    assert any("ground" in d for d in data if d.get("decision") == "not_accepted")
    assert any("served_at" in d for d in data if d.get("level") and "decision" in d)
    assert all(d.get("reason") for d in data if d.get("form") == "refused")
