"""`harness doctor` against the real cached Caffe build, and its pieces on hand-made inputs."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.build import CAFFE_TOOLS, TINY_NET, caffe_tools, describe_build, run_solver_in_child
from harness.run.capabilities import Capabilities, rows

HARNESS = Path(sys.executable).with_name("harness")


@pytest.mark.caffe
def test_doctor_reports_the_build_and_trains_the_tiny_net():
    result = subprocess.run([str(HARNESS), "doctor"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.rstrip().endswith("OK")
    assert "1.0.0+git20180821.99bd997" in out
    assert ("CPU only" in out or "CUDA" in out) and "caffe version 1.0.0" in out   # .venv or .venv-cuda
    for label in ("Python layer", "LMDB", "HDF5"):
        assert re.search(rf"^ +{label} +yes", out, re.MULTILINE), label
    assert "3 iterations on a tiny DummyData net" in out
    assert re.search(r"^ +tools +convert_imageset, compute_image_mean, extract_features, upgrade_net_proto_text, "
                     r"upgrade_solver_proto_text$", out, re.MULTILINE)


@pytest.mark.caffe
def test_a_caffe_abort_in_the_child_becomes_a_message():
    broken = TINY_NET.replace('bottom: "ip" bottom: "label"', 'bottom: "ip" bottom: "no_such_blob"')
    ok, message = run_solver_in_child(broken)
    assert not ok
    assert "signal 6" in message and "Unknown bottom blob 'no_such_blob'" in message


def test_build_facts_come_from_cmake_entries():
    rows = dict(describe_build({
        "version": "1.0.0+git20180821.99bd997-8",
        "cmake.CPU_ONLY": "OFF", "cmake.CUDA_VERSION": "13.0", "cmake.USE_CUDNN": "OFF",
        "cmake.BLAS": "Open", "cmake.OpenBLAS_LIB": "/usr/lib/libopenblas.so",
        "cmake.BUILD_python_layer": "ON", "cmake.USE_LMDB": "ON", "cmake.LMDB_LIBRARIES": "/usr/lib/liblmdb.so",
    }))
    assert rows["device"] == "CUDA 13.0, cuDNN no"
    assert rows["BLAS"] == "Open (/usr/lib/libopenblas.so)"
    assert rows["Python layer"] == "yes"
    assert rows["LMDB"] == "yes (/usr/lib/liblmdb.so)"
    assert rows["HDF5"] == "not recorded"
    assert rows["OpenCV"] == "not recorded"


def test_a_build_without_opencv_says_which_tools_stop():
    """CAFFE_OPENCV=0 builds (the CUDA bundle's) still have convert_imageset and compute_image_mean."""
    assert dict(describe_build({"cmake.USE_OPENCV": "ON"}))["OpenCV"] == "yes"
    assert dict(describe_build({"cmake.USE_OPENCV": "OFF"}))["OpenCV"] == (
        'no: convert_imageset and compute_image_mean stop with "This tool requires OpenCV"')


def test_missing_tools_are_named(tmp_path):
    (tmp_path / "convert_imageset").write_text("")
    assert caffe_tools(tmp_path) == "convert_imageset; missing: " + ", ".join(CAFFE_TOOLS[1:])


def test_a_build_without_blob_debug_stats_is_said_to_take_the_tolerance_path():
    offers = {"after_forward": False, "after_backward": False, "add_callback": True, "snapshot": True,
              "top_ids": True}
    for has, says in ((True, "exact: Blob.debug_stats"), (False, "numpy (CuPy on a GPU) with a tolerance")):
        found = Capabilities(True, offers=dict(offers, debug_stats=has), kinds={"blob": 10})
        statistics = dict(rows(found))["statistics"]
        assert statistics.startswith(says)
        assert ("scripts/setup.sh --caffe-source" in statistics) is not has
