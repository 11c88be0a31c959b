"""`harness train` when something goes wrong after set-up: Caffe's error while copying --weights or during the
first iteration is said with the step that raised it, in Caffe's words; an error of the harness itself still
leaves a verdict."""
import json

import pytest

from harness.commands import cli
from harness.core.records import IterationEnd
from harness.core.store import iter_run_records
from harness.log.crosscheck import CrossCheck
from harness_run import harness, verdict, write_net

pytestmark = pytest.mark.caffe

NET = """name: "finetune"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }
    shape { dim: 8 dim: 6 } shape { dim: 8 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "classifier" type: "InnerProduct" bottom: "ip1" top: "score" inner_product_param { num_output: NUM weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"""
SOLVER = 'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 2\ndisplay: 1\nrandom_seed: 5\n'


def test_a_shape_mismatch_while_copying_weights_names_that_step_in_caffes_words(tmp_path):
    # Train a 4-class classifier, then fine-tune from it with a 3-class one under the same layer name.
    pretrained = tmp_path / "pretrained"
    assert harness("train", write_net(tmp_path / "four", NET.replace("NUM", "4"), SOLVER), "--run-dir", pretrained,
                   "--quiet", "--no-html").returncode == 0
    weights = sorted((pretrained / "snapshots").glob("*.caffemodel"))[-1]
    run_dir = tmp_path / "run"
    result = harness("train", write_net(tmp_path / "three", NET.replace("NUM", "3"), SOLVER), "--weights", weights,
                     "--run-dir", run_dir, "--quiet", "--no-html")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = verdict(run_dir)["caffe_error"]
    assert error.startswith(f"while copying weights from {weights} (after the nets were set up): ")
    assert "Cannot copy param 0 weights from layer 'classifier'; shape mismatch." in error
    assert "setting up layer" not in error
    assert verdict(run_dir)["crosscheck"]["method"] is None       # nothing was measured: no way to say how
    # Caffe's own last sentence, whole, and not followed by a full stop of ours.
    assert error.endswith("rename the layer.")
    assert "rename the layer..\n" not in result.stderr and "rename the layer.\n" in result.stderr


# ArgMax has no backward pass (NOT_IMPLEMENTED, as py-faster-rcnn's SmoothL1Loss on the CPU): with a loss on its
# output Caffe aborts in iteration 0's backward, after every layer has long been set up.
NO_BACKWARD = """name: "argmax_backward"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }
    shape { dim: 4 dim: 5 } shape { dim: 4 dim: 1 dim: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "argmax" type: "ArgMax" bottom: "ip" top: "class" }
layer { name: "loss" type: "EuclideanLoss" bottom: "class" bottom: "label" top: "loss" }
"""


@pytest.mark.parametrize("hooks", ["layers", "none"])
def test_a_caffe_error_in_iteration_0_is_said_as_during_that_iteration(tmp_path, hooks):
    run_dir = tmp_path / "run"
    result = harness("train", write_net(tmp_path / "net", NO_BACKWARD, SOLVER), "--hooks", hooks,
                     "--run-dir", run_dir, "--quiet", "--no-html")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert verdict(run_dir)["caffe_error"] == "during iteration 0: Not Implemented Yet"
    assert "[Backward] Layer loss" in (run_dir / "caffe.log").read_text()   # the forward pass had finished


def test_an_internal_error_after_caffe_ran_still_writes_the_verdict(tmp_path, monkeypatch, capsys):
    solver = write_net(tmp_path / "net", NET.replace("NUM", "4"), SOLVER)
    run_dir = tmp_path / "run"

    def broken(self, keep=50):
        raise RuntimeError("forced for the test")
    monkeypatch.setattr(CrossCheck, "summary", broken)   # runs in the supervisor, after the worker ended
    code = cli.main(["train", str(solver), "--run-dir", str(run_dir), "--quiet", "--no-html"])
    stderr = capsys.readouterr().err
    assert code == 2 and "Traceback" not in stderr
    assert "internal error of caffe-harness: RuntimeError: forced for the test" in stderr
    result = json.loads((run_dir / "verdict.json").read_text())
    assert result["status"] == "error" and result["iterations_run"] == 2
    saved = run_dir / "harness-traceback.txt"
    assert result["harness_error"] == {"message": "internal error of caffe-harness: RuntimeError: forced for the test",
                                       "traceback": str(saved)}
    assert "Traceback" in saved.read_text() and "forced for the test" in saved.read_text()
    assert "Iteration 2" in (run_dir / "caffe.log").read_text()
    assert sum(isinstance(r, IterationEnd) for r in iter_run_records(run_dir)) == 2
