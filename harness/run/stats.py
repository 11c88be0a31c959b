"""Caffe's debug statistics computed from a blob's values, plus what the rules need and Caffe never prints.

Caffe prints mean |x| = float asum / count. Like Caffe we sum in float32 (numpy's pairwise sum: relative
error ~1e-7, well inside glog's 6 printed digits); where that sum is not finite we sum again in float64,
so we know whether Caffe's float sum overflowed to `inf` although every element is finite ("overflow",
a sign of explosion) or some element really is NaN/Inf.

This runs on every blob after every layer, so the common case (every element finite) costs four
vectorised passes and no allocation: |x| into a buffer reused across calls (a fresh temporary per blob
costs page faults on every layer of every iteration), its float32 sum, its max, and its zero count.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from ..core.records import FLT_MAX



class Summary(NamedTuple):
    mean_abs: float          # what Caffe prints (nan / inf when elements are non-finite)
    count: int
    nonfinite: int
    zero_fraction: float
    max_abs: float           # over finite elements; 0 when there are none
    sumsq: Optional[float]   # float64 sum of squares of finite elements, when asked for
    overflow: bool           # Caffe's float asum is inf while the elements are finite
    asum: float              # float64 sum of |x| over finite elements


def _sumsq64(values: np.ndarray) -> float:
    as64 = values.astype(np.float64)   # float64 . float64 is BLAS's ddot; a mixed-type dot is 50x slower
    return float(np.dot(as64, as64))


_magnitudes = np.empty(0, np.float32)


def _fast_summary(flat: np.ndarray, with_sumsq: bool) -> Optional[Summary]:
    """The Summary of a contiguous float32 array whose elements are all finite; None when some are not."""
    global _magnitudes
    count = flat.size
    if _magnitudes.size < count:
        _magnitudes = np.empty(count, np.float32)
    magnitudes = np.abs(flat, out=_magnitudes[:count])
    with np.errstate(over="ignore"):   # an overflowing float32 sum is expected and handled just below
        asum = float(np.add.reduce(magnitudes))   # float32: twice as fast as a float64 sum
    if not math.isfinite(asum):
        # Overflow of the float32 sum, or a non-finite element: a float64 sum tells which, since it
        # cannot overflow on finite float32 values.
        asum = float(np.add.reduce(magnitudes, dtype=np.float64))
        if not math.isfinite(asum):
            return None
    max_abs = float(magnitudes.max())
    # |x| has its sign bit cleared, so +0 and -0 are both the integer 0; counting non-zero integers is
    # five times faster than counting non-zero floats.
    zero_fraction = 1.0 - int(np.count_nonzero(magnitudes.view(np.int32))) / count
    sumsq = _sumsq64(flat) if with_sumsq else None
    return Summary(asum / count, count, 0, zero_fraction, max_abs, sumsq, asum > FLT_MAX, asum)


def summarize(values: np.ndarray, with_sumsq: bool = False) -> Summary:
    flat = values.reshape(-1)
    count = flat.size
    if count == 0:
        return Summary(0.0, 0, 0, 0.0, 0.0, 0.0 if with_sumsq else None, False, 0.0)
    if flat.dtype == np.float32 and flat.flags.c_contiguous:
        summary = _fast_summary(flat, with_sumsq)
        if summary is not None:
            return summary
    magnitudes = np.abs(flat)
    asum = float(np.add.reduce(magnitudes, dtype=np.float64))
    zero_fraction = 1.0 - int(np.count_nonzero(flat)) / count
    if math.isfinite(asum):
        # Not float32 (a test, or a double blob): one sum proves every element finite.
        max_abs = float(magnitudes.max())
        sumsq = _sumsq64(magnitudes) if with_sumsq else None
        return Summary(asum / count, count, 0, zero_fraction, max_abs, sumsq, asum > FLT_MAX, asum)
    finite = np.isfinite(flat)
    nonfinite = count - int(np.count_nonzero(finite))
    printed = math.nan if np.isnan(flat).any() else math.inf
    finite_magnitudes = magnitudes[finite]
    finite_asum = float(np.add.reduce(finite_magnitudes, dtype=np.float64))
    max_abs = float(finite_magnitudes.max()) if finite_magnitudes.size else 0.0
    sumsq = _sumsq64(finite_magnitudes) if with_sumsq else None
    return Summary(printed, count, nonfinite, zero_fraction, max_abs, sumsq, False, finite_asum)
