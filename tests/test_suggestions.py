"""Every cause class a finding can name gets a first suggestion that would help for that cause: one case per
class (live records of toy nets, or literal log lines through the parser), and the first suggestion checked.
A cause added to harness/report/text.py CAUSES without a case here fails the completeness test."""
from __future__ import annotations

import math

import pytest

from harness.core.netinfo import SolverInfo, build
from harness.core.records import BACKWARD, FORWARD, Event, IterationEnd, TestResult
from harness.log import glog
from harness.report.text import CAUSES
from harness.rules import config
from harness.rules.engine import RuleEngine
from harness_run import harness, verdict, write_net
from rule_fixtures import NAN, INF, layer, mlp, records, spec, stream
from test_rules_caffe import classifier, two_heads, with_outputs

SOLVER = SolverInfo(solver_path="solver.prototxt", net_paths={"train": "train.prototxt"}, base_lr=0.5)
P = "I0101 00:00:00.000000  1 net.cpp:593] "


def run(net, recs, source="live", overrides=None) -> list:
    engine = RuleEngine(config.load(None, overrides), {"train": net} if net is not None else {}, SOLVER, source)
    found = []
    for record in recs:
        found += engine.feed(record)
    return found + engine.finish()


def log(text: str, overrides=None) -> list:
    """The findings on a literal log (no net echo: what people paste)."""
    return run(None, glog.parse_lines(text.strip("\n").splitlines()), "log", overrides)


def nan(count=3):
    return {"mean_abs": NAN, "nonfinite": count}


def tanh_net():
    return build("toy", [layer("data", "HDF5Data", tops=("data", "label")),
                         layer("fc1", "InnerProduct", ("data",), ("fc1",), 2),
                         layer("tanh1", "TanH", ("fc1",), ("fc1",)),
                         layer("fc2", "InnerProduct", ("fc1",), ("fc2",), 2),
                         layer("loss", "EuclideanLoss", ("fc2", "label"), ("loss",), loss_weights=[1.0])], {}, False)


def python_net(phase):
    return build("toy", [layer("data", "HDF5Data", tops=("data", "label")),
                         layer("fc1", "InnerProduct", ("data",), ("fc1",), 2),
                         layer("py", "Python", ("fc1",), ("py",)),
                         layer("loss", "EuclideanLoss", ("py", "label"), ("loss",), loss_weights=[1.0])], {}, False)


def log_net():
    return build("logs", [layer("data", "HDF5Data", tops=("counts", "label")),
                          layer("log1p", "Log", ("counts",), ("log_counts",)),
                          layer("fc", "InnerProduct", ("log_counts",), ("fc",), 2),
                          layer("loss", "SoftmaxWithLoss", ("fc", "label"), ("loss",), loss_weights=[1.0])],
                 {"data": spec(source="counts.list")}, False)


def bn_net():
    return build("toy", [layer("data", "HDF5Data", tops=("data", "label")),
                         layer("conv1", "Convolution", ("data",), ("conv1",), 2),
                         layer("bn1", "BatchNorm", ("conv1",), ("bn1",), 3),
                         layer("fc", "InnerProduct", ("bn1",), ("fc",), 2),
                         layer("loss", "SoftmaxWithLoss", ("fc", "label"), ("loss",), loss_weights=[1.0])], {}, False)


def at(iteration, changes):
    return lambda it: changes if it == iteration else None


_ZERO = {"mean_abs": 0.0}
_ZERO_DIFFS = {(BACKWARD, "relu1", "fc1"): _ZERO, (BACKWARD, "fc1", "param blob 0"): _ZERO,
               (BACKWARD, "fc1", "param blob 1"): _ZERO}

# cause -> (the findings of a scenario that has that cause, what its first suggestion must say)
CASES = {
    "bad_input": (lambda: run(mlp(), stream(mlp(), range(3), at(2, {(FORWARD, "data", "data"): nan()}))),
                  "clean or drop the samples in the data source train.h5list"),
    "python_layer": (lambda: run(python_net("forward"), stream(python_net("forward"), range(3), at(1, {
        (FORWARD, "py", "py"): nan()}))), "fix the `forward()` of Python layer py"),
    "math_domain": (lambda: run(log_net(), stream(log_net(), range(3), at(1, {
        (FORWARD, "log1p", "log_counts"): nan()}))), "keep the inputs of layer log1p (Log) inside its domain"),
    "loss_layer": (lambda: run(mlp(), stream(mlp(), range(3), at(1, {(FORWARD, "loss", "loss"): nan()}))),
                   "scale the inputs or targets of loss layer loss"),
    "initialisation": (lambda: run(mlp(), stream(mlp(), range(2), at(0, {(FORWARD, "fc2", "fc2"): nan()}))),
                       "scaled initialisation"),
    "exploding": (lambda: run(mlp(), stream(mlp(), range(4), at(3, {(FORWARD, "fc2", "fc2"): nan()}))),
                  "`base_lr: 0.5 -> 0.05`"),
    "corrupted_weights": (lambda: run(mlp(), stream(mlp(), range(4), at(3, {
        (FORWARD, "fc2", "param blob 0"): nan()}))), "`base_lr: 0.5 -> 0.05`"),
    "overflow": (lambda: run(mlp(), stream(mlp(), range(3), at(2, {
        (FORWARD, "fc2", "fc2"): {"mean_abs": INF, "overflow": True}}))), "`base_lr: 0.5 -> 0.05`"),
    "dead_at_init": (lambda: run(mlp(), stream(mlp(), range(6), lambda it: {
        (FORWARD, "relu1", "fc1"): {"zero_fraction": 1.0, "mean_abs": 0.0}})), "check `bias_filler` of layer fc1"),
    "died_in_training": (lambda: run(mlp(), stream(mlp(), range(9), lambda it: {
        (FORWARD, "relu1", "fc1"): {"zero_fraction": 1.0, "mean_abs": 0.0}} if it >= 2 else None)),
        "`base_lr: 0.5 -> 0.05`"),
    "not_connected": (lambda: run(mlp([layer("aux", "InnerProduct", ("data",), ("aux",), 2)]),
                                  stream(mlp([layer("aux", "InnerProduct", ("data",), ("aux",), 2)]), range(6))),
                      "connect layer aux to a loss"),
    "propagate_down": (lambda: run(mlp(specs={"loss": spec(propagate_down=(0, 0))}),
                                   stream(mlp(specs={"loss": spec(propagate_down=(0, 0))}), range(6))),
                       "remove `propagate_down: false` from layer loss"),
    "starved": (lambda: run(mlp(), stream(mlp(), range(6), lambda it: _ZERO_DIFFS), overrides={"dead.policy": "off"}),
                "relu_param { negative_slope: 0.01 }"),
    "saturated": (lambda: run(tanh_net(), stream(tanh_net(), range(8), lambda it: {
        (FORWARD, "tanh1", "fc1"): {"mean_abs": 1.0, "max_abs": 1.0}, (BACKWARD, "tanh1", "fc1"): _ZERO,
        (BACKWARD, "fc1", "param blob 0"): _ZERO, (BACKWARD, "fc1", "param blob 1"): _ZERO} if it >= 2 else None)),
        "`base_lr: 0.5 -> 0.05`"),
    "python_backward": (lambda: run(python_net("backward"), stream(python_net("backward"), range(6), lambda it: {
        (BACKWARD, "py", "fc1"): _ZERO, (BACKWARD, "fc1", "param blob 0"): _ZERO,
        (BACKWARD, "fc1", "param blob 1"): _ZERO})), "fix the `backward()` of Python layer py"),
    "zero_gradient": (lambda: run(mlp(), stream(mlp(), range(6), lambda it: {
        (BACKWARD, "loss", "fc2"): _ZERO, (BACKWARD, "fc2", "fc1"): _ZERO, (BACKWARD, "fc2", "param blob 0"): _ZERO,
        (BACKWARD, "fc2", "param blob 1"): _ZERO, **_ZERO_DIFFS}), overrides={"dead.policy": "off"}),
        "check the loss layers (loss)"),
    "lr_mult_unknown": (lambda: run(None, stream(mlp(), range(6), lambda it: {
        (BACKWARD, "fc2", "param blob 1"): _ZERO}, live=False), "log"), "check `lr_mult` of layer fc2"),
    "vanishing": (lambda: run(mlp(), stream(mlp(), range(6), lambda it: {
        (BACKWARD, "fc1", "param blob 1"): {"mean_abs": 1e-9}})), "scaled initialisation"),
    "empty_bn_stats": (lambda: run(bn_net(), records(bn_net(), 0, {
        **{(FORWARD, "bn1", f"param blob {k}"): _ZERO for k in range(3)},
        (FORWARD, "bn1", "bn1"): {"mean_abs": 316.0}})),
        "check that --weights names a .caffemodel with a layer named bn1"),
    "weights_not_loaded": (lambda: run(mlp(), [Event(None, "ignored_source_layer", "ip1")] + stream(
        mlp(), range(2), at(0, {(FORWARD, "fc1", "param blob 1"): _ZERO}), live=False), "log"),
        "rename the net's layers"),
    "saturated_softmax": (lambda: run(classifier(3), with_outputs(stream(classifier(3), range(6)), lambda it: {
        "loss": 87.3365})), "`base_lr: 0.5 -> 0.05`"),
    "stuck_at_chance": (lambda: run(classifier(4), with_outputs(stream(classifier(4), range(60)), lambda it: {
        "loss": math.log(4)})), "check that the labels belong to the inputs"),
    "collapse_to_chance": (lambda: run(classifier(4), with_outputs(stream(classifier(4), range(120)), lambda it: {
        "loss": 0.1 if it < 40 else math.log(4)})), "`base_lr: 0.5 -> 0.05`"),
    "loss_head": (lambda: run(two_heads(), with_outputs(stream(two_heads(), range(5)), lambda it: {
        "loss_cls": 1.4, "loss_reg": 2.0 * 30 ** it})), "`loss_weight` of loss layer loss_reg: `10 -> 1`"),
    "intermittent_nan": (lambda: run(classifier(4), with_outputs(stream(classifier(4), range(8)), lambda it: {
        "loss": NAN if it == 5 else 1.0}, smoothed_loss=lambda it: NAN if it >= 5 else 1.0),
        overrides={"nonfinite.policy": "off"}), "find the batch of the non-finite iteration"),
    "hidden_nan_output": (lambda: run(classifier(4), with_outputs(stream(classifier(4), range(3)), lambda it: {
        "loss": 1.0, "ratio": NAN if it == 1 else 0.5})), "fix the layer that computes output ratio"),
    "no_learning_signal": (lambda: log("""
I0421 02:54:22.471334 976 solver.cpp:231] Iteration 0, loss = 0
I0421 02:54:22.471360 976 solver.cpp:247]     Train net output #0: mbox_loss = 0 (* 1 = 0 loss)
"""), "check the labels fed to the loss that computes mbox_loss"),
    "lr_out_of_range": (lambda: log(P + "Iteration 0, lr = -nan"), "check `base_lr`, `lr_policy`"),
    "nonfinite_at_start": (lambda: log("""
I0101 00:00:00.0 1 solver.cpp:218] Iteration 0 (0 iter/s, 1s/20 iters), loss = inf
I0101 00:00:00.0 1 solver.cpp:237]     Train net output #0: landmarkloss = inf (* 1 = inf loss)
"""), "check the input data for NaN/Inf and its scale"),
    "layer_backward": (lambda: log(P + "    [Backward] Layer abs_z3, bottom blob z3_relu2_0_split_0 diff: nan"),
                       "check the Backward of layer abs_z3"),
    "unknown": (lambda: log(f"""
{P}    [Forward] Layer conv1, top blob conv1 data: nan
I0101 00:00:00.0 1 solver.cpp:218] Iteration 20 (1 iter/s, 1s/20 iters), loss = nan
"""), "`base_lr: 0.5 -> 0.05`"),
    "dead_path": (lambda: log(f"""
{P}    [Forward] Layer ip1, top blob ip1 data: 105.307
{P}    [Forward] Layer relu1, top blob rl1 data: 0
{P}    [Forward] Layer ip2, top blob ip2 data: 1.12986
{P}    [Forward] Layer loss, top blob (automatic) data: 1.98465
{P}    [Backward] Layer loss, bottom blob ip2 diff: 0.015342
{P}    [Backward] Layer ip2, bottom blob rl1 diff: 0.00637092
{P}    [Backward] Layer relu1, bottom blob ip1 diff: 0
"""), "scale the input data"),
    "test_at_chance": (lambda: log("""
I1224 16:55:25.943426 31888 solver.cpp:106] Iteration 0, Testing net
I1224 16:56:24.839272 31888 solver.cpp:142] Test score #0: 0.13
I1224 16:56:24.839352 31888 solver.cpp:142] Test score #1: 1.79222
I1224 17:08:05.140704 31888 solver.cpp:87] Iteration 1000, loss = 3.57628e-08
I1224 17:08:05.140821 31888 solver.cpp:106] Iteration 1000, Testing net
I1224 17:09:12.241538 31888 solver.cpp:142] Test score #0: 0.106667
I1224 17:09:12.241590 31888 solver.cpp:142] Test score #1: 37.4691
I1224 17:20:54.376219 31888 solver.cpp:87] Iteration 2000, loss = 0.01
I1224 17:20:54.376232 31888 solver.cpp:106] Iteration 2000, Testing net
I1224 17:22:02.605139 31888 solver.cpp:142] Test score #0: 0.079
I1224 17:22:02.605213 31888 solver.cpp:142] Test score #1: 27.376
"""), "give the test data layer the same transform_param"),
}


def test_every_cause_class_has_a_case():
    assert set(CASES) == set(CAUSES)


@pytest.mark.parametrize("cause", sorted(CASES))
def test_the_first_suggestion_fits_the_cause(cause):
    scenario, first = CASES[cause]
    found = [f for f in scenario() if f.evidence.get("cause") == cause]
    assert found, f"no finding with cause {cause}"
    assert first in found[0].suggestions[0], found[0].suggestions


def test_a_saturated_tanh_under_an_exploding_loss_is_not_starved():
    # The live case: TanH at +-1 passes exactly 0 gradient while the loss grew to 1e11: the fix is
    # the step size or the data's scale, never "connect it to a loss".
    net = tanh_net()
    found = run(net, stream(net, range(6), lambda it: {
        (FORWARD, "tanh1", "fc1"): {"mean_abs": 1.0, "max_abs": 1.0}, (BACKWARD, "tanh1", "fc1"): _ZERO,
        (BACKWARD, "fc1", "param blob 0"): _ZERO, (BACKWARD, "fc1", "param blob 1"): _ZERO}, loss=1e11))
    (halt,) = [f for f in found if f.kind == "no_gradient"]
    assert (halt.layer, halt.evidence["cause"], halt.evidence["cut_by"]) == ("fc1", "saturated", "tanh1")
    assert not any("connect layer" in s for s in halt.suggestions)
    assert "saturated" in halt.message and "mean |top| = 1" in halt.message


SATURATING_NET = """name: "saturating"
layer { name: "data" type: "DummyData" top: "data" top: "target"
  dummy_data_param { data_filler { type: "gaussian" std: 1000000 } data_filler { type: "gaussian" std: 1 }
    shape { dim: 16 dim: 8 } shape { dim: 16 dim: 1 } } }
layer { name: "hidden" type: "InnerProduct" bottom: "data" top: "hidden"
  inner_product_param { num_output: 16 weight_filler { type: "xavier" } } }
layer { name: "tanh" type: "TanH" bottom: "hidden" top: "hidden" }
layer { name: "out" type: "InnerProduct" bottom: "hidden" top: "out"
  inner_product_param { num_output: 1 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss" }
"""


@pytest.mark.caffe
def test_live_a_tanh_saturated_by_unscaled_inputs_gets_the_step_and_scale_fixes(tmp_path):
    # Inputs of std 1e6 drive every TanH output to exactly +-1 in float: layer hidden gets exactly 0 gradient.
    solver = write_net(tmp_path / "net", SATURATING_NET,
                       'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 20\ndisplay: 1\n'
                       'random_seed: 3\n')
    result = harness("train", solver, "--run-dir", tmp_path / "run", "--quiet")
    anomaly = verdict(tmp_path / "run")["anomaly"]
    assert result.returncode == 1, result.stderr
    assert (anomaly["kind"], anomaly["layer"], anomaly["evidence"]["cause"], anomaly["evidence"]["cut_by"]) == \
        ("no_gradient", "hidden", "saturated", "tanh")
    # Saturated from iteration 0, before any step: the data's scale first, then the step size.
    assert anomaly["suggestions"][0].startswith("scale the inputs and targets")
    assert anomaly["suggestions"][1].startswith("`base_lr: 0.01 -> 0.001`")
    assert not any("connect layer" in s for s in anomaly["suggestions"])
