"""`harness export`: CSV tables per record kind, TensorBoard events read back with tensorboard's own reader."""
import csv
import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from harness.report.export import points, write_csv, write_tensorboard
from harness.core.records import BlobStat, Event, IterationEnd, ParamNorms, TestResult
from harness_run import harness
from test_html_report import write_synthetic_run


def blob(iteration, layer, value, phase="forward", kind="top", zeros=None, pass_index=0):
    return BlobStat(iteration=iteration, net="train", pass_index=pass_index, phase=phase, layer=layer, blob=layer,
                    kind=kind, mean_abs=value, zero_fraction=zeros)


RECORDS = [
    blob(0, "fc", 10.0), blob(0, "relu", 5.0, zeros=0.5), blob(0, "drop", 2.0, zeros=0.5),
    blob(0, "fc", 9.0, pass_index=1), blob(0, "fc", 0.1, phase="backward", kind="bottom"),
    ParamNorms(0, "train", 0, 1.0, 2.0, 3.0, 4.0),
    IterationEnd(0, loss=2.5, smoothed_loss=2.5, outputs={"loss": 2.5, "accuracy": 0.25}, lr=0.1, seconds=0.5),
    blob(1, "fc", float("nan")), blob(1, "relu", 0.0, zeros=1.0),
    IterationEnd(1, loss=float("nan"), outputs={"loss": float("nan")}, lr=0.1),
    TestResult(1, "test0", {"accuracy": 0.5, "loss": 1.5}),
    Event(1, "fatal", "Check failed: a, b"),
]


def read_table(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_csv_has_one_table_per_record_kind_with_outputs_as_columns(tmp_path):
    paths = write_csv(iter(RECORDS), tmp_path)
    assert sorted(p.name for p in paths) == ["blobs.csv", "events.csv", "iterations.csv", "norms.csv", "tests.csv"]
    blobs = read_table(tmp_path / "blobs.csv")
    assert len(blobs) == 7 and blobs[0]["layer"] == "fc" and blobs[0]["mean_abs"] == "10.0"
    assert blobs[5]["mean_abs"] == "nan" and blobs[0]["zero_fraction"] == ""     # None is an empty cell
    iterations = read_table(tmp_path / "iterations.csv")
    assert [row["output:accuracy"] for row in iterations] == ["0.25", ""]
    assert iterations[1]["loss"] == "nan" and "outputs" not in iterations[0]
    assert read_table(tmp_path / "tests.csv") == [{"iteration": "1", "net": "test0", "output:accuracy": "0.5",
                                                   "output:loss": "1.5"}]
    assert read_table(tmp_path / "events.csv")[0]["text"] == "Check failed: a, b"
    assert read_table(tmp_path / "norms.csv")[0]["l2_diff"] == "4.0"


def test_points_cover_pass_0_and_histograms_follow_complete_iterations():
    out = list(points(RECORDS, rectifiers={"relu"}))
    scalars = {(tag, step): value for kind, tag, step, value in out if kind == "scalar"}
    assert scalars[("forward/fc/fc", 0)] == 10.0                     # pass 0, not pass 1's 9.0
    assert scalars[("backward/fc/fc", 0)] == 0.1
    assert math.isnan(scalars[("forward/fc/fc", 1)]) and math.isnan(scalars[("train/loss", 1)])
    assert scalars[("zero_fraction/relu/relu", 1)] == 1.0
    assert not any(tag.startswith("zero_fraction/drop") for tag, _ in scalars)   # Dropout is no rectifier
    assert scalars[("train/accuracy", 0)] == 0.25 and ("train/loss", 0) in scalars
    assert scalars[("test0/accuracy", 1)] == 0.5 and scalars[("norms/l2_diff", 0)] == 4.0
    histograms = [(tag, step, values) for kind, tag, step, values in out if kind == "histogram"]
    forward = [(step, values) for tag, step, values in histograms if tag.startswith("histograms/forward")]
    # iteration 1's only finite positive value is none: NaN and 0 have no log10, so no histogram for it
    assert forward == [(0, pytest.approx([1.0, math.log10(5), math.log10(2)]))]
    assert [step for tag, step, _ in histograms if "backward" in tag] == [0]


def test_tensorboard_events_read_back(tmp_path):
    write_tensorboard(iter(RECORDS), tmp_path, rectifiers={"relu"})
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "lr", "test0/accuracy", "forward/fc/fc", "norms/l2_diff"} <= set(tags["scalars"])
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1] and loss[0].value == 2.5 and math.isnan(loss[1].value)
    assert set(tags["histograms"]) == {"histograms/forward_log10_mean_abs_data",
                                       "histograms/backward_log10_mean_abs_diff"}
    assert events.Histograms("histograms/forward_log10_mean_abs_data")[0].histogram_value.num == 3


def test_export_command(tmp_path):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir)
    result = harness("export", run_dir, "--csv", tmp_path / "csv", "--tensorboard", tmp_path / "tb")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "csv" / "blobs.csv") in result.stdout and str(tmp_path / "tb") in result.stdout
    assert len(read_table(tmp_path / "csv" / "iterations.csv")) == 4
    result = harness("export", run_dir)
    assert result.returncode == 2 and "--tensorboard DIR, --csv DIR" in result.stderr
    result = harness("export", tmp_path / "csv", "--csv", tmp_path / "x")
    assert result.returncode == 2 and "holds no records" in result.stderr


@pytest.mark.caffe
def test_a_trained_run_and_its_parsed_log_export_the_same_curves(tmp_path):
    live, parsed = tmp_path / "live", tmp_path / "parsed"
    assert harness("train", "prototxt/exploding_lr/solver.prototxt", "--run-dir", live, "--quiet",
                   "--crosscheck", "every").returncode == 1   # the log then shows every iteration, as the run
    assert harness("parse", live / "caffe.log", "--out", parsed, "--quiet").returncode == 1
    tags = {}
    for run_dir in (live, parsed):
        result = harness("export", run_dir, "--tensorboard", run_dir / "tb")
        assert result.returncode == 0, result.stderr
        events = EventAccumulator(str(run_dir / "tb"))
        events.Reload()
        tags[run_dir] = set(events.Tags()["scalars"])
        assert [e.step for e in events.Scalars("train/loss")] == [0, 1, 2]
    # The live run adds only what Caffe does not print: the rectifiers' share of zeros.
    assert tags[live] - tags[parsed] == {"zero_fraction/relu1/fc1", "zero_fraction/relu2/fc2"}
