"""harness/run/pycaffe.py: the worker imports pycaffe without caffe.io's scikit-image and SciPy, which still
load, whole, when something uses caffe.io (a Python layer, the interactive prompt)."""
import subprocess
import sys

import pytest

PROBE = """
import sys
from harness.run import pycaffe
caffe = pycaffe.load()
print("after import:", "skimage" in sys.modules, "scipy.ndimage" in sys.modules)
net_ready = caffe.Net is not None and caffe.SGDSolver is not None and caffe.NetSpec is not None
from caffe.io import resize_image          # a Python layer's way of using it
print("after use:", "skimage" in sys.modules, "scipy.ndimage" in sys.modules, net_ready)
print("transformer:", type(caffe.io.Transformer).__name__, caffe.io.resize_image is resize_image)
try:
    caffe.io.no_such_name
except AttributeError as error:
    print("missing:", error)
"""


@pytest.mark.caffe
def test_caffe_io_loads_on_first_use_not_at_import():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "after import: False False",
        "after use: True True True",
        "transformer: type True",
        "missing: module 'caffe.io' has no attribute 'no_such_name'",
    ]
