"""The Caffe-specific rules (issue 12) on literal record streams for toy nets; no Caffe."""
from __future__ import annotations

import math

from harness.rules import config
from harness.rules.findings import HALT, WARN
from harness.core.netinfo import SolverInfo
from harness.core.records import BACKWARD, FORWARD, Event, IterationEnd, ParamNorms
from harness.rules.engine import RuleEngine
from rule_fixtures import NAN, build, layer, mlp, records, stream

SOLVER = SolverInfo(solver_path="solver.prototxt", net_paths={"train": "train.prototxt"}, base_lr=0.01,
                    lr_policy="step", gamma=0.001, stepsize=5)


def engine(net, source="live", overrides=None):
    return RuleEngine(config.load(None, overrides), {"train": net}, SOLVER, source)


def run(eng, recs) -> list:
    found = []
    for record in recs:
        found += eng.feed(record)
    return found + eng.finish()


def kinds(found) -> list:
    return [f.kind for f in found]


class _Classifier:
    """Stands in for a LayerParameter with inner_product_param.num_output (K for the chance rule)."""

    def __init__(self, num_output):
        self.param = []
        self.propagate_down = []
        self.inner_product_param = type("P", (), {"num_output": num_output})()

    def HasField(self, name):
        return name == "inner_product_param"


def classifier(k=4):
    """mlp() whose fc2 says num_output K: the loss's chance level is ln K."""
    layers = [layer("data", "HDF5Data", tops=("data", "label")),
              layer("fc1", "InnerProduct", ("data",), ("fc1",), 2),
              layer("relu1", "ReLU", ("fc1",), ("fc1",)),
              layer("fc2", "InnerProduct", ("fc1",), ("fc2",), 2),
              layer("loss", "SoftmaxWithLoss", ("fc2", "label"), ("loss",), loss_weights=[1.0])]
    return build("toy", layers, {"fc2": _Classifier(k)}, False)


def two_heads():
    layers = [layer("data", "HDF5Data", tops=("data", "label", "target")),
              layer("fc1", "InnerProduct", ("data",), ("fc1",), 2),
              layer("fc_cls", "InnerProduct", ("fc1",), ("fc_cls",), 2),
              layer("loss_cls", "SoftmaxWithLoss", ("fc_cls", "label"), ("loss_cls",), loss_weights=[1.0]),
              layer("fc_reg", "InnerProduct", ("fc1",), ("fc_reg",), 2),
              layer("loss_reg", "EuclideanLoss", ("fc_reg", "target"), ("loss_reg",), loss_weights=[10.0])]
    return build("toy", layers, {}, False)


def with_outputs(recs, outputs_at, **end_fields):
    """Replace each IterationEnd's outputs by outputs_at(iteration) (and other fields)."""
    out = []
    for r in recs:
        if isinstance(r, IterationEnd):
            fields = {k: v(r.iteration) if callable(v) else v for k, v in end_fields.items()}
            r = IterationEnd(r.iteration, loss=r.loss, smoothed_loss=fields.get("smoothed_loss", r.loss),
                             outputs=outputs_at(r.iteration), lr=fields.get("lr", r.lr))
        out.append(r)
    return out


# --- every new rule is silent on a healthy stream ---------------------------------------------------

def test_the_caffe_rules_are_silent_on_a_healthy_classifier_live_and_from_a_log():
    net = classifier(4)
    for live in (True, False):
        recs = with_outputs(stream(net, range(120), live=live),
                            lambda it: {"loss": 1.386 * math.exp(-it / 10) + 0.05})
        assert run(engine(net, "live" if live else "log"), recs) == []


# --- batchnorm_empty_stats -----------------------------------------------------------------------

def _bn_net():
    layers = [layer("data", "HDF5Data", tops=("data", "label")),
              layer("conv1", "Convolution", ("data",), ("conv1",), 2),
              layer("bn1", "BatchNorm", ("conv1",), ("bn1",), 3),
              layer("fc", "InnerProduct", ("bn1",), ("fc",), 2),
              layer("loss", "SoftmaxWithLoss", ("fc", "label"), ("loss",), loss_weights=[1.0])]
    return build("toy", layers, {}, False)


def _bn_zero(it=0):
    return {(FORWARD, "bn1", f"param blob {k}"): {"mean_abs": 0.0} for k in range(3)}


def test_batchnorm_empty_stats_names_the_first_batchnorm_with_all_three_blobs_zero():
    net = _bn_net()
    for source, live in (("live", True), ("log", False)):
        eng = engine(net, source)
        changes = {**_bn_zero(), (FORWARD, "bn1", "bn1"): {"mean_abs": 316.0}}
        found = run(eng, records(net, 0, changes, live=live))
        halt = eng.halt
        assert (halt.kind, halt.iteration, halt.phase, halt.layer, halt.blob, halt.severity) == \
            ("batchnorm_empty_stats", 0, FORWARD, "bn1", "bn1", HALT)
        assert "weights were probably not loaded" in halt.message and halt.evidence["cause"] == "empty_bn_stats"
        assert kinds(found) == ["batchnorm_empty_stats"]


def test_batchnorm_with_one_filled_blob_or_a_test_pass_before_training_is_not_flagged():
    net = _bn_net()
    filled = {**_bn_zero(), (FORWARD, "bn1", "param blob 2"): {"mean_abs": 1.0}}
    assert run(engine(net), records(net, 0, filled)) == []
    # The iteration-0 test pass runs before the train net computed any statistics.
    assert run(engine(net), records(net, 0, _bn_zero(), net_name="test0", backward=False)) == []


# --- weights_not_loaded --------------------------------------------------------------------------

def _ignored(*names):
    return [Event(None, "ignored_source_layer", name) for name in names]


def test_weights_not_loaded_lists_ignored_source_layers_beside_net_layers_left_at_their_fillers():
    net = mlp()
    zero_bias = {(FORWARD, "fc1", "param blob 1"): {"mean_abs": 0.0}, (FORWARD, "fc2", "param blob 1"): {"mean_abs": 0.0}}
    # Caffe logs the ignored layers once per net (train and test): they are listed once.
    recs = _ignored("ip1", "ip2", "ip1", "ip2") + stream(net, range(3), lambda it: zero_bias if it == 0 else None,
                                                         live=False)
    eng = engine(net, "log")
    found = run(eng, recs)
    assert kinds(found) == ["weights_not_loaded"] and eng.halt is None
    f = found[0]
    assert (f.iteration, f.layer, f.blob, f.severity) == (0, "fc1", "param blob 1", WARN)
    assert f.evidence["side_by_side"]["rows"] == [["ip1", "fc1"], ["ip2", "fc2"]]


def test_weights_not_loaded_is_silent_when_every_net_layer_was_loaded_or_no_weights_were_given():
    net = mlp()
    assert run(engine(net), _ignored("prob") + stream(net, range(3))) == []      # a deploy-only layer ignored
    zero_bias = {(FORWARD, "fc1", "param blob 1"): {"mean_abs": 0.0}}
    assert run(engine(net), stream(net, range(3), lambda it: zero_bias)) == []   # from scratch


# --- saturated_softmax_loss ----------------------------------------------------------------------

def test_saturated_softmax_loss_fires_after_patience_pinned_iterations_and_names_the_first():
    net = classifier(3)
    recs = with_outputs(stream(net, range(6)), lambda it: {"loss": 2.0 if it < 2 else 87.3365})
    eng = engine(net)
    found = run(eng, recs)
    assert kinds(found) == ["saturated_softmax_loss"]
    assert (eng.halt.iteration, eng.halt.layer, eng.halt.blob, eng.halt.evidence["confirmed_at"]) == (2, "loss", "loss", 4)
    assert "-log(FLT_MIN)" in eng.halt.message


def test_a_loss_near_but_not_at_the_clamp_is_not_saturated():
    net = classifier(3)
    assert run(engine(net), with_outputs(stream(net, range(6)), lambda it: {"loss": 84.14})) == []


# --- chance_loss ---------------------------------------------------------------------------------

def test_stuck_at_chance_when_the_window_mean_stays_at_ln_k():
    net = classifier(4)
    recs = with_outputs(stream(net, range(60)), lambda it: {"loss": math.log(4) + (0.03 if it % 2 else -0.03)})
    found = run(engine(net), recs)
    assert kinds(found) == ["stuck_at_chance"]
    assert (found[0].iteration, found[0].evidence["confirmed_at"], found[0].evidence["classes"]) == (0, 49, 4)


def test_collapse_to_chance_after_learning_with_the_spikes_that_announced_it():
    net = classifier(4)

    def loss(it):
        if it < 40:
            return 3.0 if it in (20, 28) else 0.1
        return 4.0 if it < 43 else math.log(4)
    found = run(engine(net), with_outputs(stream(net, range(120)), lambda it: {"loss": loss(it)}))
    assert kinds(found) == ["collapse_to_chance"]
    f = found[0]
    assert f.iteration == 40 and [s["iteration"] for s in f.evidence["spikes"]] == [20, 28]


def test_chance_is_not_judged_without_k():
    net = mlp()      # fc2 without num_output
    recs = with_outputs(stream(net, range(60)), lambda it: {"loss": math.log(4)})
    assert run(engine(net), recs) == []


# --- loss_head -----------------------------------------------------------------------------------

def test_loss_head_names_the_head_that_exploded_while_the_other_stayed_finite():
    net = two_heads()
    recs = with_outputs(stream(net, range(5)), lambda it: {"loss_cls": 1.4 + it * 0.1, "loss_reg": 2.0 * 30 ** it})
    found = run(engine(net), recs)
    assert kinds(found) == ["loss_head"]
    f = found[0]
    assert (f.iteration, f.layer, f.evidence["loss_weight"]) == (2, "loss_reg", 10.0)
    assert any("loss_weight" in s and "10 -> 1" in s for s in f.suggestions)


def test_loss_head_on_the_forward_line_of_a_non_finite_loss_top():
    net = two_heads()
    recs = with_outputs(stream(net, range(2)), lambda it: {"loss_cls": 1.4, "loss_reg": 2.0})
    recs += records(net, 2, {(FORWARD, "loss_reg", "loss_reg"): {"mean_abs": NAN, "nonfinite": 1}})
    eng = engine(net)
    found = run(eng, recs)
    assert kinds(found) == ["nonfinite", "loss_head"]
    assert (found[1].iteration, found[1].layer, found[1].severity) == (2, "loss_reg", WARN)


# --- intermittent_nan_display --------------------------------------------------------------------

def test_a_nan_display_over_finite_outputs_names_the_earlier_non_finite_iteration():
    net = classifier(4)
    recs = with_outputs(stream(net, range(8)), lambda it: {"loss": NAN if it == 5 else 1.0},
                        smoothed_loss=lambda it: NAN if it >= 5 else 1.0)
    found = run(engine(net, overrides={"nonfinite.policy": "off"}), recs)
    assert kinds(found) == ["intermittent_nan_display"]
    assert (found[0].iteration, found[0].evidence["nonfinite_iteration"]) == (6, 5)


def test_a_finite_display_over_a_non_finite_output_is_the_reverse_case():
    net = classifier(4)
    recs = with_outputs(stream(net, range(3)), lambda it: {"loss": 1.0, "ratio": NAN if it == 1 else 0.5})
    found = run(engine(net), recs)
    assert kinds(found) == ["intermittent_nan_display"]
    assert (found[0].blob, found[0].evidence["cause"]) == ("ratio", "hidden_nan_output")


# --- no_learning_signal --------------------------------------------------------------------------

def _zero_norms(recs):
    return [ParamNorms(r.iteration, r.net, r.pass_index, r.l1_data, 0.0, r.l2_data, 0.0)
            if isinstance(r, ParamNorms) else r for r in recs]


def test_no_learning_signal_halts_before_no_gradient_names_a_starved_parameter():
    net = classifier(4)
    zero_diffs = lambda it: {(BACKWARD, l, f"param blob {k}"): {"mean_abs": 0.0} for l in ("fc1", "fc2") for k in (0, 1)}
    recs = with_outputs(_zero_norms(stream(net, range(8), zero_diffs)), lambda it: {"loss": 0.0})
    eng = engine(net)
    found = run(eng, recs)
    assert kinds(found) == ["no_learning_signal"]
    assert (eng.halt.iteration, eng.halt.phase, eng.halt.layer, eng.halt.evidence["confirmed_at"]) == (0, BACKWARD, "loss", 2)


def test_a_zero_loss_with_a_gradient_is_a_learning_signal():
    net = classifier(4)
    recs = with_outputs(stream(net, range(8)), lambda it: {"loss": 0.0})
    assert "no_learning_signal" not in kinds(run(engine(net), recs))


# --- lr_out_of_range -----------------------------------------------------------------------------

def test_lr_out_of_range_warns_once_with_the_schedule_value():
    net = classifier(4)
    recs = with_outputs(stream(net, range(20)), lambda it: {"loss": 0.5},
                        lr=lambda it: 0.01 * 0.001 ** (it // 5))
    found = run(engine(net), recs)
    assert kinds(found) == ["lr_out_of_range"]
    f = found[0]
    assert (f.iteration, f.value, f.severity) == (15, 0.01 * 0.001 ** 3, WARN)
    assert "gamma 0.001" in f.message and "below" in f.message


def test_lr_above_the_range_and_thresholds_from_the_command_line():
    net = classifier(4)
    recs = with_outputs(stream(net, range(3)), lambda it: {"loss": 0.5}, lr=lambda it: 2.0)
    assert kinds(run(engine(net), recs)) == ["lr_out_of_range"]
    assert run(engine(net, overrides={"lr_out_of_range.max_lr": "5"}), recs) == []
