"""expected.yaml and its comparison with a verdict, and `harness check`: it must fail when a pin is wrong.
The zoo itself runs as pytest items of the plugin (testpaths has prototxt/; tests/test_plugin.py)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.core.errors import HarnessError
from harness.testing import expected as pins
from harness.testing.netfolder import find_nets

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
        expected = pins.load_expected(ZOO / name / "expected.yaml")
        assert expected["status"] in pins.STATUSES
        assert (ZOO / name / "solver.prototxt").is_file()


def test_compare_accepts_the_pinned_fields_and_names_each_difference():
    pinned = {"status": "halted", "anomaly": {"kind": "nonfinite", "iteration": 3, "layer": "fc2", "blob": "fc2"}}
    assert pins.compare(pinned, HALTED) == []
    moved = {"status": "halted", "anomaly": {"kind": "nonfinite", "iteration": 4, "layer": "fc3"}}
    [difference] = pins.compare(moved, HALTED)
    assert "differs in {iteration: 3, layer: fc2}" in difference
    assert pins.compare({"status": "ok", "anomaly": None}, HALTED) == [
        "status: expected 'ok', got 'halted'", "anomaly: expected none, got nonfinite@3 forward fc2/fc2"]


def test_compare_warnings_none_listed_and_before_the_anomaly():
    verdict = dict(HALTED, warnings=[{"kind": "exploding", "iteration": 2, "layer": "fc2"}])
    assert pins.compare({"warnings": [{"kind": "exploding"}], "warn_before_anomaly": ["exploding"],
                          "anomaly": {"iteration": 3}}, verdict) == []
    assert pins.compare({"warnings": []}, verdict) == ["warnings: expected none, got exploding@2 fc2"]
    assert "expected one with {kind: vanishing}" in pins.compare({"warnings": [{"kind": "vanishing"}]}, verdict)[0]
    late = dict(HALTED, warnings=[{"kind": "exploding", "iteration": 3}])
    assert pins.compare({"warn_before_anomaly": ["exploding"], "anomaly": {"iteration": 3}}, late) == [
        "warn_before_anomaly: no exploding warning before the anomaly's iteration 3"]


def test_compare_crosscheck_counts():
    assert pins.compare({"crosscheck": {"mismatched": 0, "unmatched_log_lines": 0}}, HALTED) == []
    assert pins.compare({"crosscheck": {"compared": 100}}, HALTED) == ["crosscheck: expected compared 100, got 120"]


def test_min_test_accuracy_reads_the_last_test_pass_of_caffe_log():
    log = ("I1123 solver.cpp:330] Iteration 0, Testing net (#0)\n"
           "I1123 solver.cpp:397]     Test net output #0: accuracy = 0.95\n"
           "I1123 solver.cpp:330] Iteration 100, Testing net (#0)\n"
           "I1123 solver.cpp:397]     Test net output #0: accuracy = 0.85\n"
           "I1123 solver.cpp:397]     Test net output #1: loss = 0.4 (* 1 = 0.4 loss)\n")
    ok = dict(HALTED, status="ok", anomaly=None)
    assert pins.compare({"min_test_accuracy": 0.8}, ok, log) == []
    assert pins.compare({"min_test_accuracy": 0.9}, ok, log) == [
        "min_test_accuracy: accuracy = 0.85 in the last test pass, expected >= 0.9"]
    assert pins.compare({"min_test_accuracy": 0.9}, ok, "") == [
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
    ("train_args: --weights x", "train_args must be a list of strings"),
    ("marks: slow", "marks must be a list of pytest mark names"),
    ("marks: [not a name]", "marks must be a list of pytest mark names"),
    ("from_log: {marks: [slow]}", "from_log must map some of"),
])
def test_a_bad_expected_yaml_names_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "expected.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as error:
        pins.load_expected(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_the_pins_and_the_verdict_side_by_side_mark_the_rows_that_differ():
    pinned = {"status": "halted", "anomaly": {"kind": "nonfinite", "layer": "fc3"}, "warnings": [],
              "crosscheck": {"mismatched": 0}}
    rows = pins.side_by_side(pinned, HALTED, pins.compare(pinned, HALTED)).splitlines()
    assert rows[0].split() == ["expected", "actual"]
    assert rows[1].split() == ["status", "halted", "halted"]
    assert rows[2].split() == ["X", "anomaly", "{kind:", "nonfinite,", "layer:", "fc3}",
                               "{kind:", "nonfinite,", "layer:", "fc2}"]
    assert rows[3].split() == ["warnings", "none", "none"]
    assert rows[4].split() == ["crosscheck", "{mismatched:", "0}", "{mismatched:", "0}"]


def test_find_nets_takes_net_folders_at_any_depth(tmp_path):
    assert find_nets([ZOO / "nan_input"]) == [ZOO / "nan_input"]
    assert [p.name for p in find_nets([ZOO])] == NETS
    with pytest.raises(HarnessError, match="expected.yaml"):
        find_nets([tmp_path])
    for folder in ("a/net1", "a/b/net2", "net0", "net0/inner"):       # nothing is looked for inside a net
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "expected.yaml").write_text("status: ok\n")
    assert find_nets([tmp_path]) == [tmp_path / "a/b/net2", tmp_path / "a/net1", tmp_path / "net0"]


def copy_with_changed_anomaly(source: Path, folder: Path, **change) -> Path:
    shutil.copytree(source, folder)
    expected = yaml.safe_load((folder / "expected.yaml").read_text())
    expected["anomaly"].update(change)
    (folder / "expected.yaml").write_text(yaml.safe_dump(expected))
    return folder


@pytest.mark.caffe
def test_check_runs_each_net_live_and_from_both_logs_and_fails_when_a_pin_is_changed(tmp_path):
    shutil.copytree(ZOO / "exploding_lr", tmp_path / "as_pinned")
    copy_with_changed_anomaly(ZOO / "exploding_lr", tmp_path / "wrong_layer", layer="fc3")
    copy_with_changed_anomaly(ZOO / "exploding_lr", tmp_path / "wrong_iteration", iteration=4)
    result = harness_check(tmp_path, "--caffe-binary")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 of 3 nets as expected" in result.stdout
    header, *rows = result.stdout.splitlines()
    assert header.split()[-4:] == ["from", "log", "from", "caffe"]
    assert rows[0].split()[:2] == ["as_pinned", "halted"]
    assert rows[0].count("nonfinite@3 forward fc2/fc2") == 4      # expected, live, from log, from caffe
    assert rows[1].startswith("X wrong_iteration") and rows[2].startswith("X wrong_layer")
    assert "differs in {layer: fc2}" in result.stdout
    assert "differs in {iteration: 3}" in result.stdout
    for source in ("the live run", "its caffe.log", "plain caffe's log"):
        assert f"wrong_layer: the verdict from {source} differs from {tmp_path / 'wrong_layer' / 'expected.yaml'}" \
            in result.stdout
