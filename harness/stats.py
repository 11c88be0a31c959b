"""Caffe's debug statistics computed from a blob's values, plus what the rules need and Caffe never prints.

Caffe prints mean |x| = float asum / count. We sum in float64, so we also know when Caffe's float sum
overflows to `inf` although every element is finite ("overflow"), which is a sign of explosion, not NaN.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

FLT_MAX = float(np.finfo(np.float32).max)


class Summary(NamedTuple):
    mean_abs: float          # what Caffe prints (nan / inf when elements are non-finite)
    count: int
    nonfinite: int
    zero_fraction: float
    max_abs: float           # over finite elements; 0 when there are none
    sumsq: Optional[float]   # float64 sum of squares of finite elements, when asked for
    overflow: bool           # Caffe's float asum is inf while the elements are finite
    asum: float              # float64 sum of |x| over finite elements


def summarize(values: np.ndarray, with_sumsq: bool = False) -> Summary:
    flat = values.reshape(-1)
    count = flat.size
    if count == 0:
        return Summary(0.0, 0, 0, 0.0, 0.0, 0.0 if with_sumsq else None, False, 0.0)
    magnitudes = np.abs(flat)
    asum = float(np.add.reduce(magnitudes, dtype=np.float64))
    zero_fraction = 1.0 - int(np.count_nonzero(flat)) / count
    if math.isfinite(asum):
        # The common case: one sum proves every element finite, so no per-element finiteness test.
        max_abs = float(magnitudes.max())
        sumsq = float(np.dot(flat, flat.astype(np.float64))) if with_sumsq else None
        overflow = asum > FLT_MAX
        return Summary(asum / count, count, 0, zero_fraction, max_abs, sumsq, overflow, asum)
    finite = np.isfinite(flat)
    nonfinite = count - int(np.count_nonzero(finite))
    printed = math.nan if np.isnan(flat).any() else math.inf
    finite_magnitudes = magnitudes[finite]
    finite_asum = float(np.add.reduce(finite_magnitudes, dtype=np.float64))
    max_abs = float(finite_magnitudes.max()) if finite_magnitudes.size else 0.0
    sumsq = float(np.dot(finite_magnitudes, finite_magnitudes.astype(np.float64))) if with_sumsq else None
    return Summary(printed, count, nonfinite, zero_fraction, max_abs, sumsq, False, finite_asum)
