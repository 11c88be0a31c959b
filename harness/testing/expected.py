"""expected.yaml: the verdict a net folder must get, read and validated, and compared with a verdict.

expected.yaml (every key optional; see docs/zoo.md):
    status: halted                      # ok | halted | error, exact
    iterations_run: 12                  # exact
    anomaly: {kind: nonfinite, iteration: 7, phase: forward, layer: ip2, blob: ip2}   # or null
    warnings: [{kind: exploding}]       # each entry must match one warning; [] means "no warnings"
    warn_before_anomaly: [exploding]    # a warning of that kind at an iteration before the anomaly's
    min_test_accuracy: 0.9              # every `accuracy*` output of the last test pass in caffe.log
    crosscheck: {mismatched: 0, unmatched_log_lines: 0}   # counts of the cross-check summary, exact
    train_args: [--weights, source.caffemodel]    # appended to `harness train` (run in the net folder)
    from_log: {anomaly: {layer: data}}  # where the verdict from the log alone must differ (see below)
    marks: [slow]                       # pytest marks of the net's items (the plugin; select with -m)
A mapping matches a verdict entry when each of its keys holds exactly the same value there.

A verdict judged from a log (`harness parse`) must meet the same pins, except for what only a live run can
know (iterations_run, the cross-check) and what `from_log` overrides: a log prints Caffe's float mean, so
where that overflows to `inf` before any element is non-finite, the log cannot tell the two apart.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import yaml

from ..core.errors import HarnessError

STATUSES = ("ok", "halted", "error")
FINDING_KEYS = {"kind", "iteration", "phase", "net", "layer", "blob", "value", "message", "severity", "rule"}
# How to run and collect the net, not what its verdict must be.
SETTINGS = {"train_args", "from_log", "marks"}
PINS = {"status", "iterations_run", "anomaly", "warnings", "warn_before_anomaly", "min_test_accuracy", "crosscheck"}
TOP_KEYS = PINS | SETTINGS
# What a log cannot decide: how far a halted run would have gone, and the cross-check.
LIVE_ONLY_KEYS = {"iterations_run", "crosscheck"}
CROSSCHECK_KEYS = {"compared", "mismatched", "unmatched_log_lines", "unmatched_harness_values"}
# The test pass's outputs as Caffe logs them: "Test net output #0: accuracy = 0.97".
_TEST_OUTPUT = re.compile(r"Test net output #\d+: (\S+) = (\S+)")
_TESTING = re.compile(r"Iteration \d+, Testing net \(#\d+\)")


def load_expected(path: Path) -> dict:
    """Read and validate one expected.yaml; any problem is a HarnessError naming the file."""
    try:
        expected = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise HarnessError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(expected, dict):
        raise HarnessError(f"{path}: expected a mapping of verdict fields (status, anomaly, warnings, ...).")

    def bad(problem: str):
        return HarnessError(f"{path}: {problem}")

    unknown = set(expected) - TOP_KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(TOP_KEYS))}.")
    if "status" in expected and expected["status"] not in STATUSES:
        raise bad(f"status must be one of {', '.join(STATUSES)}, not {expected['status']!r}.")
    if "iterations_run" in expected and type(expected["iterations_run"]) is not int:
        raise bad("iterations_run must be an integer.")
    if expected.get("anomaly") is not None and not isinstance(expected["anomaly"], dict):
        raise bad("anomaly must be null or a mapping such as {kind: nonfinite, layer: fc1}.")
    entries = [("anomaly", expected["anomaly"])] if expected.get("anomaly") is not None else []
    if "warnings" in expected:
        if not isinstance(expected["warnings"], list) or not all(isinstance(w, dict) for w in expected["warnings"]):
            raise bad("warnings must be a list of mappings such as [{kind: exploding}].")
        entries += [("warnings", w) for w in expected["warnings"]]
    for where, entry in entries:
        unknown = set(entry) - FINDING_KEYS
        if unknown:
            raise bad(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                      f"known: {', '.join(sorted(FINDING_KEYS))}.")
    kinds = expected.get("warn_before_anomaly", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise bad("warn_before_anomaly must be a list of warning kinds such as [exploding].")
    if kinds and "iteration" not in (expected.get("anomaly") or {}):
        raise bad("warn_before_anomaly needs an anomaly with an iteration to compare with.")
    counts = expected.get("crosscheck", {})
    if not isinstance(counts, dict) or not set(counts) <= CROSSCHECK_KEYS or \
            not all(type(v) is int for v in counts.values()):
        raise bad(f"crosscheck must map some of {', '.join(sorted(CROSSCHECK_KEYS))} to integers.")
    train_args = expected.get("train_args", [])
    if not isinstance(train_args, list) or not all(isinstance(a, str) for a in train_args):
        raise bad("train_args must be a list of strings such as [--weights, source.caffemodel].")
    from_log = expected.get("from_log", {})
    if not isinstance(from_log, dict) or not set(from_log) <= PINS - LIVE_ONLY_KEYS:
        raise bad(f"from_log must map some of {', '.join(sorted(PINS - LIVE_ONLY_KEYS))} to what a log gives.")
    accuracy = expected.get("min_test_accuracy", 0)
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        raise bad("min_test_accuracy must be a number.")
    marks = expected.get("marks", [])
    if not isinstance(marks, list) or not all(isinstance(m, str) and m.isidentifier() for m in marks):
        raise bad("marks must be a list of pytest mark names such as [slow, gpu].")
    return expected


def expected_from_log(expected: dict) -> dict:
    """The pins a verdict judged from a log must meet."""
    pins = {key: value for key, value in expected.items() if key in PINS - LIVE_ONLY_KEYS}
    for key, value in expected.get("from_log", {}).items():
        pins[key] = {**pins[key], **value} if isinstance(value, dict) and isinstance(pins.get(key), dict) else value
    return pins


def _matches(want: dict, entry: Optional[dict]) -> bool:
    return entry is not None and all(key in entry and entry[key] == value for key, value in want.items())


def last_test_outputs(log_text: str) -> dict:
    """The outputs of the last test pass in a Caffe log, by name."""
    outputs = {}
    for line in log_text.splitlines():
        if _TESTING.search(line):
            outputs = {}
        match = _TEST_OUTPUT.search(line)
        if match:
            outputs[match.group(1)] = match.group(2)
    return outputs


def _test_accuracies(log_text: str) -> dict:
    return {k: v for k, v in last_test_outputs(log_text).items() if k.startswith("accuracy")}


def compare(expected: dict, verdict: dict, log_text: str = "") -> list:
    """What differs between expected.yaml's pins and a verdict (and its caffe.log): a list of sentences,
    each starting with the pin it is about ("anomaly: ...")."""
    differences = []
    for key in ("status", "iterations_run"):
        if key in expected and verdict.get(key) != expected[key]:
            differences.append(f"{key}: expected {expected[key]!r}, got {verdict.get(key)!r}")
    if verdict.get("caffe_error") and expected.get("status") != "error":
        differences.append(f"caffe_error: {verdict['caffe_error']}")
    anomaly = verdict.get("anomaly")
    if "anomaly" in expected:
        want = expected["anomaly"]
        if want is None and anomaly is not None:
            differences.append(f"anomaly: expected none, got {describe(anomaly)}")
        elif want is not None and anomaly is None:
            differences.append(f"anomaly: expected {_fields(want)}, got none")
        elif want is not None and not _matches(want, anomaly):
            wrong = {k: anomaly.get(k, "<missing>") for k, v in want.items() if anomaly.get(k) != v}
            differences.append(f"anomaly: expected {_fields(want)}, got {describe(anomaly)} "
                               f"(differs in {_fields(wrong)})")
    warnings = verdict.get("warnings") or []
    if expected.get("warnings") == [] and warnings:
        differences.append(f"warnings: expected none, got {'; '.join(describe(w) for w in warnings)}")
    for want in expected.get("warnings") or []:
        if not any(_matches(want, w) for w in warnings):
            got = "; ".join(describe(w) for w in warnings) or "none"
            differences.append(f"warnings: expected one with {_fields(want)}, got {got}")
    for kind in expected.get("warn_before_anomaly", []):
        limit = (anomaly or {}).get("iteration")
        if limit is None or kind not in _kinds_before(warnings, limit):
            differences.append(f"warn_before_anomaly: no {kind} warning before the anomaly's iteration {limit}")
    crosscheck = verdict.get("crosscheck") or {}
    for key, value in expected.get("crosscheck", {}).items():
        if crosscheck.get(key) != value:
            differences.append(f"crosscheck: expected {key} {value}, got {crosscheck.get(key)}")
    if "min_test_accuracy" in expected:
        accuracies = _test_accuracies(log_text)
        if not accuracies:
            differences.append("min_test_accuracy: caffe.log has no test accuracy output")
        for name, value in accuracies.items():
            if not float(value) >= expected["min_test_accuracy"]:      # also catches nan
                differences.append(f"min_test_accuracy: {name} = {value} in the last test pass, "
                                   f"expected >= {expected['min_test_accuracy']}")
    return differences


def _kinds_before(warnings: list, limit) -> list:
    return [w.get("kind") for w in warnings
            if limit is not None and isinstance(w.get("iteration"), int) and w["iteration"] < limit]


def _fields(entry: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in entry.items()) + "}"


def describe(entry: Optional[dict]) -> str:
    """A finding in one short phrase: kind@iteration phase layer/blob."""
    if not entry:
        return "none"
    where = "/".join(str(entry[k]) for k in ("layer", "blob") if entry.get(k) is not None)
    return " ".join(str(part) for part in (f"{entry.get('kind')}@{entry.get('iteration')}", entry.get("phase"), where)
                    if part)


def expected_summary(expected: dict) -> str:
    parts = [expected.get("status", "?")]
    if expected.get("anomaly"):
        parts.append(describe(expected["anomaly"]))
    parts += [f"+{w.get('kind', 'warning')}" for w in expected.get("warnings") or []]
    return " ".join(parts)


def summary(verdict: Optional[dict]) -> str:
    if verdict is None:
        return "no verdict"
    parts = [str(verdict.get("status"))]
    if verdict.get("anomaly"):
        parts.append(describe(verdict["anomaly"]))
    parts += sorted({f"+{w.get('kind')}" for w in verdict.get("warnings") or []})
    return " ".join(parts)


def side_by_side(expected: dict, verdict: dict, differences: list, log_text: str = "") -> str:
    """One row per pin: what expected.yaml says beside what the verdict holds, in the same shape (a pinned
    mapping shows the verdict's values of the same fields), rows that differ marked with X."""
    anomaly = verdict.get("anomaly")
    warnings = verdict.get("warnings") or []
    crosscheck = verdict.get("crosscheck") or {}

    def picked(want: Optional[dict], entry: Optional[dict]) -> str:
        if entry is None or want is None:
            return describe(entry) if entry else "none"
        return _fields({k: entry.get(k, "<missing>") for k in want})

    rows = []
    for key in ("status", "iterations_run"):
        if key in expected:
            rows.append((key, str(expected[key]), str(verdict.get(key))))
    if "anomaly" in expected:
        want = expected["anomaly"]
        rows.append(("anomaly", _fields(want) if want else "none", picked(want, anomaly)))
    if "warnings" in expected:
        rows.append(("warnings", "; ".join(_fields(w) for w in expected["warnings"]) or "none",
                     "; ".join(describe(w) for w in warnings) or "none"))
    if "warn_before_anomaly" in expected:
        before = _kinds_before(warnings, (anomaly or {}).get("iteration"))
        rows.append(("warn_before_anomaly", ", ".join(expected["warn_before_anomaly"]),
                     ", ".join(sorted(set(before))) or "none"))
    if "crosscheck" in expected:
        rows.append(("crosscheck", _fields(expected["crosscheck"]), picked(expected["crosscheck"], crosscheck)))
    if "min_test_accuracy" in expected:
        rows.append(("min_test_accuracy", f">= {expected['min_test_accuracy']}",
                     _fields(_test_accuracies(log_text)) if _test_accuracies(log_text) else "no test accuracy"))
    if verdict.get("caffe_error"):
        rows.append(("caffe_error", "none" if expected.get("status") != "error" else "any",
                     str(verdict["caffe_error"])))
    differing = {difference.split(":", 1)[0] for difference in differences}
    table = [("", "", "expected", "actual")] + [("X" if key in differing else "", key, want, got)
                                               for key, want, got in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    return "\n".join(f"{mark:{widths[0]}} {key:{widths[1]}}  {want:{widths[2]}}  {got}".rstrip()
                     for mark, key, want, got in table)
