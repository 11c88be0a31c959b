"""`--caffe DIR` and HARNESS_CAFFE: finding a build's pycaffe, libcaffe and tool, refusing folders that hold
none, and running `train` / `doctor` on a build given that way (here the harness's own cached build,
which has the layout of an install prefix: python/, lib/, bin/)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.run import caffe_dir
from harness.run.provenance import caffe_prefix
from harness_run import ROOT, harness, verdict, zoo_solver

HARNESS = Path(sys.executable).with_name("harness")


def fake_build(root: Path, extension: bool = True, pb2: bool = True) -> Path:
    package = root / "python" / "caffe"
    (package / "proto").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if extension:
        (root / "build" / "lib").mkdir(parents=True)
        (root / "build" / "lib" / "_caffe.so").write_bytes(b"")
        (root / "build" / "lib" / "libcaffe.so.1.0.0").write_bytes(b"")
        (package / "_caffe.so").symlink_to(root / "build" / "lib" / "_caffe.so")
    if pb2:
        (package / "proto" / "caffe_pb2.py").write_text("")
    return root


def test_a_cmake_source_tree_is_found_through_its_pycaffe_link(tmp_path):
    root = fake_build(tmp_path / "caffe")
    tool = root / "build" / "tools" / "caffe"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho 'caffe version 1.0.0-rc3'\n")
    tool.chmod(0o755)
    build = caffe_dir.locate(str(root))
    assert (build.python, build.binary, build.lib_dirs) == (root / "python", tool, (root / "build" / "lib",))
    assert caffe_dir.identity(build)["version"] == "caffe version 1.0.0-rc3"


@pytest.mark.parametrize("how, says", [
    ("missing", "no such folder"),
    ("no python", "python/caffe/__init__.py"),
    ("not built", "pycaffe is not built"),
    ("dangling", "which does not exist"),
    ("no proto", "caffe_pb2.py is missing"),
])
def test_a_folder_without_a_built_pycaffe_is_refused_with_the_reason(tmp_path, how, says):
    root = tmp_path / "caffe"
    if how == "no python":
        root.mkdir()
    elif how in ("not built", "no proto"):
        fake_build(root, extension=how == "no proto", pb2=how != "no proto")
    elif how == "dangling":
        fake_build(root)
        (root / "build" / "lib" / "_caffe.so").unlink()
    with pytest.raises(HarnessError, match=says):
        caffe_dir.locate(str(root))


def test_train_refuses_a_bad_caffe_folder_in_one_paragraph(tmp_path):
    result = harness("train", zoo_solver("exploding_lr"), "--caffe", tmp_path / "nowhere", "--run-dir", tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--caffe" in result.stderr and "no such folder" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.caffe
def test_train_on_a_build_given_by_folder_records_which_caffe_ran(tmp_path):
    prefix = caffe_prefix()
    run_dir = tmp_path / "run"
    result = harness("train", zoo_solver("exploding_lr"), "--run-dir", run_dir, "--quiet", "--no-html",
                     env=dict(os.environ, HARNESS_CAFFE=str(prefix)))
    assert result.returncode == 1, result.stderr
    recorded = json.loads((run_dir / "run.json").read_text())["caffe_build"]
    assert recorded["path"] == str(prefix) and recorded["binary"] == str(prefix / "bin" / "caffe")
    assert recorded["version"] == "caffe version 1.0.0" and len(recorded["libcaffe_sha256"]) == 64
    caffe = verdict(run_dir)["caffe"]
    assert (caffe["path"], caffe["hooks"], caffe["version"]) == (str(prefix), "layers", "1.0.0")
    assert verdict(run_dir)["anomaly"]["layer"] == "fc2"


@pytest.mark.caffe
def test_doctor_tells_what_a_build_offers():
    result = subprocess.run([str(HARNESS), "doctor", "--caffe", str(caffe_prefix())], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"Caffe dir    {caffe_prefix()}" in out
    assert "layer hooks  yes" in out and "callbacks    yes" in out and "--hooks layers" in out
    assert "statistics   exact: Blob.debug_stats" in out   # setup's build has the patch of patch-caffe-stats.sh
    assert "display line `Iteration N (X iter/s" in out and "not understood" not in out
    assert "Python layer yes" in out and "InnerProduct" in out



@pytest.mark.caffe
def test_check_trains_plain_caffe_with_the_tool_of_the_build_the_net_ran_on(tmp_path):
    """HARNESS_CAFFE names a build laid out like an install prefix (the harness's own, linked) whose bin/caffe
    notes each call before it runs the real tool: the `caffe` judgement must train with that tool, and find
    the build's pycaffe and the net's Python layer from there."""
    prefix = caffe_prefix()
    build = tmp_path / "my-caffe"
    (build / "bin").mkdir(parents=True)
    for name in ("python", "lib"):
        (build / name).symlink_to(prefix / name)
    calls = tmp_path / "calls"
    tool = build / "bin" / "caffe"
    tool.write_text(f'#!/bin/sh\necho "$*" >>{calls}\nexec {prefix / "bin" / "caffe"} "$@"\n')
    tool.chmod(0o755)
    net = ROOT / "prototxt" / "python_loss_bug"   # a Python layer: plain caffe needs the build's pycaffe too
    result = harness("check", "--caffe-binary", net, env=dict(os.environ, HARNESS_CAFFE=str(build)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 nets as expected" in result.stdout
    trained = [line for line in calls.read_text().splitlines() if line.startswith("train -solver ")]
    assert len(trained) == 1 and trained[0].endswith("/python_loss_bug/solver.prototxt")
