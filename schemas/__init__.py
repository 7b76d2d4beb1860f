"""The command schemas (pydantic): what each action's data may hold, and the import line.

The public API of this package (``cli/`` imports only from here):

* the code lists: :class:`Channel` (渠道), :class:`Source` (来源), :class:`Decision`,
  :class:`SupervisionForm`, :class:`Outcome`, :class:`Resolution`, :class:`Opinion`,
  :class:`SignForm`, :class:`ReviewLevel`, :class:`ReviewDecision`, :class:`Role`,
  :class:`NotAcceptedGround`, :class:`Measure`, :class:`Responsibility`; their labels
  :data:`CODE_LABELS` (kind → code → (中文, English)) and :data:`ENUM_KINDS`;
* :data:`ACTION_MODELS` (action → model; :data:`CASE_ACTIONS`, :data:`DIRECTORY_ACTIONS`),
  :func:`parse_data` (validated, normalised data), :func:`data_problem` (why data is invalid);
* input in people's terms: :func:`local_time` / :func:`local_times` (no offset = Beijing time,
  a date alone = 00:00), :func:`plain_errors` and :func:`field_name` (pydantic's errors as
  plain sentences per field);
* :class:`ImportLine` and :func:`import_line_schema` (the JSON Schema ``xinfang schema`` prints).
"""

from schemas.actions import (
    ACTION_MODELS,
    CASE_ACTIONS,
    CODE_LABELS,
    DIRECTORY_ACTIONS,
    ENUM_KINDS,
    Channel,
    Decision,
    ImportLine,
    Measure,
    NotAcceptedGround,
    Opinion,
    Outcome,
    Resolution,
    Responsibility,
    ReviewDecision,
    ReviewLevel,
    Role,
    SignForm,
    Source,
    SupervisionForm,
    data_problem,
    field_name,
    import_line_schema,
    local_time,
    local_times,
    parse_data,
    plain_errors,
)

__all__ = [
    "ACTION_MODELS", "CASE_ACTIONS", "CODE_LABELS", "DIRECTORY_ACTIONS", "ENUM_KINDS", "Channel",
    "Decision", "ImportLine", "Measure", "NotAcceptedGround",
    "Opinion", "Outcome", "Resolution", "Responsibility", "ReviewDecision", "ReviewLevel",
    "Role", "SignForm",
    "Source", "SupervisionForm", "data_problem", "field_name", "import_line_schema", "local_time",
    "local_times", "parse_data", "plain_errors",
]
