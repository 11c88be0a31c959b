"""Each rule on literal record streams for toy nets (tests/rule_fixtures.py); no Caffe."""
from __future__ import annotations

import math
import random
from dataclasses import replace


from harness.rules import config
from harness.rules.findings import HALT, WARN
from harness.core.netinfo import SolverInfo, build
from harness.core.records import BACKWARD, FORWARD, Event
from harness.core.records import TestResult as CaffeTestResult  # not a pytest class
from harness.rules import REGISTRY
from harness.rules.engine import RuleEngine
from rule_fixtures import INF, NAN, layer, mlp, records, spec, stream

SOLVER = SolverInfo(solver_path="solver.prototxt", net_paths={"train": "train.prototxt"}, base_lr=0.5)


def engine(net, source="live", overrides=None, nets=None):
    return RuleEngine(config.load(None, overrides), nets if nets is not None else {"train": net}, SOLVER, source)


def run(eng, recs) -> list:
    found = []
    for record in recs:
        found += eng.feed(record)
    return found + eng.finish()


def nan(count=3):
    return {"mean_abs": NAN, "nonfinite": count}


# --- every rule together -------------------------------------------------------------------------

def _healthy_stream(net, iterations=60, seed=0):
    """Noisy but healthy: diffs and norms wander within 2x, ReLU tops 40-60 % zeros, loss decreasing."""
    rng = random.Random(seed)
    out = []
    for it in range(iterations):
        scale = rng.uniform(0.5, 2.0)
        changes = {
            (FORWARD, "relu1", "fc1"): {"zero_fraction": rng.uniform(0.4, 0.6)},
            (BACKWARD, "fc1", "param blob 0"): {"mean_abs": 2e-4 * scale},
            (BACKWARD, "fc1", "param blob 1"): {"mean_abs": 5e-5 * scale},
            (BACKWARD, "fc2", "param blob 0"): {"mean_abs": 1e-3 * scale},
        }
        out += records(net, it, changes, l2_diff=0.3 * scale, loss=2.3 * math.exp(-it / 30), passes=1 + it % 2)
    return out


def test_every_rule_is_silent_on_an_empty_and_on_a_healthy_stream():
    net = mlp()
    names = [rule.name for rule in REGISTRY]
    assert len(names) == len(set(names)) and {"nonfinite", "dead", "no_gradient", "vanishing", "exploding"} <= set(names)
    for recs in ([], _healthy_stream(net)):
        eng = engine(net)
        assert run(eng, recs) == []
        assert eng.halt is None and eng.findings == []
    log = engine(net, "log")
    assert run(log, stream(net, range(30), live=False)) == []


def test_every_registered_rule_has_a_config_section_with_a_policy():
    defaults = config.Config()
    for rule in REGISTRY:
        assert getattr(defaults, rule.name).policy in config.POLICIES


# --- nonfinite -----------------------------------------------------------------------------------

def test_nonfinite_names_the_forward_producer_not_the_layers_that_pass_nan_on():
    net = mlp()
    bad = {(FORWARD, "fc2", "fc2"): nan(), (FORWARD, "loss", "loss"): nan(1)}
    eng = engine(net)
    found = run(eng, stream(net, range(5), lambda it: bad if it == 3 else None))
    assert [f.kind for f in found] == ["nonfinite"]
    halt = eng.halt
    assert (halt.iteration, halt.phase, halt.layer, halt.blob, halt.severity) == (3, FORWARD, "fc2", "fc2", HALT)
    assert math.isnan(halt.value)
    assert halt.evidence["cause"] == "exploding"
    assert "`base_lr: 0.5 -> 0.05` in solver.prototxt" in halt.suggestions


def test_nonfinite_in_the_data_layer_says_the_input_holds_it_and_names_the_source():
    net = mlp()
    bad = {(FORWARD, "data", "data"): nan(), (FORWARD, "fc1", "fc1"): nan(), (FORWARD, "relu1", "fc1"): nan()}
    eng = engine(net)
    run(eng, stream(net, range(3), lambda it: bad if it == 2 else None))
    assert (eng.halt.layer, eng.halt.blob, eng.halt.evidence["cause"]) == ("data", "data", "bad_input")
    assert "train.h5list" in eng.halt.message and "input" in eng.halt.message
    assert any("train.h5list" in s for s in eng.halt.suggestions)


def test_a_log_layer_fed_out_of_its_domain_by_the_data_points_at_both():
    net = build("logs", [layer("data", "HDF5Data", tops=("counts", "label")),
                         layer("log1p", "Log", ("counts",), ("log_counts",)),
                         layer("fc", "InnerProduct", ("log_counts",), ("fc",), 2),
                         layer("loss", "SoftmaxWithLoss", ("fc", "label"), ("loss",), loss_weights=[1.0])],
                {"data": spec(source="counts.list")}, False)
    bad = {(FORWARD, "log1p", "log_counts"): nan(), (FORWARD, "fc", "fc"): nan()}
    eng = engine(net)
    run(eng, stream(net, range(6), lambda it: bad if it == 4 else None, passes=2))
    assert (eng.halt.iteration, eng.halt.layer, eng.halt.blob) == (4, "log1p", "log_counts")
    assert eng.halt.evidence["cause"] == "math_domain" and "log of a value <= 0" in eng.halt.message
    assert any("counts.list" in s for s in eng.halt.suggestions)


def test_nonfinite_in_backward_names_the_first_layer_whose_diff_turns_non_finite():
    net = mlp()
    bad = {(BACKWARD, "fc2", "fc1"): nan(), (BACKWARD, "fc2", "param blob 0"): nan(),
           (BACKWARD, "relu1", "fc1"): nan(), (BACKWARD, "fc1", "param blob 0"): nan()}
    eng = engine(net)
    run(eng, stream(net, range(4), lambda it: bad if it == 1 else None))
    halt = eng.halt
    assert (halt.iteration, halt.phase, halt.layer, halt.blob) == (1, BACKWARD, "fc2", "fc1")
    assert "diffs of its tops were finite" in halt.message


def test_a_parameter_already_non_finite_is_its_own_case_in_phase_update():
    net = mlp()
    bad = {(FORWARD, "fc2", "fc2"): nan(), (FORWARD, "fc2", "param blob 0"): nan(), (FORWARD, "loss", "loss"): nan()}
    eng = engine(net)
    run(eng, stream(net, range(6), lambda it: bad if it == 4 else None))
    halt = eng.halt
    assert (halt.iteration, halt.phase, halt.layer, halt.blob) == (4, "update", "fc2", "param blob 0")
    assert "update of iteration 3" in halt.message and halt.evidence["cause"] == "corrupted_weights"


def test_nonfinite_halts_inside_the_iteration_through_end_layer():
    net = mlp()
    eng = engine(net)
    recs = records(net, 0, {(FORWARD, "fc1", "fc1"): nan()})
    fc1 = [r for r in recs if getattr(r, "layer", "") == "fc1" and r.phase == FORWARD]
    for record in recs[:recs.index(fc1[-1]) + 1]:
        assert eng.feed(record) == []
    found = eng.end_layer()
    assert [f.layer for f in found] == ["fc1"] and eng.halt is found[0]


def test_log_source_inf_may_be_overflow_and_a_test_net_is_named():
    net = mlp()
    eng = engine(net, "log", nets={"train": net, "test0": net})
    recs = records(net, 0, live=False)
    recs += records(net, 5, {(FORWARD, "fc2", "fc2"): {"mean_abs": INF}}, live=False, net_name="test0", backward=False)
    run(eng, recs)
    assert (eng.halt.net, eng.halt.layer, eng.halt.iteration) == ("test0", "fc2", 5)
    assert "overflow" in eng.halt.message


def test_nonfinite_in_a_later_iter_size_pass_is_reported_with_its_pass():
    net = mlp()
    recs = records(net, 0, passes=2)
    second = [i for i, r in enumerate(recs) if getattr(r, "pass_index", 0) == 1 and getattr(r, "layer", "") == "fc2"]
    recs[second[0]] = replace(recs[second[0]], mean_abs=NAN, nonfinite=2)
    eng = engine(net)
    run(eng, recs)
    assert eng.halt.layer == "fc2" and eng.halt.evidence["pass_index"] == 1


def test_policies_warn_and_off():
    net = mlp()
    bad = lambda it: {(FORWARD, "fc2", "fc2"): nan()} if it >= 2 else None
    warn = engine(net, overrides={"nonfinite.policy": "warn"})
    found = run(warn, stream(net, range(5), bad))
    assert [f.severity for f in found] == [WARN] and warn.halt is None      # reported once, not per iteration
    off = engine(net, overrides={"nonfinite.policy": "off"})
    assert run(off, stream(net, range(5), bad)) == []


def test_nothing_is_judged_after_a_halt():
    net = mlp()
    eng = engine(net)
    run(eng, stream(net, range(10), lambda it: {(FORWARD, "fc2", "fc2"): nan(),
                                                (FORWARD, "relu1", "fc1"): {"zero_fraction": 1.0}} if it >= 1 else None))
    assert [f.kind for f in eng.findings] == ["nonfinite"]


def test_test_results_and_events_are_accepted():
    eng = engine(mlp())
    assert eng.feed(CaffeTestResult(0, "test0", {"accuracy": 0.1})) == [] and eng.feed(Event(0, "note", "x")) == []


# --- exploding: overflow -------------------------------------------------------------------------

def test_a_live_overflow_is_an_exploding_warning_at_the_first_place_only():
    net = mlp()
    over = {"mean_abs": INF, "overflow": True, "max_abs": 3e37}
    eng = engine(net)
    found = run(eng, stream(net, range(4), lambda it: {(FORWARD, "fc2", "fc2"): over, (FORWARD, "loss", "loss"): over}
                            if it >= 2 else None))
    assert [(f.kind, f.layer, f.iteration, f.severity) for f in found] == [("exploding", "fc2", 2, WARN)]
    assert eng.halt is None


def test_an_overflowing_l2_norm_with_finite_layers_warns_and_a_log_ending_there_is_not_ok():
    net = mlp()
    eng = engine(net, "log")
    recs = records(net, 0, live=False) + records(net, 1, live=False, l2_diff=INF)
    found = run(eng, recs)
    # An inf printed in a log is evidence: if nothing else goes non-finite by the end, it is the anomaly.
    assert [(f.kind, f.layer, f.iteration, f.severity) for f in found] == [
        ("exploding", "All net params", 1, WARN), ("nonfinite", "All net params", 1, HALT)]
    assert found[1].evidence["cause"] == "overflow"
    live = engine(net)
    assert [f.kind for f in run(live, recs)] == ["exploding"]   # live, the elements are known to be finite


# --- exploding: growth, and warning before the first NaN -----------------------------------------

def test_a_slowly_diverging_net_warns_before_the_first_nan():
    net = mlp()
    first_nan = 25

    def diverging(it):
        if it >= first_nan:
            return {(BACKWARD, "fc2", "param blob 0"): nan()}
        return {(BACKWARD, "fc2", "param blob 0"): {"mean_abs": 1e-3 * 2.2 ** it}}

    recs = []
    for it in range(first_nan + 1):
        recs += records(net, it, diverging(it), l2_diff=0.5 * 2.2 ** it if it < first_nan else NAN)
    eng = engine(net)
    found = run(eng, recs)
    warnings = [f for f in found if f.kind == "exploding"]
    assert warnings and warnings[0].iteration < first_nan
    assert eng.halt.iteration == first_nan and eng.halt.kind == "nonfinite"


def test_a_huge_mean_gradient_warns():
    net = mlp()
    eng = engine(net)
    found = run(eng, stream(net, range(3), lambda it: {(BACKWARD, "fc1", "param blob 0"): {"mean_abs": 5e6}}
                            if it == 2 else None))
    assert [(f.kind, f.layer, f.blob) for f in found] == [("exploding", "fc1", "param blob 0")]


# --- dead ----------------------------------------------------------------------------------------

def _dead_from(start, live=True):
    value = {"zero_fraction": 1.0, "mean_abs": 0.0} if live else {"mean_abs": 0.0}
    return lambda it: {(FORWARD, "relu1", "fc1"): value} if it >= start else None


def test_dead_relu_after_patience_with_since_and_its_input():
    net = mlp()
    eng = engine(net, overrides={"no_gradient.policy": "off"})
    found = run(eng, stream(net, range(12), _dead_from(3)))
    assert [f.kind for f in found] == ["dead"]
    halt = eng.halt
    assert (halt.layer, halt.blob, halt.iteration, halt.phase) == ("relu1", "fc1", 3, FORWARD)
    assert halt.evidence["confirmed_at"] == 7 and halt.evidence["feeding_layer"] == "fc1"
    assert "fc1" in halt.message and "param blob 1" in halt.message
    assert halt.evidence["cause"] == "died_in_training" and "`base_lr: 0.5 -> 0.05` in solver.prototxt" in halt.suggestions


def test_dead_at_initialisation_points_at_the_bias_filler():
    net = mlp()
    eng = engine(net)
    run(eng, stream(net, range(6), _dead_from(0)))
    assert eng.halt.evidence["cause"] == "dead_at_init"
    assert any("bias_filler" in s and "fc1" in s for s in eng.halt.suggestions)


def test_dead_needs_consecutive_iterations_and_a_high_fraction():
    net = mlp()
    flicker = lambda it: {(FORWARD, "relu1", "fc1"): {"zero_fraction": 1.0}} if it % 4 else None
    assert run(engine(net), stream(net, range(20), flicker)) == []
    mostly = lambda it: {(FORWARD, "relu1", "fc1"): {"zero_fraction": 0.9}}
    assert run(engine(net), stream(net, range(20), mostly)) == []
    assert run(engine(net, overrides={"dead.zero_fraction": "0.85"}), stream(net, range(20), mostly))


def test_dead_from_a_log_counts_a_printed_zero_mean():
    net = mlp()
    eng = engine(net, "log", overrides={"no_gradient.policy": "off"})
    run(eng, stream(net, range(8), _dead_from(1, live=False), live=False))
    assert (eng.halt.kind, eng.halt.iteration) == ("dead", 1)


# --- no_gradient ---------------------------------------------------------------------------------

def test_disconnected_branch_is_flagged_and_a_frozen_layer_never():
    extra = [layer("aux", "InnerProduct", ("data",), ("aux",), 2),
             layer("frozen", "InnerProduct", ("data",), ("frz",), 2),
             layer("frz_loss", "EuclideanLoss", ("frz", "label"), ("frz_loss",), loss_weights=[1.0])]
    net = mlp(extra, {"frozen": spec(lr_mults=(0, 0))})
    eng = engine(net)
    found = run(eng, stream(net, range(8)))
    assert [(f.kind, f.layer, f.blob) for f in found] == [("no_gradient", "aux", "param blob 0")]
    assert eng.halt.evidence["cause"] == "not_connected" and eng.halt.iteration == 0
    assert eng.halt.evidence["confirmed_at"] == 4
    assert "not connected to any loss" in eng.halt.message


def test_propagate_down_false_is_named():
    net = mlp(specs={"loss": spec(propagate_down=(0, 0))})
    eng = engine(net)
    run(eng, stream(net, range(6)))
    assert (eng.halt.kind, eng.halt.layer) == ("no_gradient", "fc1")
    assert eng.halt.evidence["cause"] == "propagate_down" and eng.halt.evidence["cut_by"] == "loss"
    assert any("propagate_down" in s and "loss" in s for s in eng.halt.suggestions)


def test_starved_by_a_dead_relu_above():
    net = mlp()
    zero = {"mean_abs": 0.0}
    changes = lambda it: {(BACKWARD, "relu1", "fc1"): zero, (BACKWARD, "fc1", "param blob 0"): zero,
                          (BACKWARD, "fc1", "param blob 1"): zero}
    eng = engine(net, overrides={"dead.policy": "off"})
    run(eng, stream(net, range(6), changes))
    assert (eng.halt.kind, eng.halt.layer, eng.halt.evidence["cause"], eng.halt.evidence["cut_by"]) == \
        ("no_gradient", "fc1", "starved", "relu1")


def test_a_shared_parameter_gets_its_gradient_through_the_connected_layer():
    extra = [layer("twin", "InnerProduct", ("data",), ("twin",), 2)]
    net = mlp(extra, {"fc1": spec(lr_mults=(1, 1), names=("w", "")), "twin": spec(lr_mults=(1, 1), names=("w", ""))})
    found = run(engine(net), stream(net, range(8)))
    assert [(f.layer, f.blob) for f in found] == [("twin", "param blob 1")]


def test_a_log_without_the_net_says_lr_mult_is_unknown():
    net = mlp()
    zero = {"mean_abs": 0.0}
    eng = engine(net, "log", nets={})
    run(eng, stream(net, range(6), lambda it: {(BACKWARD, "fc2", "param blob 1"): zero}, live=False))
    assert (eng.halt.layer, eng.halt.blob) == ("fc2", "param blob 1")
    assert "lr_mult is unknown" in eng.halt.message and eng.halt.evidence["lr_mult"] is None


def test_iterations_without_backward_lines_do_not_count():
    net = mlp(specs={"loss": spec(propagate_down=(0, 0))})
    recs = []
    for it in range(20):
        recs += records(net, it, live=False, backward=(it % 10 == 0))
    assert run(engine(net, "log"), recs) == []


# --- vanishing -----------------------------------------------------------------------------------

def test_vanishing_absolute_threshold_and_depth_ratio():
    net = mlp()
    tiny = lambda it: {(BACKWARD, "fc1", "param blob 1"): {"mean_abs": 1e-9}}
    found = run(engine(net), stream(net, range(8), tiny))
    assert [(f.kind, f.layer, f.blob, f.severity, f.iteration) for f in found] == \
        [("vanishing", "fc1", "param blob 1", WARN, 0)]
    ratio = lambda it: {(BACKWARD, "fc1", "param blob 0"): {"mean_abs": 1e-6}, (BACKWARD, "fc2", "param blob 0"): {"mean_abs": 1e-1}}
    found = run(engine(net), stream(net, range(8), ratio))
    assert [(f.kind, f.layer, f.evidence["top_layer"]) for f in found] == [("vanishing", "fc1", "fc2")]
    assert found[0].evidence["confirmed_at"] == 4


def test_the_bias_below_a_batchnorm_is_not_vanishing():
    extra = [layer("bn", "BatchNorm", ("fc2",), ("fc2",), 3)]
    net = mlp(extra)
    tiny = lambda it: {(BACKWARD, "fc2", "param blob 1"): {"mean_abs": 1e-10},
                       (BACKWARD, "bn", "param blob 0"): {"mean_abs": 0.0}}
    assert run(engine(net), stream(net, range(8), tiny)) == []
