"""`harness parse` on real Caffe logs as people pasted them (tests/real_logs/: NN-name.log beside NN-name.yaml,
which holds its source and the diagnosis a Caffe expert gave it): a real process per log, and its verdict
must reach that diagnosis: the anomaly's kind, its iteration or range, the layer, blob or output named;
status ok for the healthy ones; exit 2 for what is not a Caffe log at all.
"""
import json
import re
from pathlib import Path

import pytest
import yaml

from harness_run import harness

CORPUS = Path(__file__).parent / "real_logs"
LOGS = sorted(CORPUS.glob("*.yaml"))

# The corpus' kind -> the verdict kinds that state it. Where they differ: a loss head the corpus names as
# such is the nonfinite finding's output when it went non-finite; an lr the corpus calls out of range is
# nonfinite when it is nan; a test net at chance while the train loss falls is the test_at_chance rule.
KINDS = {
    "nonfinite": {"nonfinite"},
    "loss_head": {"nonfinite", "loss_head"},
    "lr_out_of_range": {"nonfinite", "lr_out_of_range"},
    "exploding": {"exploding"},
    "dead": {"dead"},
    "batchnorm_empty_stats": {"batchnorm_empty_stats"},
    "saturated_softmax_loss": {"saturated_softmax_loss"},
    "no_learning_signal": {"no_learning_signal"},
    "stuck_at_chance": {"stuck_at_chance"},
    "collapse_to_chance": {"collapse_to_chance"},
    "test_at_chance_train_learns": {"test_at_chance"},
}
# The corpus names an element of an output of several elements "accuracy (#2)"; the verdict as parse --csv does.
_ELEMENT = re.compile(r" \(#(\d+)\)$")
# A number Caffe printed as nan or inf (not the words in prose): after "=" or ":", or MSVC's 1.#QNAN.
_PRINTED_NONFINITE = re.compile(r"(?:[=:]\s*[-+]?(?:nan|inf)\b|\d\.#(?:QNAN|IND|INF))", re.I)


def _diagnosis(path: Path) -> dict:
    """The expert's diagnosis; where harness parse disagrees for a reason it gives in `harness_note`, the
    diagnosis written there (the expert's stays in the file, for the record)."""
    case = yaml.safe_load(path.read_text())
    return (case.get("harness_note") or {}).get("diagnosis") or case["diagnosis"]


def _parse(path: Path, out: Path):
    result = harness("parse", path.with_suffix(".log"), "--out", out, "--quiet", "--no-html")
    verdict = json.loads((out / "verdict.json").read_text()) if (out / "verdict.json").exists() else None
    return result, verdict


def _found(verdict: dict, expected: dict):
    """The verdict's first finding of the expected kind (the anomaly first, then the warnings)."""
    kinds = KINDS[expected["kind"]]
    return next((f for f in [verdict["anomaly"]] + verdict["warnings"] if f and f["kind"] in kinds), None)


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_harness_parse_reaches_the_experts_diagnosis(path, tmp_path):
    expected = _diagnosis(path)
    result, verdict = _parse(path, tmp_path / "out")
    assert "Traceback" not in result.stderr
    if expected["kind"] == "not_a_caffe_log":
        assert result.returncode == 2 and verdict is None
        assert "no line was recognised as Caffe's" in result.stderr and "read " in result.stderr
        return
    assert verdict is not None, result.stderr
    if expected["status"] == "ok":
        assert (result.returncode, verdict["status"], verdict["anomaly"]) == (0, "ok", None), verdict["anomaly"]
        assert verdict["warnings"] == [], [w["message"] for w in verdict["warnings"]]
        return
    if expected["kind"] == "fatal":
        assert (result.returncode, verdict["status"]) == (2, "error") and verdict["caffe_error"]
        return
    found = _found(verdict, expected)
    assert found is not None, (verdict["anomaly"], verdict["warnings"])
    # The paste has no `Iteration` line: the verdict calls its one pass iteration 0.
    iteration = expected["iteration"] if expected["iteration"] is not None else 0
    assert found["iteration"] == iteration
    assert found.get("iteration_range") == expected["iteration_range"]
    assert found["net"] == (expected["net"] or "train")
    for key in ("layer", "blob", "output"):
        if expected[key] is not None:
            assert found.get(key) == _ELEMENT.sub(r"#\1", expected[key]), key


@pytest.mark.parametrize("path", [p for p in LOGS if _diagnosis(p)["kind"] != "not_a_caffe_log"
                                  and _PRINTED_NONFINITE.search(p.with_suffix(".log").read_text(errors="replace"))],
                         ids=lambda p: p.stem)
def test_no_log_that_prints_a_nan_or_inf_is_ok(path, tmp_path):
    result, verdict = _parse(path, tmp_path / "out")
    assert verdict["status"] != "ok" and result.returncode != 0
