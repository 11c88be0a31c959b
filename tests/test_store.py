"""The records store (harness/core/store.py, docs/records.md): every record reads back as written, the
common ones as 28-byte rows, and `harness export --jsonl` gives back records.jsonl as it was written
before the store."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core import store
from harness.core.records import BlobStat, Event, IterationEnd, ParamNorms, TestResult, read_records, to_json
from harness.log import glog
from harness.run.stats import summarize
from harness_run import ROOT, harness

LOGS = sorted((ROOT / "tests" / "logs").glob("*.log")) + sorted((ROOT / "tests" / "real_logs").glob("*.log"))


def write_and_read(records, run_dir) -> list:
    with store.RecordWriter(run_dir) as writer:
        for record in records:
            writer.write(record)
    return list(store.iter_run_records(run_dir))


def blob_lines(run_dir) -> int:
    """BlobStats that went to the JSON side file rather than a row."""
    return (run_dir / "records" / "other.jsonl").read_text().count('"record":"blob"')


def live_stat(iteration: int, values: np.ndarray, printed: bool) -> BlobStat:
    """A BlobStat as the worker makes it, from the harness's own statistics of real values."""
    s = summarize(values)
    return BlobStat(iteration, "train", 0, "forward", "conv1", "conv1", "top", s.mean_abs, s.count, s.nonfinite,
                    s.zero_fraction, s.max_abs, None, s.overflow, printed)


# Strategies: a log's BlobStats (mean |x| only), and anything at all (values a row cannot hold included).
names = st.sampled_from(["conv1", "ip1", "loss", "param blob 0", "data"])
floats = st.floats(allow_nan=True, allow_infinity=True)
log_stats = st.builds(BlobStat, iteration=st.integers(0, 10**6), net=st.sampled_from(["train", "test0"]),
                      pass_index=st.integers(0, 3), phase=st.sampled_from(["forward", "backward"]), layer=names,
                      blob=names, kind=st.sampled_from(["top", "bottom", "param"]), mean_abs=floats)
any_stats = st.builds(BlobStat, iteration=st.integers(-2**40, 2**40), net=names, pass_index=st.integers(0, 2**20),
                      phase=names, layer=names, blob=names, kind=names, mean_abs=floats,
                      count=st.none() | st.integers(0, 2**40), nonfinite=st.none() | st.integers(0, 10),
                      zero_fraction=st.none() | floats, max_abs=st.none() | floats, sumsq=st.none() | floats,
                      overflow=st.booleans(), printed=st.booleans())
others = st.one_of(
    st.builds(ParamNorms, iteration=st.integers(0, 100), net=names, pass_index=st.integers(0, 3), l1_data=floats,
              l1_diff=floats, l2_data=floats, l2_diff=floats),
    st.builds(IterationEnd, iteration=st.integers(0, 100), loss=st.none() | floats,
              outputs=st.dictionaries(names, floats, max_size=2)),
    st.builds(TestResult, iteration=st.integers(0, 100), net=names, outputs=st.dictionaries(names, floats, max_size=2)),
    st.builds(Event, iteration=st.none() | st.integers(0, 100), kind=names, text=st.text(max_size=20)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(log_stats, any_stats, others), max_size=40))
def test_any_records_read_back_as_written_in_order(tmp_path_factory, records):
    run_dir = tmp_path_factory.mktemp("run")
    # Compared as JSON: nan is not equal to itself, "nan" is.
    assert [to_json(r) for r in write_and_read(records, run_dir)] == [to_json(r) for r in records]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(log_stats, min_size=1, max_size=40))
def test_a_logs_blob_stats_are_all_rows(tmp_path_factory, records):
    run_dir = tmp_path_factory.mktemp("run")
    assert [to_json(r) for r in write_and_read(records, run_dir)] == [to_json(r) for r in records]
    assert blob_lines(run_dir) == 0
    assert (run_dir / "records" / "blobs.bin").stat().st_size == store.ROW.itemsize * len(records)


def test_the_harnesss_own_statistics_are_rows_to_the_last_bit(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=1000).astype(np.float32), np.maximum(rng.normal(size=777), 0).astype(np.float32),
              np.zeros(10, np.float32), np.full(5, 3e38, np.float32), np.zeros(0, np.float32)]
    records = [live_stat(i, values, printed=i % 2 == 0) for i, values in enumerate(arrays)]
    assert records[3].overflow and records[4].count == 0
    assert write_and_read(records, tmp_path) == records
    assert blob_lines(tmp_path) == 0
    # Non-finite elements (the run halts there) take a JSON line, and read back the same.
    bad = live_stat(5, np.array([1.0, np.inf, 0.0], np.float32), printed=True)
    assert [to_json(r) for r in write_and_read(records + [bad], tmp_path / "again")] == \
        [to_json(r) for r in records + [bad]]
    assert blob_lines(tmp_path / "again") == 1
    # Values no statistics make (a NaN fraction, an int mean, no iteration yet) are JSON too, and come back.
    odd = [BlobStat(1, "train", 0, "forward", "ip", "ip", "top", 0.5, 10, 0, float("nan"), 1.0),
           BlobStat(1, "train", 0, "forward", "ip", "ip", "top", 2, 10, 0, 0.5, 1.0),
           BlobStat(None, "train", 0, "forward", "ip", "ip", "top", 0.5)]
    assert [to_json(r) for r in write_and_read(odd, tmp_path / "odd")] == [to_json(r) for r in odd]
    assert blob_lines(tmp_path / "odd") == 3


@pytest.mark.parametrize("log", LOGS, ids=lambda path: path.name)
def test_every_fixture_log_reads_back_as_parsed(tmp_path, log):
    records = list(glog.parse_file(str(log), glog.LogFolder()))
    assert [to_json(r) for r in write_and_read(records, tmp_path)] == [to_json(r) for r in records]
    assert blob_lines(tmp_path) == 0
    # Asked for some blobs only: the others are left out, everything else stays in order.
    layers = sorted({r.layer for r in records if isinstance(r, BlobStat)})[::2]
    wanted = [r for r in records if not isinstance(r, BlobStat) or (r.layer in layers and r.phase == "backward")]
    chosen = store.iter_run_records(tmp_path,
                                    blobs=lambda net, phase, layer, *_: layer in layers and phase == "backward")
    assert [to_json(r) for r in chosen] == [to_json(r) for r in wanted]


def test_export_jsonl_is_the_records_jsonl_parse_used_to_write(tmp_path):
    log = ROOT / "tests" / "logs" / "display1.log"
    assert harness("parse", log, "--out", tmp_path / "out", "--quiet", "--no-html").returncode == 0
    result = harness("export", tmp_path / "out", "--jsonl", tmp_path / "records.jsonl")
    assert result.returncode == 0, result.stderr
    expected = "".join(to_json(r) + "\n" for r in glog.parse_file(str(log), glog.LogFolder()))
    assert (tmp_path / "records.jsonl").read_text() == expected
    assert harness("export", tmp_path / "out", "--jsonl", "-").stdout == expected
    # A run directory from before the store (records.jsonl alone) reads the same.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "records.jsonl").write_text(expected)
    with open(tmp_path / "records.jsonl") as stream:
        assert list(store.iter_run_records(tmp_path / "old")) == list(read_records(stream))


def test_a_run_directory_without_records_reads_as_none(tmp_path):
    assert list(store.iter_run_records(tmp_path)) == [] and not store.exists(tmp_path)
