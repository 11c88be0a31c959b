"""verdict.json contract (issue 3): fields, anomaly vs warnings, exit codes, nan/inf as strings."""
from __future__ import annotations

import json

import pytest

from harness.rules import verdict
from harness.rules.findings import HALT, WARN, Finding

CONTRACT = {"status", "iterations_run", "anomaly", "warnings", "crosscheck", "caffe_error"}
ENTRY = {"kind", "iteration", "phase", "layer", "blob", "value", "message", "suggestions"}


def finding(kind="nonfinite", severity=HALT, layer="fc2", value=float("nan")):
    return Finding(kind=kind, severity=severity, iteration=3, phase="forward", layer=layer, blob=layer,
                   value=value, message="m", suggestions=("`base_lr: 0.5 -> 0.05` in s.prototxt",))


def test_a_halted_verdict_follows_the_contract(tmp_path):
    findings = [finding("exploding", WARN, "fc1", float("inf")), finding()]
    result = verdict.build("halted", 4, findings, {"compared": 10, "mismatched": 0, "unmatched_log_lines": 0,
                                                    "max_rel_error": 1e-7, "mismatches": []}, None, source="live")
    assert CONTRACT <= set(result) and result["source"] == "live"
    assert ENTRY <= set(result["anomaly"]) and result["anomaly"]["layer"] == "fc2"
    assert [w["kind"] for w in result["warnings"]] == ["exploding"]
    assert result["crosscheck"]["compared"] == 10 and result["crosscheck"]["mismatches"] == []
    assert verdict.exit_code(result) == 1
    written = json.loads(verdict.write(tmp_path / "verdict.json", result).read_text())
    assert written["anomaly"]["value"] == "nan" and written["warnings"][0]["value"] == "inf"
    assert written["crosscheck"]["max_rel_error"] == 1e-7


def test_ok_and_error_verdicts():
    ok = verdict.build("ok", 100, [finding("vanishing", WARN)], None, None)
    assert ok["anomaly"] is None and len(ok["warnings"]) == 1 and verdict.exit_code(ok) == 0
    assert ok["crosscheck"] == {"compared": 0, "mismatched": 0, "unmatched_log_lines": 0, "max_rel_error": 0.0}
    error = verdict.build("error", 0, [], None, "F1123 net.cpp:757] Check failed: ...")
    assert verdict.exit_code(error) == 2 and error["caffe_error"].startswith("F1123")


def test_inconsistent_verdicts_are_refused():
    with pytest.raises(ValueError):
        verdict.build("halted", 3, [finding(severity=WARN)], None, None)
    with pytest.raises(ValueError):
        verdict.build("fine", 3, [], None, None)
    with pytest.raises(ValueError):
        verdict.build("ok", 3, [], None, None, anomaly={})
