"""Fixed memory: `harness train`'s own process (the supervisor) does without numpy while it trains. (The
worker's pycaffe without caffe.io until used: tests/test_pycaffe.py.)"""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.caffe


def test_the_supervisor_trains_without_numpy():
    probe = "import sys, harness.commands.train, harness.run.supervisor; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]
