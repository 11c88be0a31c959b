"""`harness train` on real Caffe: the cross-check acceptance net, the run directory, Caffe errors, a killed worker."""
import json
import signal

import pytest

from harness.core.records import BlobStat, IterationEnd, ParamNorms
from harness.core.store import iter_run_records
from harness_run import (harness, iterations_done, start_harness, verdict, wait_for_iterations, worker_pid,
                         write_net, zoo_solver)

pytestmark = pytest.mark.caffe


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """prototxt/inplace_shared_split: in-place ReLU, Dropout, weights shared by name, an auto-inserted Split,
    a test net and iter_size 2, for 60 iterations."""
    run_dir = tmp_path_factory.mktemp("mixed") / "run"
    result = harness("train", zoo_solver("inplace_shared_split"), "--run-dir", run_dir, "--quiet", "--crosscheck", "every")
    assert result.returncode == 0, result.stderr
    return run_dir


def test_every_debug_line_matches_the_harness(mixed_run):
    crosscheck = verdict(mixed_run)["crosscheck"]
    assert crosscheck["compared"] > 5000
    assert crosscheck["mismatched"] == 0
    assert crosscheck["unmatched_log_lines"] == 0
    assert crosscheck["unmatched_harness_values"] == 0
    assert crosscheck["max_rel_error"] < 1e-4


def test_records_cover_every_iteration_pass_and_net(mixed_run):
    records = list(iter_run_records(mixed_run))
    ends = [r.iteration for r in records if isinstance(r, IterationEnd)]
    assert ends == list(range(60))
    norms = [r for r in records if isinstance(r, ParamNorms)]
    assert len(norms) == 2 * 60                       # iter_size 2: one L1/L2 line per pass
    assert {r.pass_index for r in norms} == {0, 1}
    train = [r for r in records if isinstance(r, BlobStat) and r.net == "train"]
    assert all(r.nonfinite == 0 and r.count > 0 for r in train)
    tests = [r for r in records if isinstance(r, BlobStat) and r.net == "test0"]
    assert tests and all(r.phase == "forward" for r in tests)
    # In-place layers: the same blob after each layer that writes it, with its own value.
    relu_and_producer = {(r.layer, r.blob) for r in train if r.phase == "forward" and r.kind == "top"}
    producers = {}
    for layer, blob in relu_and_producer:
        producers.setdefault(blob, set()).add(layer)
    assert any(len(layers) > 1 for layers in producers.values())


def test_run_directory_describes_itself(mixed_run):
    for name in ("solver.prototxt", "caffe.log", "records/blobs.bin", "verdict.json", "report.md", "run.json",
                 "config.yaml", "nets.json"):
        assert (mixed_run / name).is_file(), name
    solver_text = (mixed_run / "solver.prototxt").read_text()
    assert "debug_info: true" in solver_text and "display: 1" in solver_text
    run = json.loads((mixed_run / "run.json").read_text())
    assert run["solver"].endswith("prototxt/inplace_shared_split/solver.prototxt")
    assert verdict(mixed_run)["status"] == "ok" and verdict(mixed_run)["iterations_run"] == 60


SHAPE_MISMATCH = """name: "mismatch"
layer { name: "data" type: "DummyData" top: "a" top: "b"
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 5 } } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
"""


def test_shape_mismatch_is_exit_2_with_caffes_fatal_line(tmp_path):
    solver = write_net(tmp_path / "net", SHAPE_MISMATCH)
    run_dir = tmp_path / "run"
    result = harness("train", solver, "--run-dir", run_dir, "--quiet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error = verdict(run_dir)["caffe_error"]
    assert "Check failed" in error and "'sum'" in error          # Caffe's words and the layer it was building
    assert str(solver) in result.stderr and "caffe.log" in result.stderr
    assert verdict(run_dir)["status"] == "error"


def test_a_killed_worker_leaves_every_completed_iteration_readable(tmp_path):
    solver = write_net(tmp_path / "net")
    run_dir = tmp_path / "run"
    process = start_harness("train", solver, "--run-dir", run_dir, "--quiet")
    wait_for_iterations(run_dir, 5)
    import os
    os.kill(worker_pid(run_dir), signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == 2
    result = verdict(run_dir)
    assert result["status"] == "error" and "SIGKILL" in result["caffe_error"]
    done = iterations_done(run_dir)
    assert len(done) >= 5 and done == list(range(len(done)))
    assert result["iterations_run"] == len(done)


@pytest.mark.parametrize("net", ["exploding_lr", "python_loss_bug"])
def test_the_halt_snapshot_holds_the_last_good_finite_weights(tmp_path, net):
    import math
    from harness.core.caffe_proto import caffe_pb2
    run_dir = tmp_path / "run"
    result = harness("train", zoo_solver(net), "--run-dir", run_dir, "--quiet")
    assert result.returncode == 1, result.stderr
    anomaly = verdict(run_dir)["anomaly"]
    weights = run_dir / "snapshots" / f"snapshot_iter_{anomaly['iteration']}.caffemodel"
    assert weights.is_file() and weights.with_suffix(".solverstate").is_file()
    model = caffe_pb2().NetParameter()
    model.ParseFromString(weights.read_bytes())
    values = [v for layer in model.layer for blob in layer.blobs for v in blob.data]
    assert values and all(math.isfinite(v) for v in values)


def test_a_nan_in_the_input_is_traced_to_its_file_and_row(tmp_path):
    run_dir = tmp_path / "run"
    result = harness("train", zoo_solver("nan_input"), "--run-dir", run_dir, "--quiet", "--no-html")
    assert result.returncode == 1, result.stderr
    anomaly = verdict(run_dir)["anomaly"]
    assert (anomaly["layer"], anomaly["blob"], anomaly["iteration"]) == ("data", "data", 11)
    places = anomaly["evidence"]["nonfinite_in"]
    assert [(p["file"].rsplit("/", 1)[-1], p["dataset"], p["row"]) for p in places] == [("part2.h5", "data", 100)]
    assert "part2.h5, dataset data, row 100" in anomaly["message"]
    assert anomaly["suggestions"][0].startswith("fix or drop these samples")


def test_resuming_from_a_snapshot_continues_the_iteration_count(tmp_path):
    solver = write_net(tmp_path / "net")
    first, second = tmp_path / "first", tmp_path / "second"
    assert harness("train", solver, "--max-iter", 5, "--run-dir", first, "--quiet", "--no-html").returncode == 0
    state = first / "snapshots" / "snapshot_iter_5.solverstate"
    result = harness("train", solver, "--snapshot", state, "--max-iter", 8, "--run-dir", second, "--quiet", "--no-html")
    assert result.returncode == 0, result.stderr
    assert iterations_done(second) == [5, 6, 7]
    outcome = verdict(second)
    assert outcome["iterations_run"] == 8
    assert outcome["crosscheck"]["mismatched"] == 0 and outcome["crosscheck"]["unmatched_log_lines"] == 0
