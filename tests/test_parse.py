"""`harness parse` as a user runs it, on logs recorded from real Caffe (tests/logs/): the verdict, what the
log cannot decide, parse_log.py's CSV tables, a forum paste, a FATAL line."""
import csv
import json
from pathlib import Path

from harness_run import harness

LOGS = Path(__file__).parent / "logs"


def parse(name: str, out: Path, *extra):
    result = harness("parse", LOGS / name, "--out", out, "--quiet", "--no-html", *extra)
    return result, json.loads((out / "verdict.json").read_text())


def test_a_diverging_log_halts_where_the_first_nan_is_printed(tmp_path):
    result, verdict = parse("nan.log", tmp_path / "out")
    assert result.returncode == 1
    anomaly = verdict["anomaly"]
    assert (anomaly["kind"], anomaly["iteration"], anomaly["phase"], anomaly["layer"], anomaly["blob"]) == \
        ("nonfinite", 2, "forward", "score", "score")
    assert verdict["source"] == "log" and verdict["limits"] == []


def test_a_fatal_line_is_the_caffe_error(tmp_path):
    result, verdict = parse("fatal.log", tmp_path / "out")
    assert result.returncode == 2 and verdict["status"] == "error"
    assert verdict["caffe_error"].startswith("Check failed: bottom[0]->shape() == bottom[i]->shape()")


def test_a_forum_paste_on_one_line_parses_and_says_what_it_cannot_know(tmp_path):
    result, verdict = parse("forum_paste.txt", tmp_path / "out")
    assert result.returncode == 0 and verdict["status"] == "ok"
    with open(tmp_path / "out" / "records.jsonl") as stream:
        blobs = [json.loads(line) for line in stream if '"record":"blob"' in line]
    assert len(blobs) > 20 and {b["iteration"] for b in blobs} == {1}
    assert any("no echo of the net definition" in limit for limit in verdict["limits"])


def test_csv_tables_have_the_columns_of_caffes_parse_log(tmp_path):
    result, _ = parse("display1.log", tmp_path / "out", "--csv")
    assert result.returncode == 0
    with open(tmp_path / "out" / "display1.log.train") as stream:
        train = list(csv.DictReader(stream))
    with open(tmp_path / "out" / "display1.log.test") as stream:
        test = list(csv.DictReader(stream))
    assert list(train[0])[:3] == ["NumIters", "Seconds", "LearningRate"]
    assert [int(row["NumIters"]) for row in train] == [0, 1, 2, 3]
    assert all(float(row["LearningRate"]) > 0 for row in train)
    assert test and list(test[0])[:3] == ["NumIters", "Seconds", "LearningRate"] and len(test[0]) > 3
