"""scripts/setup.sh's CAFFE_OPENCV setting and its --caffe-prefix mode (what scripts/bundle-cuda.py asks it)."""
import os
import subprocess
import sys

import pytest

from harness.run.build import read_build_info
from harness.run.provenance import caffe_prefix
from harness_run import ROOT

SETUP = ROOT / "scripts" / "setup.sh"


def test_a_bad_opencv_setting_stops_before_anything_is_done():
    result = subprocess.run(["bash", str(SETUP), "--caffe-prefix"], env=dict(os.environ, CAFFE_OPENCV="no"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("scripts/setup.sh: CAFFE_OPENCV must be 1 (build Caffe with OpenCV, the default) "
                             "or 0 (without), not 'no'.\n")


def test_caffe_prefix_prints_the_cached_build_alone():
    """With the default settings it names the build this venv's pycaffe comes from, and nothing else on stdout."""
    prefix = caffe_prefix()
    info = read_build_info(prefix / "BUILD_INFO") if prefix and (prefix / "BUILD_INFO").is_file() else {}
    if (info.get("cmake.CPU_ONLY"), info.get("cmake.USE_OPENCV")) != ("ON", "ON"):
        pytest.skip("this Python's pycaffe is not setup.sh's default build (CPU, with OpenCV), which would be built")
    env = {k: v for k, v in os.environ.items() if k not in ("CAFFE_CUDA", "CAFFE_OPENCV")}
    result = subprocess.run(["bash", str(SETUP), "--caffe-prefix"], env=dict(env, PYTHON=sys._base_executable),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{prefix}\n"
    assert f"==> Caffe found in cache: {prefix}" in result.stderr
