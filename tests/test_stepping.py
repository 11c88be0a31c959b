"""`harness train --hooks solver|none` on the harness's own Caffe build, with its per-layer hooks ignored: the
read-back of each iteration that builds without them get (harness/run/stepping.py), checked against the
live per-layer statistics and against Caffe's own debug lines."""
import json
import math
import os

import pytest

from harness.core.caffe_proto import caffe_pb2
from harness.core.records import BlobStat, IterationEnd, ParamNorms
from harness.core.store import iter_run_records
from harness.run.provenance import caffe_prefix
from harness_run import harness, verdict, zoo_solver

pytestmark = pytest.mark.caffe


def records(run_dir):
    return list(iter_run_records(run_dir))


def blob_values(run_dir) -> dict:
    return {(r.iteration, r.net, r.pass_index, r.phase, r.layer, r.blob): r.mean_abs
            for r in records(run_dir) if isinstance(r, BlobStat)}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """prototxt/inplace_shared_split (in-place ReLU and Dropout, shared weights, a Split, a test net,
    iter_size 2; 60 iterations) trained three times: with the hooks, and read back in modes solver and none."""
    solver = zoo_solver("inplace_shared_split")
    runs = {}
    for mode in ("layers", "solver", "none"):
        run_dir = runs[mode] = tmp_path_factory.mktemp(mode) / "run"
        result = harness("train", solver, "--hooks", mode, "--run-dir", run_dir, "--quiet", "--no-html")
        assert result.returncode == 0, result.stderr
    return runs


@pytest.mark.parametrize("mode", ["solver", "none"])
def test_what_a_read_back_sees_matches_caffes_lines(mixed, mode):
    check = verdict(mixed[mode])["crosscheck"]
    assert check["compared"] > 1500
    assert check["mismatched"] == 0 and check["unmatched_harness_values"] == 0
    # Caffe prints what the read-back cannot see: in-place intermediates, the first pass of iter_size 2,
    # the first test batch (and in mode none the parameter diffs).
    assert check["unmatched_log_lines"] > 0


@pytest.mark.parametrize("mode", ["solver", "none"])
def test_read_back_values_are_the_live_values_where_both_exist(mixed, mode):
    live, read = blob_values(mixed["layers"]), blob_values(mixed[mode])
    assert read and set(read) <= set(live)
    assert all(read[key] == live[key] or (math.isnan(read[key]) and math.isnan(live[key])) for key in read)
    ends = [r.iteration for r in records(mixed[mode]) if isinstance(r, IterationEnd)]
    assert ends == list(range(60))


def test_a_read_back_keeps_only_the_last_writer_of_an_in_place_blob(mixed):
    read = blob_values(mixed["solver"])
    writers = {layer for (_, net, _, phase, layer, blob) in read if (net, phase, blob) == ("train", "forward", "fc_upper")}
    assert writers == {"relu_upper"}                      # the InnerProduct's own output is overwritten in place
    live = blob_values(mixed["layers"])
    assert {layer for (_, net, _, phase, layer, blob) in live
            if (net, phase, blob) == ("train", "forward", "fc_upper")} == {"fc_upper", "relu_upper"}
    assert {key[2] for key in read if key[1] == "train" and key[0] < 60} == {1}   # iter_size 2: the last pass only
    assert {key[2] for key in read if key[1] == "train" and key[0] == 60} == {0}  # Caffe's forward after max_iter
    assert {key[2] for key in read if key[1] == "test0"} == {1}   # test_iter 2: the last batch only


def test_mode_none_has_no_parameter_gradients_and_says_so(mixed):
    rows = records(mixed["none"])
    assert not any(isinstance(r, BlobStat) and r.kind == "param" and r.phase == "backward" for r in rows)
    assert not any(isinstance(r, ParamNorms) for r in rows)
    assert sum(isinstance(r, ParamNorms) for r in records(mixed["solver"])) == 60
    lost = " ".join(verdict(mixed["none"])["caffe"]["lost"])
    assert "no_gradient is off" in lost and "after the update" in lost and "`fc_upper`" in lost


def test_the_verdict_names_the_build_and_the_mode(mixed):
    for mode, run_dir in mixed.items():
        caffe = verdict(run_dir)["caffe"]
        assert caffe["hooks"] == mode and caffe["path"] == str(caffe_prefix())
        assert caffe["libcaffe"].startswith(str(caffe_prefix())) and caffe["version"] == "1.0.0"
        assert (caffe["lost"] == []) == (mode == "layers")
    lost = " ".join(verdict(mixed["solver"])["caffe"]["lost"])
    assert "iter_size 2" in lost and "last test batch" in lost and "`half_w`" in lost


@pytest.mark.parametrize("mode, snapshot", [("solver", 3), ("none", 4)])
def test_a_nan_is_halted_in_its_iteration_and_caffes_log_names_the_layer(tmp_path, mode, snapshot):
    run_dir = tmp_path / "run"
    result = harness("train", zoo_solver("exploding_lr"), "--hooks", mode, "--run-dir", run_dir, "--quiet", "--no-html")
    assert result.returncode == 1, result.stderr
    outcome = verdict(run_dir)
    anomaly = outcome["anomaly"]
    # With the hooks: iteration 3, forward, layer fc2. Read back: the same iteration, and the in-place ReLU
    # that overwrote fc2's output; Caffe's debug lines still name fc2.
    assert (anomaly["kind"], anomaly["iteration"], anomaly["layer"], anomaly["blob"]) == ("nonfinite", 3, "relu2", "fc2")
    assert "Precision lost" in anomaly["message"] and anomaly["evidence"]["precision"] == "iteration"
    assert anomaly["evidence"]["caffe_log_first_nonfinite"] == {"phase": "forward", "layer": "fc2", "blob": "fc2",
                                                                "kind": "top"}
    assert outcome["crosscheck"]["mismatched"] == 0
    # Mode solver halts before the update (the snapshot is iteration 3's weights), mode none after it.
    weights = run_dir / "snapshots" / f"snapshot_iter_{snapshot}.caffemodel"
    assert weights.is_file()
    model = caffe_pb2().NetParameter()
    model.ParseFromString(weights.read_bytes())
    values = [v for layer in model.layer for blob in layer.blobs for v in blob.data]
    assert all(math.isfinite(v) for v in values) == (mode == "solver")


def test_a_read_back_run_replays_exactly(tmp_path):
    run_dir = tmp_path / "run"
    assert harness("train", zoo_solver("exploding_lr"), "--hooks", "solver", "--run-dir", run_dir, "--quiet",
                   "--no-html").returncode == 1
    result = harness("reproduce", run_dir, "--iter", 3, "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "reproduce-3" / "reproduce.json").read_text())
    assert summary["identical"] and summary["same_halt_as_original"]


def test_the_environment_variable_chooses_the_mode_too(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, HARNESS_HOOKS="solver")
    assert harness("train", zoo_solver("exploding_lr"), "--run-dir", run_dir, "--quiet", "--no-html", env=env).returncode == 1
    assert verdict(run_dir)["caffe"]["hooks"] == "solver"
    result = harness("train", zoo_solver("exploding_lr"), "--run-dir", tmp_path / "bad", "--quiet",
                     env=dict(os.environ, HARNESS_HOOKS="sometimes"))
    assert result.returncode == 2 and "HARNESS_HOOKS=sometimes" in result.stderr and "Traceback" not in result.stderr
