"""Blob statistics computed on the GPU, for `harness train --gpu N`: stats.summarize's Summary.

Why not `summarize(blob.data)` on the GPU: pycaffe's `.data` / `.diff` are Caffe's `mutable_cpu_data()`,
which copies the blob to the host *and* marks the host copy as the current one, so the next layer's
`gpu_data()` copies it back. Reading every top, bottom diff and parameter after every layer thus adds two
PCIe copies per blob per layer. Here the reductions run where the values are: `blob._gpu_data_ptr` /
`_gpu_diff_ptr` (Caffe's `mutable_gpu_data()`, no copy while the blob lives on the GPU) are wrapped as CuPy
arrays without copying, six small reductions write one float64 vector, and only those six numbers cross
to the host. The sums are float64 (summarize sums |x| in float32, as Caffe does): the two agree to float32
rounding, and the overflow test (float64 sum above FLT_MAX) is the same.

Ordering: Caffe launches its kernels on the legacy default stream, and the reductions run there too, so
they see a layer's finished output and finish before Caffe's next kernel overwrites it (in-place layers).

CuPy (`cupy-cuda13x` for the CUDA 13 build) is imported on first use only: the CPU harness never needs it.
"""
from __future__ import annotations

import functools

from ..core.errors import HarnessError
from ..core.records import FLT_MAX
from .stats import Summary

FLOAT32_BYTES = 4
# name -> (element -> float64 value, how two values combine); every identity is 0. Only finite elements
# enter the sums and the maximum, as in stats.summarize; the counts are exact in float64 below 2**53.
REDUCTIONS = {
    "asum": ("isfinite(x) ? fabs((double)x) : 0.0", "a + b"),
    "max_abs": ("isfinite(x) ? fabs((double)x) : 0.0", "fmax(a, b)"),
    "nonfinite": ("isfinite(x) ? 0.0 : 1.0", "a + b"),
    "nans": ("isnan(x) ? 1.0 : 0.0", "a + b"),
    "zeros": ("x == 0.0f ? 1.0 : 0.0", "a + b"),
    "sumsq": ("isfinite(x) ? (double)x * (double)x : 0.0", "a + b"),
}


def from_reductions(count: int, asum: float, max_abs: float, nonfinite: int, nans: int, zeros: int,
                    sumsq: float | None) -> Summary:
    """The Summary stats.summarize gives, to float32 rounding of the |x| sum, for values with these
    reductions (sums over finite elements only; sumsq None when not asked for). Kept apart from the device
    so it is tested without a GPU."""
    if count == 0:
        return Summary(0.0, 0, 0, 0.0, 0.0, sumsq, False, 0.0)
    # The same expression as summarize (1 - nonzero/count), so the float is the same to the last bit.
    zero_fraction = 1.0 - (count - zeros) / count
    if nonfinite == 0:
        return Summary(asum / count, count, 0, zero_fraction, max_abs, sumsq, asum > FLT_MAX, asum)
    # Caffe's float sum of |x| is nan as soon as one element is nan, else inf.
    printed = float("nan") if nans else float("inf")
    return Summary(printed, count, nonfinite, zero_fraction, max_abs, sumsq, False, asum)


def summarize_blob(blob, which: str = "data", with_sumsq: bool = False) -> Summary:
    """stats.summarize of a pycaffe Blob's `data` or `diff`, computed on the GPU it lives on.

    Only for a worker that put Caffe in GPU mode: in a CPU-only build the device pointer is a Caffe
    CHECK failure (abort), in a CUDA build in CPU mode it would allocate device memory.
    """
    pointer = blob._gpu_data_ptr if which == "data" else blob._gpu_diff_ptr
    return summarize_device(pointer, blob.count, owner=blob, with_sumsq=with_sumsq)


def summarize_device(pointer: int, count: int, owner, with_sumsq: bool = False) -> Summary:
    """Summary of `count` float32 values at device address `pointer`; `owner` keeps the memory alive."""
    if count == 0:
        return from_reductions(0, 0.0, 0.0, 0, 0, 0, 0.0 if with_sumsq else None)
    cupy = _cupy()
    memory = cupy.cuda.UnownedMemory(pointer, count * FLOAT32_BYTES, owner)
    values = cupy.ndarray((count,), dtype=cupy.float32, memptr=cupy.cuda.MemoryPointer(memory, 0))
    names = [name for name in REDUCTIONS if with_sumsq or name != "sumsq"]
    with cupy.cuda.Stream.null:
        reduced = dict(zip(names, cupy.stack([_kernels()[name](values) for name in names]).get().tolist()))
    return from_reductions(count, reduced["asum"], reduced["max_abs"], int(reduced["nonfinite"]),
                           int(reduced["nans"]), int(reduced["zeros"]), reduced.get("sumsq"))


def cupy_available() -> bool:
    """Whether CuPy imports here (it does without a GPU; running kernels needs one)."""
    try:
        _cupy()
    except HarnessError:
        return False
    return True


def _cupy():
    try:
        import cupy
    except ImportError as error:
        raise HarnessError(
            f"GPU statistics need CuPy, which does not import here ({error}). Install the build for this "
            "CUDA major into the CUDA venv, e.g. `.venv-cuda/bin/pip install 'cupy-cuda13x[ctk]'` "
            "(docs/gpu.md).") from error
    return cupy


@functools.cache
def _kernels() -> dict:
    """One compiled ReductionKernel per statistic (CuPy compiles on first call and caches on disk)."""
    cupy = _cupy()
    return {name: cupy.ReductionKernel("float32 x", "float64 y", element, combine, "y = a", "0",
                                       f"harness_{name}", reduce_type="double")
            for name, (element, combine) in REDUCTIONS.items()}
