"""`harness reproduce` on real Caffe: an exact replay to the halting point, a dump numpy opens, and a
refusal when the data changed."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from harness.run.replay import compare
from harness.core.records import BlobStat, IterationEnd
from harness_run import ROOT, harness, verdict

pytestmark = pytest.mark.caffe


@pytest.fixture(scope="module")
def halted_run(tmp_path_factory):
    """nan_input, copied so that its data can be changed: it halts at iteration 11 on a NaN sample."""
    folder = tmp_path_factory.mktemp("zoo") / "nan_input"
    shutil.copytree(ROOT / "prototxt" / "nan_input", folder)
    subprocess.run([sys.executable, "make_data.py"], cwd=folder, check=True, capture_output=True)
    run_dir = folder / "run"
    assert harness("train", folder / "solver.prototxt", "--run-dir", run_dir, "--quiet").returncode == 1
    return run_dir


def test_replay_to_the_halt_is_identical_and_stops_at_the_same_blob(halted_run):
    anomaly = verdict(halted_run)["anomaly"]
    result = harness("reproduce", halted_run, "--iter", anomaly["iteration"], "--dump", "--quiet")
    assert result.returncode == 0, result.stderr
    out = halted_run / f"reproduce-{anomaly['iteration']}"
    summary = json.loads((out / "reproduce.json").read_text())
    assert summary["identical"] and summary["same_halt_as_original"]
    assert summary["iterations_identical"] == anomaly["iteration"]
    assert summary["stopped_at"] == {f: anomaly[f] for f in ("iteration", "phase", "layer", "blob")}
    with np.load(out / "dump.npz") as dump:
        data = dump[f"blob/{anomaly['blob']}/data"]
        assert np.isnan(data).sum() >= 1
        assert all(np.isfinite(dump[key]).all() for key in dump.files if key.startswith("param/"))


def test_replay_can_stop_after_a_named_layer_earlier(halted_run):
    result = harness("reproduce", halted_run, "--iter", 2, "--layer", "fc1", "--phase", "backward",
                     "--out", halted_run / "early", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((halted_run / "early" / "reproduce.json").read_text())
    assert summary["stopped"] == "target" and summary["identical"]


def test_changed_data_is_refused_with_the_file_named(halted_run, tmp_path):
    listed = (halted_run.parent / "train.list").read_text().split()
    victim = listed[0]
    saved = tmp_path / "saved.h5"
    shutil.copy(victim, saved)
    try:
        with open(victim, "ab") as stream:
            stream.write(b"\0")
        result = harness("reproduce", halted_run, "--iter", 3, "--quiet")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert victim in result.stderr and "changed" in result.stderr
    finally:
        shutil.copy(saved, victim)


def test_compare_finds_the_first_differing_record():
    original = [BlobStat(0, "train", 0, "forward", "ip", "ip", "top", 1.0), IterationEnd(0, 1.0),
                BlobStat(1, "train", 0, "forward", "ip", "ip", "top", 2.0)]
    replayed = original[:2] + [BlobStat(1, "train", 0, "forward", "ip", "ip", "top", 2.5)]
    result = compare(original, replayed, last_iteration=1)
    assert result.first_divergence["key"][:2] == [1, "train"] and result.iterations == 1
    assert compare(original, original, last_iteration=1).first_divergence is None
