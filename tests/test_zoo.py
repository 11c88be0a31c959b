"""The zoo (prototxt/) through `harness check`, and `check` itself: it must fail when a pin is wrong."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.commands import check
from harness.core.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "prototxt"
NETS = sorted(p.parent.name for p in ZOO.glob("*/expected.yaml"))

HALTED = {"status": "halted", "iterations_run": 4, "warnings": [],
          "anomaly": {"kind": "nonfinite", "iteration": 3, "phase": "forward", "layer": "fc2", "blob": "fc2",
                      "value": "nan"},
          "crosscheck": {"compared": 120, "mismatched": 0, "unmatched_log_lines": 0, "max_rel_error": 1e-7},
          "caffe_error": None}


def harness_check(*args):
    return subprocess.run([sys.executable, "-m", "harness", "check", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_every_zoo_net_pins_a_valid_verdict():
    assert len(NETS) >= 12
    for name in NETS:
        expected = check.load_expected(ZOO / name / "expected.yaml")
        assert expected["status"] in check.STATUSES
        assert (ZOO / name / "solver.prototxt").is_file()


def test_compare_accepts_the_pinned_fields_and_names_each_difference():
    pinned = {"status": "halted", "anomaly": {"kind": "nonfinite", "iteration": 3, "layer": "fc2", "blob": "fc2"}}
    assert check.compare(pinned, HALTED) == []
    moved = {"status": "halted", "anomaly": {"kind": "nonfinite", "iteration": 4, "layer": "fc3"}}
    [difference] = check.compare(moved, HALTED)
    assert "differs in {iteration: 3, layer: fc2}" in difference
    assert check.compare({"status": "ok", "anomaly": None}, HALTED) == [
        "status: expected 'ok', got 'halted'", "anomaly: expected none, got nonfinite@3 forward fc2/fc2"]


def test_compare_warnings_none_listed_and_before_the_anomaly():
    verdict = dict(HALTED, warnings=[{"kind": "exploding", "iteration": 2, "layer": "fc2"}])
    assert check.compare({"warnings": [{"kind": "exploding"}], "warn_before_anomaly": ["exploding"],
                          "anomaly": {"iteration": 3}}, verdict) == []
    assert check.compare({"warnings": []}, verdict) == ["warnings: expected none, got exploding@2 fc2"]
    assert "expected one with {kind: vanishing}" in check.compare({"warnings": [{"kind": "vanishing"}]}, verdict)[0]
    late = dict(HALTED, warnings=[{"kind": "exploding", "iteration": 3}])
    assert check.compare({"warn_before_anomaly": ["exploding"], "anomaly": {"iteration": 3}}, late) == [
        "warn_before_anomaly: no exploding warning before the anomaly's iteration 3"]


def test_compare_crosscheck_counts():
    assert check.compare({"crosscheck": {"mismatched": 0, "unmatched_log_lines": 0}}, HALTED) == []
    assert check.compare({"crosscheck": {"compared": 100}}, HALTED) == ["crosscheck: expected compared 100, got 120"]


def test_min_test_accuracy_reads_the_last_test_pass_of_caffe_log():
    log = ("I1123 solver.cpp:330] Iteration 0, Testing net (#0)\n"
           "I1123 solver.cpp:397]     Test net output #0: accuracy = 0.95\n"
           "I1123 solver.cpp:330] Iteration 100, Testing net (#0)\n"
           "I1123 solver.cpp:397]     Test net output #0: accuracy = 0.85\n"
           "I1123 solver.cpp:397]     Test net output #1: loss = 0.4 (* 1 = 0.4 loss)\n")
    ok = dict(HALTED, status="ok", anomaly=None)
    assert check.compare({"min_test_accuracy": 0.8}, ok, log) == []
    assert check.compare({"min_test_accuracy": 0.9}, ok, log) == [
        "min_test_accuracy: accuracy = 0.85 in the last test pass, expected >= 0.9"]
    assert check.compare({"min_test_accuracy": 0.9}, ok, "") == [
        "min_test_accuracy: caffe.log has no test accuracy output"]


@pytest.mark.parametrize("text, problem", [
    ("status: [ok", "not valid YAML"),
    ("- status: ok", "expected a mapping"),
    ("status: fine", "status must be one of"),
    ("stauts: ok", "unknown key(s) stauts"),
    ("anomaly: nonfinite", "anomaly must be null or a mapping"),
    ("anomaly: {kind: dead, layr: relu1}", "anomaly: unknown field(s) layr"),
    ("warnings: {kind: exploding}", "warnings must be a list"),
    ("warn_before_anomaly: [exploding]", "needs an anomaly with an iteration"),
    ("min_test_accuracy: high", "min_test_accuracy must be a number"),
    ("crosscheck: {mismatches: 0}", "crosscheck must map some of"),
])
def test_a_bad_expected_yaml_names_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "expected.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as error:
        check.load_expected(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_find_nets_takes_a_net_folder_or_a_folder_of_them(tmp_path):
    assert check.find_nets([ZOO / "nan_input"]) == [ZOO / "nan_input"]
    assert [p.name for p in check.find_nets([ZOO])] == NETS
    with pytest.raises(HarnessError, match="expected.yaml"):
        check.find_nets([tmp_path])


@pytest.mark.caffe
def test_the_zoo_verdicts_are_exactly_as_pinned_live_and_from_both_logs():
    """Every net live; its caffe.log through `harness parse`; and a log of the plain `caffe train`
    through `harness parse`: all three verdicts as expected.yaml pins them (issues 5 and 7)."""
    result = harness_check(ZOO, "--caffe-binary")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(NETS)} of {len(NETS)} nets as expected" in result.stdout
    header = result.stdout.splitlines()[0]
    assert "from log" in header and "from caffe" in header
    for name in NETS:
        assert name in result.stdout


@pytest.mark.caffe
def test_check_fails_when_a_pinned_layer_or_iteration_is_changed(tmp_path):
    for name, change in (("wrong_layer", {"layer": "fc3"}), ("wrong_iteration", {"iteration": 4})):
        folder = tmp_path / name
        shutil.copytree(ZOO / "exploding_lr", folder)
        expected = yaml.safe_load((folder / "expected.yaml").read_text())
        expected["anomaly"].update(change)
        (folder / "expected.yaml").write_text(yaml.safe_dump(expected))
    result = harness_check(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 of 2 nets as expected" in result.stdout
    assert "differs in {layer: fc2}" in result.stdout
    assert "differs in {iteration: 3}" in result.stdout
