"""The benchmark runs end to end and reports every figure (no timing is asserted here)."""

from __future__ import annotations

from bench.runner import TARGETS, Sizes, run_bench
from tests.conftest import PG_DSN

TINY = Sizes(single_commands=20, bulk_cases=30, small=400, large=1200, memory_small=400,
             memory_large=1200)


def test_bench_reports_every_figure_in_order() -> None:
    result = run_bench("sqlite", quick=True, pg_url=PG_DSN, sizes=TINY)
    assert list(result)[:len(TARGETS)] == list(TARGETS)
    for name in TARGETS:
        assert result[name] is not None and result[name] > 0, name
    assert result["verify_ok"] is True
    assert result["sizes"]["history_and_proof"][1] >= 1200
    for raw in ("signed_command_rate", "plain_single_save_rate", "bulk_import_rate",
                "plain_batched_save_rate", "verify_rate", "raw_ed25519_verify_rate_one_core",
                "projection_rate", "raw_notification_read_rate",
                "raw_cryptography_verify_rate_one_core", "verify_rate_threads",
                "verify_rate_processes"):
        assert result[raw] > 0, raw
    # verify_ratio's baseline is libsodium, measured at both ends of the run
    assert result["raw_ed25519_verify_rate_one_core"] == \
        sum(result["raw_libsodium_verify_rates"]) / 2
    assert result["verify_1m_seconds"] == 1_000_000 / result["verify_rate"]
    assert result["verify_1m_measured"] is False
