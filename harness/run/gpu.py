"""Can `harness train --gpu N` run here? Asked before any process of ours switches Caffe to GPU mode.

`caffe.set_device` / `caffe.set_mode_gpu` without a usable GPU is a Caffe CHECK failure that aborts the
process, and a CPU-only build aborts the same way, so the answer comes from two places that cannot crash
the caller: the BUILD_INFO file scripts/setup.sh writes beside the build (was it built with CUDA?), and a
child Python that selects the device and runs a tiny net's forward and backward pass on it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.errors import HarnessError
from .build import TINY_NET, caffe_failure, last_lines, read_build_info
from .provenance import caffe_prefix

PROBE_TIMEOUT_S = 120   # a GPU newer than the compiled architectures JIT-compiles Caffe's PTX on first use
# Runs in the child with (device, net file). set_device needs the driver (a CHECK on cudaGetDevice); the
# forward/backward pass uses cuBLAS (InnerProduct) and Caffe's own kernels, which fail with "no kernel
# image is available" on a GPU whose architecture the build has neither code nor PTX for.
PROBE = """
import sys
import caffe
caffe.set_device(int(sys.argv[1]))
caffe.set_mode_gpu()
net = caffe.Net(sys.argv[2], caffe.TRAIN)
net.forward()
net.backward()
print("probe ok")
"""


@dataclass(frozen=True)
class Build:
    """What BUILD_INFO says about CUDA; `cuda` is None when there is no BUILD_INFO to ask."""
    cuda: Optional[bool]
    cuda_version: str = ""
    architectures: str = ""
    prefix: Optional[Path] = None


def caffe_build() -> Build:
    """The CUDA facts of the Caffe build pycaffe would load, found without importing caffe."""
    prefix = caffe_prefix()
    info_path = prefix / "BUILD_INFO" if prefix else None
    if info_path is None or not info_path.is_file():
        return Build(cuda=None, prefix=prefix)
    info = read_build_info(info_path)
    cpu_only = info.get("cmake.CPU_ONLY")
    ptx = info.get("cmake.CUDA_ARCH_PTX", "")
    return Build(cuda=None if cpu_only is None else cpu_only == "OFF",
                 cuda_version=info.get("cmake.CUDA_VERSION", ""),
                 architectures=info.get("cmake.CUDA_ARCH_BIN", "") + (f" PTX {ptx}" if ptx else ""),
                 prefix=prefix)


def nvidia_smi_gpus() -> Optional[list[str]]:
    """`nvidia-smi -L` lines (`GPU 0: NVIDIA H100 ...`); None when nvidia-smi is missing or fails."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    return [line.strip() for line in result.stdout.splitlines() if line.startswith("GPU ")]


def probe_device(device: int, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Run a tiny net on GPU `device` in a child Python: (usable, Caffe's reason when not)."""
    with tempfile.TemporaryDirectory(prefix="harness-gpu-probe-") as folder:
        net = Path(folder, "net.prototxt")
        net.write_text(TINY_NET)
        try:
            result = subprocess.run([sys.executable, "-c", PROBE, str(device), str(net)],
                                    capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False, f"the probe did not finish within {timeout_s:g} s"
    if result.returncode == 0 and "probe ok" in result.stdout:
        return True, ""
    if result.returncode < 0:
        return False, f"the probe was killed by signal {-result.returncode}: {caffe_failure(result.stderr)}"
    return False, caffe_failure(result.stderr) if result.stderr.strip() else last_lines(result.stdout)


def gpu_usable(device: int = 0) -> bool:
    """True when this Caffe build has CUDA and GPU `device` runs it (tests use this to skip)."""
    return caffe_build().cuda is not False and probe_device(device)[0]


def require_gpu(device: int) -> Build:
    """Raise HarnessError with a one-paragraph explanation unless `harness train --gpu device` can run.

    Costs one child Python (about 2 s with a GPU); call it before the run directory is made.
    """
    if device < 0:
        raise HarnessError(f"--gpu {device}: the GPU number counts from 0 (see `nvidia-smi -L`).")
    build = caffe_build()
    if build.cuda is False:
        raise HarnessError(
            f"--gpu {device}: the Caffe build this Python loads is CPU-only ({build.prefix}/BUILD_INFO says "
            "CPU_ONLY=ON). Build the CUDA variant with `make setup-cuda` (docs/gpu.md) and run "
            "`.venv-cuda/bin/harness train --gpu N ...`, or leave out --gpu to train on the CPU.")
    ok, reason = probe_device(device)
    if ok:
        return build
    gpus = nvidia_smi_gpus()
    if gpus is None:
        seen = "nvidia-smi is missing or failed, so there is probably no NVIDIA driver here"
    elif not gpus:
        seen = "nvidia-smi lists no GPU"
    else:
        seen = f"nvidia-smi lists {len(gpus)}: " + "; ".join(gpus)
    raise HarnessError(
        f"--gpu {device}: Caffe cannot use GPU {device} ({reason}); {seen}. Check the driver with "
        f"`nvidia-smi`, the number (0 to count-1, after CUDA_VISIBLE_DEVICES), that the GPU's architecture is "
        f"in the build ({build.architectures or 'architectures not recorded'}; CUDA_ARCH_BIN in docs/gpu.md), "
        "or leave out --gpu to train on the CPU.")
