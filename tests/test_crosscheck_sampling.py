"""Which iterations Caffe prints its debug lines for (`harness train --crosscheck`), and that a long run keeps
windows, not history: the cross-check's pending values and the rules' state stay the same size."""
import json
import re

import pytest

from harness.core import netinfo
from harness.core.records import IterationEnd
from harness.core.store import iter_run_records
from harness.log.crosscheck import CrossCheck
from harness.rules import config
from harness.rules.engine import RuleEngine
from harness.run import supervisor
from harness.run.solver import EVERY, SAMPLE, sampled_display
from harness_run import harness, verdict, write_net, zoo_solver

# Uniform labels over 10 classes: the loss stays near ln 10 and no rule halts, however long it trains.
TINY_NET = """name: "tiny"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 4 dim: 16 } data_filler { type: "gaussian" std: 0.3 }
    shape { dim: 4 } data_filler { type: "uniform" min: 0 max: 9.99 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param { num_output: 8 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""
TINY_SOLVER = 'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 1\ndisplay: 5\nrandom_seed: 3\n'


@pytest.mark.parametrize("user, mode, every_iters, display", [
    (1, SAMPLE, 100, 1), (20, SAMPLE, 100, 20), (100, SAMPLE, 100, 100), (30, SAMPLE, 100, 30),
    (150, SAMPLE, 100, 50),      # Caffe still prints at the user's 150, 300, ... and at least every 100
    (1000, SAMPLE, 100, 100), (0, SAMPLE, 100, 100), (0, SAMPLE, 7, 7), (20, EVERY, 100, 1), (0, EVERY, 100, 1),
])
def test_the_sampled_display(user, mode, every_iters, display):
    assert sampled_display(user, mode, every_iters) == display


def test_the_norms_line_is_awaited_only_on_displayed_iterations():
    from harness.core.records import ParamNorms
    check = CrossCheck(display=5)
    for iteration in range(12):
        check.add_harness(ParamNorms(iteration, "train", 0, 1.0, 2.0, 3.0, 4.0, count=10))
        if iteration % 5 == 0:
            check.add_log(ParamNorms(iteration, "train", 0, 1.0, 2.0, 3.0, 4.0))
    summary = check.summary()
    assert (summary["compared"], summary["lines_compared"], summary["iterations_compared"]) == (12, 3, 3)
    assert summary["unmatched_harness_values"] == summary["unmatched_log_lines"] == 0
    assert (summary["sampling"], summary["display"]) == ("sample", 5)


def test_values_left_behind_by_both_streams_are_counted_and_dropped():
    from harness.core.records import BlobStat

    def stat(iteration, layer):
        return BlobStat(iteration, "train", 0, "forward", layer, layer, "top", 1.0, count=4)

    check = CrossCheck()
    for iteration in range(100):
        check.add_harness(stat(iteration, "ip1"))
        check.add_log(stat(iteration, "ip1"))
        check.add_harness(stat(iteration, "only_harness"))   # never printed: a partner that never comes
        check.add_log(stat(iteration, "only_log"))
    summary = check.summary()
    assert check.pending() <= 2 * 3   # the last _LAG + 1 iterations' unpartnered values
    assert summary["compared"] == 100 and summary["mismatched"] == 0
    assert summary["unmatched_harness_values"] == summary["unmatched_log_lines"] == 100
    assert summary["unmatched_harness_examples"][0] == [0, "train", 0, "forward", "only_harness", "only_harness"]


@pytest.mark.caffe
@pytest.mark.parametrize("net", ["exploding_lr", "nan_input", "dead_relu"])
def test_sampling_halts_where_checking_every_iteration_does(tmp_path, net):
    verdicts = {}
    for mode in (SAMPLE, EVERY):
        run_dir = tmp_path / mode
        result = harness("train", zoo_solver(net), "--run-dir", run_dir, "--quiet", "--no-html", "--crosscheck", mode)
        assert result.returncode == 1, result.stderr
        verdicts[mode] = verdict(run_dir)
        check = verdicts[mode]["crosscheck"]
        assert check["mismatched"] == check["unmatched_log_lines"] == check["unmatched_harness_values"] == 0
        assert check["lines_compared"] > 0 and check["sampling"] == mode
    where = [{key: v["anomaly"][key] for key in ("kind", "iteration", "phase", "layer", "blob")}
             for v in verdicts.values()]
    assert where[0] == where[1]
    sampled, every = verdicts[SAMPLE]["crosscheck"], verdicts[EVERY]["crosscheck"]
    user_display = int(re.search(r"display: (\d+)", zoo_solver(net).read_text()).group(1))
    assert (sampled["display"], every["display"]) == (user_display, 1)
    assert 0 < sampled["iterations_compared"] < every["iterations_compared"]


def _state_size(obj, seen=None) -> int:
    """Elements in every container reachable from obj's attributes: what grows if a rule keeps history."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        return len(obj) + sum(_state_size(k, seen) + _state_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
        return len(obj) + sum(_state_size(item, seen) for item in obj)
    slots = [name for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())]
    attributes = list(getattr(obj, "__dict__", {}).values()) + [getattr(obj, name, None) for name in slots]
    return sum(_state_size(value, seen) for value in attributes)


@pytest.mark.caffe
def test_a_long_run_keeps_windows_not_history(tmp_path):
    """1,000 iterations, debug lines every 5th: the cross-check's pending values, followed live in the
    supervisor, stay as few as one iteration's, and the rules' state (fed the run's records) is the same size
    after iteration 200 as after iteration 999."""
    run_dir = tmp_path / "run"
    solver = write_net(tmp_path / "net", TINY_NET, TINY_SOLVER)
    assert harness("train", solver, "--run-dir", run_dir, "--quiet", "--no-html").returncode == 0
    effective = run_dir / "solver.prototxt"
    effective.write_text(re.sub(r"(?m)^max_iter: \d+$", "max_iter: 1000", effective.read_text()))
    spec = json.loads((run_dir / "worker.json").read_text())
    pending = []
    outcome = supervisor.run(spec, run_dir, spec["python_paths"], lambda end, check: pending.append(check.pending()))
    assert outcome.status == "ok" and len(pending) == 1000
    check = outcome.crosscheck
    assert check["mismatched"] == check["unmatched_log_lines"] == check["unmatched_harness_values"] == 0
    assert check["iterations_compared"] == 200
    per_iteration = check["compared"] // check["iterations_compared"]
    # Caffe's lines and the records reach the supervisor through two pipes (64 KiB each, read 64 KiB at a
    # time), so one side may run ahead by what they hold; never by anything that grows with the run (the
    # norms of 800 undisplayed iterations alone would be 3,200 values).
    log_per_iteration = (run_dir / "caffe.log").stat().st_size / check["iterations_compared"]
    ahead = 4 * 65536 / log_per_iteration + 2
    assert max(pending) <= per_iteration * ahead < 3200

    nets = {name: netinfo.from_dict(d) for name, d in json.loads((run_dir / "nets.json").read_text()).items()}
    engine = RuleEngine(config.load(None), nets, None, source="live")
    sizes = {}
    for record in iter_run_records(run_dir):
        engine.feed(record)
        if isinstance(record, IterationEnd) and record.iteration in (200, 999):
            sizes[record.iteration] = _state_size(engine)
    assert engine.halt is None and sizes[200] == sizes[999] > 0


@pytest.mark.parametrize("options, words", [
    (["--display", "5", "--crosscheck", "every"], ["--display 5 and --crosscheck every contradict"]),
    (["--display", "0"], ["--display 0: must be at least 1"]),
])
def test_contradicting_display_options_are_refused_before_anything_is_written(tmp_path, options, words):
    result = harness("train", zoo_solver("exploding_lr"), "--run-dir", tmp_path / "run", *options)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert all(word in result.stderr for word in words)
    assert not (tmp_path / "run").exists()
