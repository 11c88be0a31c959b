"""report.md and the terminal summary, from verdicts that the rules produced on toy streams."""
from __future__ import annotations

from harness.rules import config, verdict
from harness.report import text as text_report
from harness.core.netinfo import SolverInfo
from harness.core.records import BACKWARD, FORWARD
from harness.rules.engine import RuleEngine
from rule_fixtures import NAN, mlp, stream

SOLVER = SolverInfo(solver_path="/nets/solver.prototxt", net_paths={"train": "/nets/train.prototxt"},
                    base_lr=0.5, lr_policy="fixed")


def judge(net, recs, overrides=None):
    engine = RuleEngine(config.load(None, overrides), {"train": net}, SOLVER)
    for record in recs:
        engine.feed(record)
    engine.finish()
    status = "halted" if engine.halt else "ok"
    iterations = max(r.iteration for r in recs) + 1
    return verdict.build(status, iterations, engine.findings, {"compared": 120, "mismatched": 1,
                         "unmatched_log_lines": 0, "max_rel_error": 2e-6,
                         "mismatches": ["iteration 2 forward fc1 fc1: log 0.51 harness 0.52"]}, None)


def test_a_halted_run_reports_the_culprit_its_inputs_and_a_concrete_change(tmp_path):
    net = mlp()
    recs = stream(net, range(30), lambda it: {(FORWARD, "fc2", "fc2"): {"mean_abs": NAN, "nonfinite": 4}}
                  if it == 25 else {(BACKWARD, "fc2", "param blob 0"): {"mean_abs": 1e-3 * 1.1 ** it}})
    result = judge(net, recs)
    path = text_report.write(tmp_path, result, iter(recs), {"train": net}, SOLVER)
    text = path.read_text()
    assert path.name == "report.md"
    assert "iteration 25, forward, net train, layer fc2, blob `fc2`" in text
    assert "`base_lr: 0.5 -> 0.05` in /nets/solver.prototxt" in text
    assert "add `clip_gradients: 10` to /nets/solver.prototxt" in text
    table = text.split("## Last 10 iterations")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == [f"| {it}" for it in range(16, 26)]
    assert "fc2: fc2 data" in table and "fc2: param blob 0 data" in table
    assert "relu1: fc1 data" in table                            # its input, from the layer feeding it
    assert "nan (4 NaN/Inf)" in rows[-1]
    assert "exploding activations" in text                       # the cause class
    assert "1 mismatched" in text and "log 0.51 harness 0.52" in text
    summary = text_report.terminal_summary(result)
    assert summary.startswith("HALTED: nonfinite at iteration 25") and "base_lr: 0.5 -> 0.05" in summary


def test_a_dead_relu_report_shows_since_when_and_the_feeding_layer(tmp_path):
    net = mlp()
    recs = stream(net, range(12), lambda it: {(FORWARD, "relu1", "fc1"): {"zero_fraction": 1.0, "mean_abs": 0.0}}
                  if it >= 2 else None)
    result = judge(net, recs, {"no_gradient.policy": "off"})
    text = text_report.write(tmp_path, result, iter(recs), {"train": net}, SOLVER).read_text()
    assert "layer relu1, blob `fc1`" in text and "since iteration 2" in text
    assert "relu1: fc1 data" in text and "100% zeros" in text
    assert "negative_slope: 0.01" in text
    table = text.split("## Last 10 iterations")[1].split("##")[0]
    assert "| 6 |" in table and "| 7 |" not in table           # up to the iteration the rule fired


def test_a_healthy_run_reports_ok_and_the_loss_trend(tmp_path):
    net = mlp()
    recs = stream(net, range(5))
    result = judge(net, recs)
    text = text_report.write(tmp_path, result, iter(recs), {"train": net}, None).read_text()
    assert "**OK: 5 iterations, no anomaly**" in text and "## Warnings\n\nNone." in text
    assert "- lr: 0.01 at iteration 0 throughout" in text
    assert text_report.terminal_summary(result).startswith("OK: 5 iterations")
