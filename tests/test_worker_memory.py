"""Fixed memory: the worker loads pycaffe's caffe.io (scikit-image, SciPy) only when something uses it, and
`harness train`'s own process (the supervisor) does without numpy while it trains."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.caffe

PROBE = """
import sys
from harness.run.worker import _import_caffe
caffe = _import_caffe()
print("skimage" in sys.modules, "scipy" in sys.modules)
from caffe import io
transformer = caffe.io.Transformer({"data": (1, 3, 4, 4)})   # what a Python layer or the prompt may use
print("skimage" in sys.modules, io.Transformer is caffe.io.Transformer is sys.modules["caffe.io"].Transformer)
"""


def test_caffe_io_is_imported_only_when_used():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "True", "True"]


def test_the_supervisor_trains_without_numpy():
    probe = "import sys, harness.commands.train, harness.run.supervisor; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]
