"""`harness train --caffe` on real Caffe forks with their own layers, built by the user beside the project
(docs/forks.md says what each needed). Each test takes the fork's folder from an environment variable
and is skipped without it:

    HARNESS_TEST_SSD_CAFFE=/path/to/weiliu89-caffe (branch ssd) .venv/bin/python -m pytest -m slow tests/test_forks.py
    HARNESS_TEST_FASTRCNN_CAFFE=/path/to/caffe-fast-rcnn (branch faster-rcnn) ...

The nets and their data generators are the project's (tests/forks/); both forks lack pycaffe's per-layer
hooks, so these runs go through the read-back of harness/run/stepping.py.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.records import BlobStat, IterationEnd, ParamNorms
from harness.core.store import iter_run_records
from harness_run import harness, verdict

FORKS = Path(__file__).resolve().parent / "forks"
SSD = os.environ.get("HARNESS_TEST_SSD_CAFFE")
FAST_RCNN = os.environ.get("HARNESS_TEST_FASTRCNN_CAFFE")
pytestmark = [pytest.mark.slow, pytest.mark.caffe]
needs_ssd = pytest.mark.skipif(not SSD, reason="HARNESS_TEST_SSD_CAFFE is not set (a build of weiliu89/caffe, branch ssd)")
needs_fast_rcnn = pytest.mark.skipif(not FAST_RCNN, reason="HARNESS_TEST_FASTRCNN_CAFFE is not set (a build of "
                                                           "rbgirshick/caffe-fast-rcnn, branch faster-rcnn)")


def net_folder(tmp_path: Path, fork: str, *options: str) -> Path:
    """The fork's net and solvers copied into tmp_path, with data generated there."""
    folder = tmp_path / fork
    shutil.copytree(FORKS / fork, folder, ignore=shutil.ignore_patterns("make_data.py", "__pycache__"))
    subprocess.run([sys.executable, str(FORKS / fork / "make_data.py"), str(folder), *options], check=True)
    return folder


def train(folder: Path, caffe: str, *args, solver: str = "solver.prototxt"):
    run_dir = folder / "run"
    result = harness("train", folder / solver, "--caffe", caffe, "--run-dir", run_dir, "--quiet", "--no-html", *args)
    return result, run_dir


def clean_run(tmp_path: Path, fork: str, caffe: str, compared: int) -> tuple:
    """Train the fork's net on clean data: it must finish its 12 iterations with a clean cross-check."""
    result, run_dir = train(net_folder(tmp_path, fork), caffe)
    assert result.returncode == 0, result.stderr
    outcome = verdict(run_dir)
    assert outcome["status"] == "ok" and outcome["iterations_run"] == 12 and outcome["warnings"] == []
    check = outcome["crosscheck"]
    assert check["compared"] > compared and check["mismatched"] == 0 and check["unmatched_harness_values"] == 0
    # A fork patched with `scripts/setup.sh --caffe-source` (and rebuilt) has Caffe's own numbers: equal to the
    # log's to the last printed digit. Unpatched, numpy's sums agree within the tolerance for each blob's size.
    if json.loads((run_dir / "caffe.json").read_text())["offers"]["debug_stats"]:
        assert (check["method"], check["statistics"], check["max_rel_error"]) == ("exact", "caffe", 0)
    else:
        assert (check["method"], check["statistics"]) == ("tolerance", "numpy")
    return outcome, run_dir


def halted_run(tmp_path: Path, fork: str, caffe: str, *options: str, solver: str = "solver.prototxt") -> tuple:
    """Train the fork's net (data made with `options`): the rules must halt it. (anomaly, run directory)
    Every iteration's debug lines: without per-layer hooks they are what names the layer of a NaN."""
    result, run_dir = train(net_folder(tmp_path, fork, *options), caffe, "--crosscheck", "every", solver=solver)
    assert result.returncode == 1, result.stderr
    return verdict(run_dir)["anomaly"], run_dir


def records(run_dir: Path) -> list:
    return list(iter_run_records(run_dir))


def doctor(caffe: str) -> str:
    result = subprocess.run([str(Path(sys.executable).with_name("harness")), "doctor", "--caffe", caffe],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_ssd
def test_ssd_doctor_shows_its_layers_and_no_per_layer_hooks():
    out = doctor(SSD)
    for layer in ("PriorBox", "MultiBoxLoss", "Normalize", "DetectionOutput", "Permute"):
        assert layer in out
    assert "layer hooks  no" in out and "callbacks    yes" in out and "--hooks solver" in out


@needs_ssd
def test_ssd_detection_net_trains_with_a_clean_cross_check(tmp_path):
    outcome, run_dir = clean_run(tmp_path, "ssd", SSD, compared=500)
    caffe = outcome["caffe"]
    assert (caffe["path"], caffe["hooks"]) == (str(Path(SSD).resolve()), "solver") and caffe["git_describe"]
    rows = records(run_dir)
    losses = [r.loss for r in rows if isinstance(r, IterationEnd)]
    assert len(losses) == 12 and losses[-1] < losses[0]
    layers = {r.layer for r in rows if isinstance(r, BlobStat)}
    assert {"pool2_norm", "priorbox", "mbox_loss", "detection_out"} <= layers
    # The test net ran at iterations 0, 6 and 12; its last batch (of test_iter 2) is read back.
    assert {(r.iteration, r.pass_index) for r in rows if isinstance(r, BlobStat) and r.net == "test0"} == \
        {(0, 1), (6, 1), (12, 1)}


@needs_ssd
def test_ssd_divergence_halts_in_its_iteration_at_the_normalize_layer(tmp_path):
    anomaly, run_dir = halted_run(tmp_path, "ssd", SSD, solver="solver_high_lr.prototxt")
    assert (anomaly["kind"], anomaly["iteration"], anomaly["phase"], anomaly["layer"], anomaly["blob"]) == \
        ("nonfinite", 7, "backward", "pool2_norm", "pool2")
    assert "Precision lost" in anomaly["message"]
    assert anomaly["evidence"]["caffe_log_first_nonfinite"]["layer"] == "pool2_norm"
    assert verdict(run_dir)["crosscheck"]["mismatched"] == 0
    assert (run_dir / "snapshots" / "snapshot_iter_7.solverstate").is_file()   # before the update


@needs_ssd
def test_ssd_boxes_of_zero_width_leave_nothing_to_learn(tmp_path):
    anomaly, run_dir = halted_run(tmp_path, "ssd", SSD, "--empty-boxes")
    assert (anomaly["kind"], anomaly["layer"]) == ("no_learning_signal", "mbox_loss")
    assert all(r.loss == 0 for r in records(run_dir) if isinstance(r, IterationEnd))


@needs_ssd
def test_ssd_per_layer_hooks_are_refused_and_logs_parse_with_its_proto(tmp_path):
    folder = net_folder(tmp_path, "ssd")
    result, _ = train(folder, SSD, "--hooks", "layers")
    assert result.returncode == 2 and "no Net.after_forward" in result.stderr and "Traceback" not in result.stderr
    result, run_dir = train(folder, SSD, "--max-iter", "2")
    assert result.returncode == 0, result.stderr
    for caffe, limits in ((None, 1), (SSD, 0)):   # BVLC's caffe.proto has no prior_box_param
        out = tmp_path / f"parse-{limits}"
        extra = ("--caffe", caffe) if caffe else ()
        assert harness("parse", run_dir / "caffe.log", "--out", out, "--quiet", "--no-html", *extra).returncode == 0
        assert len(verdict(out)["limits"]) == limits


@needs_fast_rcnn
def test_fast_rcnn_doctor_shows_neither_hooks_nor_callbacks():
    out = doctor(FAST_RCNN)
    assert "ROIPooling" in out and "SmoothL1Loss" in out
    assert "callbacks    no" in out and "weights only" in out and "--hooks none" in out


@needs_fast_rcnn
def test_fast_rcnn_head_trains_stepped_one_iteration_at_a_time(tmp_path):
    outcome, run_dir = clean_run(tmp_path, "fast_rcnn", FAST_RCNN, compared=200)
    assert outcome["caffe"]["hooks"] == "none" and outcome["caffe"]["version"] is None
    rows = records(run_dir)
    assert [r.iteration for r in rows if isinstance(r, IterationEnd)] == list(range(12))
    assert not any(isinstance(r, ParamNorms) for r in rows)
    # No Net._top_ids in this pycaffe: the blobs come from the prototxt and Caffe's Split insertion.
    nets = json.loads((run_dir / "nets.json").read_text())
    assert "fc6_relu6_0_split" in [layer["name"] for layer in nets["train"]["layers"]]
    assert sorted(p.name for p in (run_dir / "snapshots").iterdir()) == ["snapshot_iter_12.caffemodel"]


@needs_fast_rcnn
def test_fast_rcnn_degenerate_box_is_traced_to_its_rows(tmp_path):
    anomaly, _ = halted_run(tmp_path, "fast_rcnn", FAST_RCNN, "--degenerate-box")
    assert (anomaly["kind"], anomaly["iteration"], anomaly["layer"], anomaly["blob"]) == \
        ("nonfinite", 4, "regions", "bbox_targets")
    assert [p["row"] for p in anomaly["evidence"]["nonfinite_in"]] == [72, 73, 74, 75]
    assert "Precision lost" in anomaly["message"] and "after its update" in anomaly["message"]


@needs_fast_rcnn
def test_fast_rcnn_smooth_l1_on_the_cpu_is_caffes_error(tmp_path):
    folder = net_folder(tmp_path, "fast_rcnn")
    (folder / "solver_smooth_l1.prototxt").write_text(
        (folder / "solver.prototxt").read_text().replace('"net.prototxt"', '"smooth_l1.prototxt"'))
    result, run_dir = train(folder, FAST_RCNN, solver="solver_smooth_l1.prototxt")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # In the first iteration's backward, long after set-up: said as such, not as "while setting up layer ..."
    assert verdict(run_dir)["caffe_error"] == "during iteration 0: Not Implemented Yet"
