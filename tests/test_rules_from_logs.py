"""The rules on literal excerpts of the logs people paste (the parser, then the rules, no net definition): what
a log without debug_info or with one pasted pass lets them say, and where it must stay silent."""
from __future__ import annotations

import math

from harness.log import glog
from harness.rules import config
from harness.rules.engine import RuleEngine
from harness.rules.findings import HALT, WARN

P = "I0101 00:00:00.000000  1 net.cpp:593] "
S = "I0101 00:00:00.000000  1 solver.cpp:218] "


def judge(text: str) -> list:
    engine = RuleEngine(config.load(None), {}, None, "log")
    found = []
    for record in glog.parse_lines(text.strip("\n").splitlines()):
        found += engine.feed(record)
    return found + engine.finish()


def where(f) -> tuple:
    return f.kind, f.iteration, f.iteration_range, f.net, f.layer, f.output


def display(iteration: int, shown, every=20, **outputs) -> str:
    lines = [f"{S}Iteration {iteration} (1 iter/s, 1s/{every} iters), loss = {shown}"]
    lines += [f"{S}    Train net output #{k}: {name} = {value} (* 1 = {value} loss)"
              for k, (name, value) in enumerate(outputs.items())]
    return "\n".join(lines)


# ---- non-finite numbers outside debug lines ---------------------------------------------------------------
def test_the_head_that_went_non_finite_is_named_with_the_display_range():
    found = judge("\n".join([display(0, 5.4, bbox=1.2, cls=4.2), display(20, "nan", bbox="nan", cls=4.1)]))
    (halt,) = found
    assert where(halt) == ("nonfinite", 20, (1, 20), "train", "(outputs)", "bbox") and halt.severity == HALT
    assert "cls = 4.1" in halt.message and halt.evidence["cause"] == "loss_head"


def test_when_every_head_is_non_finite_the_log_cannot_tell_which_went_first():
    (halt,) = judge("\n".join([display(0, 5.4, a=1.2, b=4.2), display(40, "nan", every=40, a="nan", b="-nan")]))
    assert where(halt)[:3] == ("nonfinite", 40, (1, 40)) and "does not tell which went first" in halt.message


def test_the_first_display_of_an_excerpt_says_it_may_have_gone_earlier_unless_the_display_interval_says():
    (halt,) = judge(f"{S}Iteration 500, loss = nan")      # old Caffe: no interval printed
    assert where(halt)[:3] == ("nonfinite", 500, None) and "may have gone non-finite at any earlier" in halt.message
    (halt,) = judge(display(500, "nan", every=100, loss="nan"))
    assert halt.iteration_range == (401, 500)


def test_loss_inf_at_iteration_zero_is_the_data_or_the_initialisation_not_the_step():
    (halt,) = judge(display(0, "inf", landmarkloss="inf"))
    assert halt.evidence["cause"] == "nonfinite_at_start" and "will not help" in halt.suggestions[-1]


def test_a_test_output_a_test_score_the_lr_and_norms():
    (halt,) = judge(f"{S}Iteration 0, Testing net (#0)\n{S}    Test net output #0: accuracy = -nan\n"
                    f"{S}    Test net output #1: loss = 2.3 (* 1 = 2.3 loss)")
    assert where(halt) == ("nonfinite", 0, None, "test0", "(outputs)", "accuracy")
    assert halt.evidence["cause"] == "hidden_nan_output"
    (halt,) = judge(f"{S}Iteration 0, Testing net\n{S}Test score #0: 0.1\n{S}Test score #1: nan")
    assert halt.output == "Test score #1"
    (halt,) = judge(f"{S}Iteration 0, lr = -nan")
    assert (halt.layer, halt.blob, halt.phase) == ("(solver)", "lr", "update")
    (halt,) = judge("E0101 00:00:00.0 1 net.cpp:721]     [Backward] All net params (data, diff): "
                    "L1 norm = (66.4, nan); L2 norm = (5.2, nan)")
    assert (halt.layer, halt.blob) == ("All net params", "L1 norm (diff)")


def test_old_update_lines_and_any_caffe_line_with_a_nan():
    (halt,) = judge(f"{P}    [Update] Layer conv1, param 0 data: 0.0123; diff: nan")
    assert (halt.layer, halt.blob, halt.phase, halt.evidence["cause"]) == \
        ("conv1", "param blob 0", "update", "exploding")
    (halt,) = judge(f"{S}Gradient clipping: scaling down gradients (L2 norm inf > 35) by scale factor 0")
    assert halt.layer == "(log line)" and "L2 norm inf" in halt.message


def test_a_nan_display_over_finite_outputs_is_the_running_mean():
    found = judge("\n".join([display(0, 2.3, loss=2.3), display(20, "nan", loss=1.9)]))
    assert [(f.kind, f.severity) for f in found] == [("nonfinite", HALT), ("intermittent_nan_display", WARN)]
    assert found[0].evidence["cause"] == "intermittent_nan"


def test_words_in_prose_and_the_throughput_of_iteration_zero_are_no_values():
    text = "My loss goes nan or inf sometimes.\n" + display(0, 2.3, loss=2.3).replace("1 iter/s", "-nan iter/s")
    assert judge(text) == []


# ---- partial debug pastes: one pass, no Iteration line ----------------------------------------------------
def test_a_dead_path_from_its_first_layer_within_one_pass():
    (halt,) = judge(f"""
{P}    [Forward] Layer conv1_3, param blob 0 data: 0.00796308
{P}    [Forward] Layer relu1_3, top blob conv1_3 data: 0
{P}    [Forward] Layer relu1_3, param blob 0 data: 0.25
{P}    [Forward] Layer res1_3, top blob res1_3 data: 0
{P}    [Forward] Layer conv2_1, top blob conv2_1 data: 0
{P}    [Forward] Layer conv2_1, param blob 0 data: 0.0360487
{P}    [Backward] Layer softmax_loss, bottom blob fc6 diff: nan
""")
    assert where(halt) == ("dead", 0, None, "train", "relu1_3", None) and halt.evidence["cause"] == "dead_path"
    assert "conv2_1 has non-zero weights" in halt.message


def test_zero_tops_with_zero_weights_or_a_single_zero_label_are_no_dead_path():
    assert judge(f"""
{P}    [Forward] Layer data, top blob label data: 0
{P}    [Forward] Layer label_split, top blob label_split_0 data: 0
{P}    [Forward] Layer conv1, top blob conv1 data: 0.5
{P}    [Forward] Layer fc, top blob fc data: 0
{P}    [Forward] Layer fc, param blob 0 data: 0
{P}    [Forward] Layer relu, top blob fc data: 0
{P}    [Forward] Layer fc2, top blob fc2 data: 0
{P}    [Forward] Layer fc2, param blob 0 data: 0
""") == []


def test_nan_first_in_backward_at_the_loss_is_localised_there():
    (halt,) = judge(f"""
{P}    [Forward] Layer fc6, top blob fc6 data: 0.5
{P}    [Forward] Layer softmax_loss, top blob softmax_loss data: 2.3
{P}    [Backward] Layer softmax_loss, bottom blob fc6 diff: nan
{P}    [Backward] Layer fc6, bottom blob fc5 diff: nan
""")
    assert (halt.kind, halt.phase, halt.layer, halt.blob, halt.evidence["cause"]) == \
        ("nonfinite", "backward", "softmax_loss", "fc6", "loss_layer")


def test_batchnorm_statistics_never_loaded_multiply_by_about_316():
    bn = f"""
{P}    [Forward] Layer conv2, top blob conv2 data: 2.17566e+11
{P}    [Forward] Layer conv2/bn, top blob conv2/bn data: {{top}}
{P}    [Forward] Layer conv2/bn, param blob 0 data: 0
{P}    [Forward] Layer conv2/bn, param blob 1 data: 0
{P}    [Forward] Layer conv2/bn, param blob 2 data: 0
"""
    (halt,) = judge(bn.format(top="7.21901e+13"))
    assert (halt.kind, halt.layer) == ("batchnorm_empty_stats", "conv2/bn")
    assert "A lower learning rate will not help" in halt.message and halt.evidence["gain_seen"] == 331.8
    assert judge(bn.format(top="2.2e+11")) == []     # three zero blobs that do not amplify: not a BatchNorm's signature


# ---- learning-level failures without nan --------------------------------------------------------------------
def test_a_softmax_loss_pinned_at_87_3365_without_the_net():
    found = judge("\n".join([display(0, 9.2, loss=9.2)] + [display(it, 87.3365, loss=87.3365)
                                                            for it in range(100, 400, 100)]))
    assert [where(f) for f in found] == [("saturated_softmax_loss", 100, (1, 100), "train", "(outputs)", "loss")]


def test_every_loss_exactly_zero_at_most_displays_is_no_learning_signal():
    zero = [display(it, 0, mbox_loss=0) for it in (0, 50, 150)]
    (halt,) = judge("\n".join(zero[:2] + [display(100, 4.4, mbox_loss=4.4)] + zero[2:]))
    assert where(halt)[:2] == ("no_learning_signal", 0) and halt.output == "mbox_loss"
    assert judge("\n".join([display(it, 2.0, mbox_loss=2.0) for it in (0, 50, 100)] + zero[2:])) == []


def test_large_summed_losses_that_fluctuate_are_not_an_explosion():
    values = [45369.6, 30310.2, 52000.0, 28000.0, 61000.0, 33000.0]
    assert judge("\n".join(display(20 * k, v, dsn2_loss=v, fuse_loss=v / 2) for k, v in enumerate(values))) == []


def test_a_loss_that_grows_a_thousandfold_and_stays_is_exploding():
    text = "\n".join(display(20 * k, v, loss=v) for k, v in enumerate([161660, 3.7e9, 1.38e9]))
    (warning,) = judge(text)
    assert where(warning) == ("exploding", 20, (1, 20), "train", "(outputs)", "loss") and warning.severity == WARN
    assert judge("\n".join(display(20 * k, v, loss=v) for k, v in enumerate([3.6e-8, 1.3, 0.0]))) == []


def test_a_loss_collapsed_to_exactly_ln_1000():
    text = "\n".join([display(0, 6.91161, loss=6.91161)] + [display(it, 6.905, loss=6.90776) for it in (20, 40, 60)])
    (warning,) = judge(text)
    assert where(warning) == ("collapse_to_chance", 20, (1, 20), "train", "(outputs)", "loss")
    assert warning.evidence["classes"] == 1000 and "unchanged" in warning.evidence["classes_from"]


def test_stuck_at_chance_needs_the_log_to_say_k_and_never_flags_the_start_of_training():
    test = (f"{S}Iteration 78000, Testing net (#0)\n{S}    Test net output #0: accuracy = 0.001\n"
            f"{S}    Test net output #1: loss = 6.90977 (* 1 = 6.90977 loss)\n")
    stuck = test + "\n".join(f"{S}Iteration {it}, loss = {v}" for it, v in ((78000, 6.9063), (78020, 6.90727)))
    (warning,) = judge(stuck)
    assert where(warning)[:4] == ("stuck_at_chance", 78000, None, "train")
    assert warning.evidence["classes"] == 1000 and math.isclose(warning.evidence["chance_loss"], math.log(1000))
    start = test.replace("78000", "0") + "\n".join(f"{S}Iteration {it}, loss = 6.9{it % 7}" for it in (0, 20, 40))
    assert judge(start) == []
    assert judge("\n".join(f"{S}Iteration {it}, loss = 6.4" for it in (116000, 116100))) == []   # K unknown


def test_debug_lines_at_display_iterations_only_give_the_range_too():
    def debug(fc2):
        return (f"{P}    [Forward] Layer fc1, top blob fc1 data: 0.5\n{P}    [Forward] Layer fc2, top blob fc2 data: "
                f"{fc2}\n")
    (halt,) = judge(debug(0.7) + display(0, 2.3, loss=2.3) + "\n" + debug("inf") + display(20, "nan", loss="nan"))
    assert (halt.iteration, halt.layer, halt.iteration_range) == (20, "fc2", (1, 20))
    assert "it went non-finite in one of iterations 1-20" in halt.message
