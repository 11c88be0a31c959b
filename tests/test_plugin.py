"""The pytest plugin (harness/testing/plugin.py): net folders as items, run by a real pytest in a subprocess
(alone and with two pytest-xdist workers), and the harness_run fixture, used here as a user would."""
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

from harness.core.records import IterationEnd
from harness.rules.findings import Finding
from harness.testing.netfolder import LIVE, NetFolder, NetRun
from harness_run import ROOT, write_net, zoo_solver

ZOO = ROOT / "prototxt"

# A net whose Python layer notes the BLAS thread count its process was started with, then passes data on.
PROBE_LAYER = '''import os
import caffe


class Probe(caffe.Layer):
    def setup(self, bottom, top):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "blas_threads.txt"), "a") as f:
            f.write(os.environ.get("OPENBLAS_NUM_THREADS", "unset") + "\\n")

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = top[0].diff
'''
PROBE_NET = """name: "probe"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }
    shape { dim: 8 dim: 16 } shape { dim: 8 } } }
layer { name: "probe" type: "Python" bottom: "data" top: "probed" python_param { module: "probe" layer: "Probe" } }
layer { name: "ip" type: "InnerProduct" bottom: "probed" top: "ip" inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def pytest_run(*args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    """A user's pytest in `cwd`, with its temporary folders there too."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(cwd / "tmp"),
                           *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env)


def write_nets(folder: Path, **nets) -> Path:
    """Net folders for a user's suite: a zoo net's copy (name=zoo net) or the BLAS probe (name=None)."""
    for name, source in nets.items():
        if source is None:
            write_net(folder / name, PROBE_NET, 'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\n'
                                                'max_iter: 3\ndisplay: 1\nrandom_seed: 1\n')
            (folder / name / "probe.py").write_text(PROBE_LAYER)
            (folder / name / "expected.yaml").write_text("status: ok\nanomaly: null\n")
        else:
            shutil.copytree(ZOO / source, folder / name)
    return folder


def junit_cases(junit: Path) -> dict:
    """(classname, name) -> whether it failed, from a JUnit XML file."""
    return {(case.get("classname"), case.get("name")): case.find("failure") is not None
            for case in ElementTree.parse(junit).getroot().iter("testcase")}


def test_the_plugin_imports_nothing_of_the_harness_until_a_net_is_collected():
    """pytest loads the plugin in every session of the venv: it must cost a plain `pytest tests/` nothing."""
    probe = subprocess.run([sys.executable, "-c", "import sys, harness.testing.plugin; "
                            "print(sorted(m for m in sys.modules if m.startswith(('harness', 'yaml'))))"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "['harness', 'harness.testing', 'harness.testing.plugin']"


def test_net_folders_are_collected_as_items_named_by_folder_and_selected_with_k():
    result = pytest_run("--collect-only", "-q", "prototxt", cwd=ROOT)
    items = [line for line in result.stdout.splitlines() if "::" in line]
    nets = sorted(p.parent.name for p in ZOO.glob("*/expected.yaml"))
    # This project's pyproject.toml sets harness_caffe_binary: plain caffe's log is judged too.
    assert items == [f"prototxt/{net}::{source}" for net in nets for source in ("live", "log", "caffe")]
    selected = pytest_run("--collect-only", "-q", "-k", "exploding", "prototxt", cwd=ROOT)
    assert [line for line in selected.stdout.splitlines() if "::" in line] == [
        "prototxt/exploding_lr::live", "prototxt/exploding_lr::log", "prototxt/exploding_lr::caffe"]


def test_harness_nets_adds_folders_and_marks_select_them(tmp_path):
    write_nets(tmp_path / "models", marked="exploding_lr", plain="nan_input")
    marked = tmp_path / "models" / "marked" / "expected.yaml"
    marked.write_text(marked.read_text() + "marks: [slow]\n")
    (tmp_path / "test_mine.py").write_text("def test_mine():\n    pass\n")
    everything = pytest_run("--collect-only", "-q", "test_mine.py", "--harness-nets", "models", cwd=tmp_path)
    assert everything.stdout.splitlines()[:5] == [
        "test_mine.py::test_mine", "models/marked::live", "models/marked::log", "models/plain::live",
        "models/plain::log"]
    slow = pytest_run("--collect-only", "-q", "-m", "slow", "--harness-nets", "models", cwd=tmp_path)
    assert slow.stdout.splitlines()[:2] == ["models/marked::live", "models/marked::log"]


def test_a_bad_expected_yaml_is_a_collection_error_naming_the_file(tmp_path):
    write_nets(tmp_path, broken="exploding_lr")
    (tmp_path / "broken" / "expected.yaml").write_text("status: fine\n")
    result = pytest_run(tmp_path, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert f"{tmp_path / 'broken' / 'expected.yaml'}: status must be one of ok, halted, error" in result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.caffe
def test_a_wrong_expected_yaml_fails_with_the_verdicts_side_by_side_and_a_report(tmp_path):
    write_nets(tmp_path, wrong_layer="exploding_lr")
    expected = tmp_path / "wrong_layer" / "expected.yaml"
    pins = yaml.safe_load(expected.read_text())
    pins["anomaly"]["layer"] = "fc3"
    expected.write_text(yaml.safe_dump(pins))
    result = pytest_run(tmp_path, "--junitxml", tmp_path / "out.xml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert junit_cases(tmp_path / "out.xml") == {("wrong_layer", "live"): True, ("wrong_layer", "log"): True}
    for source in ("the live run", "its caffe.log"):
        assert f"wrong_layer: the verdict from {source} differs from {expected}" in result.stdout
    # Only the failures section: under CI=true pytest repeats each full message in the short summary.
    failures = result.stdout.split("short test summary info")[0]
    rows = [line.split() for line in failures.splitlines() if line.startswith(("X ", "  status"))]
    fields = "{blob: fc2, iteration: 3, kind: nonfinite, layer: %s, phase: forward}"   # as yaml.safe_dump sorts them
    assert rows == 2 * [["status", "halted", "halted"], ["X", "anomaly", *(fields % "fc3").split(), *(fields % "fc2").split()]]
    assert "differs in {layer: fc2}" in result.stdout
    reports = re.findall(r"^report: (\S+)$", failures, re.M)
    assert len(reports) == 2 and all(Path(path).is_file() and path.endswith("report.html") for path in reports)


@pytest.mark.caffe
def test_two_xdist_workers_keep_each_net_on_one_worker_and_pin_its_blas_threads(tmp_path):
    """`--tx 2*popen --dist loadgroup`, the live run and both log judgements of each net: every item passes
    and lands in the JUnit XML, a net's items run on one worker, and each Caffe process (the harness's
    worker and plain caffe) gets this host's cores shared out between the two workers, whatever BLAS
    setting the suite itself was started with."""
    write_nets(tmp_path, exploding="exploding_lr", probe=None)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="7")
    result = pytest_run(tmp_path, "--tx", "2*popen", "--dist", "loadgroup", "--harness-caffe-binary", "-v",
                        "--junitxml", tmp_path / "out.xml", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = junit_cases(tmp_path / "out.xml")
    # loadgroup names a grouped item's test case "<item>@<group>"
    assert sorted(cases) == [(net, f"{source}@{net}") for net in ("exploding", "probe")
                             for source in ("caffe", "live", "log")]
    assert not any(cases.values())
    workers = {}
    for worker, net in re.findall(r"^\[(gw\d)\] .*PASSED (\w+)::", result.stdout, re.M):
        workers.setdefault(net, set()).add(worker)
    assert {net: len(names) for net, names in workers.items()} == {"exploding": 1, "probe": 1}
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert (tmp_path / "probe" / "blas_threads.txt").read_text().split() == [share, share]   # harness, caffe


@pytest.mark.caffe
def test_a_net_is_run_once_per_run_directory_however_many_judge_it(tmp_path):
    """A second NetRun on the same directory (another xdist worker) reads the first one's judgements."""
    net = NetFolder.load(ZOO / "exploding_lr")
    first = NetRun(net, tmp_path / "run", timeout=120).judge("log")
    verdict_written = (tmp_path / "run" / "verdict.json").stat().st_mtime_ns
    again = NetRun(net, tmp_path / "run", timeout=120)
    assert again.judge("log") == first and again.judge(LIVE).verdict["anomaly"]["layer"] == "fc2"
    assert (tmp_path / "run" / "verdict.json").stat().st_mtime_ns == verdict_written
    assert json.loads((tmp_path / "run" / "judged-live.json").read_text())["differences"] == []


@pytest.mark.caffe
def test_harness_run_returns_the_verdict_and_records_as_objects(harness_run, tmp_path):
    healthy = harness_run(write_net(tmp_path / "endless"), max_iter=5)
    assert healthy.status == "ok" and healthy.exit_code == 0 and healthy.anomaly is None
    assert [r.iteration for r in healthy.records if isinstance(r, IterationEnd)] == [0, 1, 2, 3, 4]
    halted = harness_run(zoo_solver("exploding_lr"), set={"exploding.policy": "off"})
    assert halted.status == "halted" and halted.exit_code == 1
    assert isinstance(halted.anomaly, Finding)
    assert (halted.anomaly.kind, halted.anomaly.iteration, halted.anomaly.layer) == ("nonfinite", 3, "fc2")
    assert not any(w.kind == "exploding" for w in halted.warnings)
    assert halted.verdict.iterations_run == 3
    with pytest.raises(pytest.fail.Exception, match="unrecognized arguments: --max-iters 5"):
        harness_run(write_net(tmp_path / "endless"), max_iters=5)
