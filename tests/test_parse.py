"""`harness parse` as a user runs it, on logs recorded from real Caffe (tests/logs/): the verdict, what the
log cannot decide, parse_log.py's CSV tables, a forum paste, a FATAL line."""
import csv
import gzip
import json
import random
from pathlib import Path

import pytest

from harness.core.records import BlobStat
from harness.core.store import iter_run_records
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
    blobs = [r for r in iter_run_records(tmp_path / "out") if isinstance(r, BlobStat)]
    assert len(blobs) > 20 and {b.iteration for b in blobs} == {1}
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


def test_standard_input_and_gzip_give_the_verdict_of_the_file(tmp_path):
    text = (LOGS / "nan.log").read_bytes()
    (tmp_path / "nan.log.gz").write_bytes(gzip.compress(text))
    _, from_file = parse("nan.log", tmp_path / "file")
    piped = harness("parse", "-", "--out", tmp_path / "stdin", "--quiet", "--no-html", input=text.decode())
    gz = harness("parse", tmp_path / "nan.log.gz", "--out", tmp_path / "gz", "--quiet", "--no-html")
    assert piped.returncode == gz.returncode == 1
    for out, shown in ((tmp_path / "stdin", "<stdin>"), (tmp_path / "gz", str(tmp_path / "nan.log.gz"))):
        verdict = json.loads((out / "verdict.json").read_text())
        assert verdict["anomaly"] == from_file["anomaly"] and verdict["log"] == shown


@pytest.mark.parametrize("content", [b"", bytes(random.Random(7).getrandbits(8) for _ in range(200_000)),
                                     b"Epoch: [0][10/5005]  Loss nan (nan)  Acc@1 0.000\n" * 20],
                         ids=["empty", "random-bytes", "another-framework"])
def test_what_is_not_a_caffe_log_is_refused_with_what_was_read(tmp_path, content):
    path = tmp_path / "paste.log"
    path.write_bytes(content)
    result = harness("parse", path, "--out", tmp_path / "out", "--no-html")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}: no line was recognised as Caffe's log output" in result.stderr
    assert ("it is empty" if not content else "the first look like '") in result.stderr
    assert not (tmp_path / "out").exists()      # nothing left behind


def test_a_paste_mostly_of_prose_says_how_much_was_understood_and_what_to_turn_on(tmp_path):
    path = tmp_path / "question.md"
    path.write_text("My net does not learn, I have 12 classes and 4000 images.\n" * 6
                    + "```\nI0101 00:00:00.000000  1 solver.cpp:218] Iteration 40, loss = nan\n```\n")
    result = harness("parse", path, "--out", tmp_path / "out", "--no-html")
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert result.returncode == 1 and verdict["anomaly"]["output"] == "loss"
    lines = verdict["log_lines"]
    assert (lines["caffe_lines"], lines["not_recognised"], lines["not_recognised_with_numbers"]) == (1, 6, 6)
    assert lines["samples"][0].startswith("My net does not learn")
    assert any("only 1 of the 7 non-blank lines" in limit for limit in verdict["limits"])
    assert any("debug_info: true" in limit for limit in verdict["limits"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## What the log alone cannot tell" in report and "paste the log from its start" in report
    assert "the log alone cannot tell: " in result.stderr
