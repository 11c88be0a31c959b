"""Caffe's debug statistics of a blob, plus what the rules need and Caffe never prints. Two ways to get them:

- **Caffe's own numbers** (`summarize_blob`), where pycaffe has `Blob.debug_stats` (the patch of
  scripts/patch-caffe.sh, in every build scripts/setup.sh makes): Caffe's own `asum_data()` /
  `sumsq_data()` calls, the ones `debug_info` makes, so the mean |x| is the very float Caffe prints, plus
  one pass over the elements (on the GPU where the blob lives there) for the rest. The cross-check
  compares them exactly.
- **numpy** (`summarize`), for a pycaffe without it (a user's own Caffe): mean |x| = float32 asum / count
  like Caffe's, but not summed in Caffe's order, so the cross-check allows for float32 summation error
  (harness/log/crosscheck.py). This path runs on every blob after every layer, so the common case (every
  element finite) costs four vectorised passes and no allocation: |x| into a buffer reused across calls (a
  fresh temporary per blob costs page faults on every layer of every iteration), its float32 sum, its
  max, and its zero count.

Either way, where Caffe's float sum is not finite the elements tell whether it overflowed to `inf` although
every element is finite ("overflow", a sign of explosion; mean_abs is then the true mean) or some element
really is NaN/Inf.
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
    sumsq: Optional[float]   # sum of squares, when asked for: exact, Caffe's float; else float64 over finite elements
    overflow: bool           # Caffe's float asum is inf while the elements are finite
    asum: float              # exact: Caffe's float asum; else float64 sum of |x| over finite elements
    exact: bool = False      # from Caffe's own calls (Blob.debug_stats)


def has_caffe_stats(caffe) -> bool:
    """Whether this pycaffe has Blob.debug_stats (a build of scripts/setup.sh), so summarize_blob works."""
    blob_class = getattr(getattr(caffe, "_caffe", None), "Blob", None)   # pycaffe does not re-export Blob
    return hasattr(blob_class, "debug_stats")


def summarize_blob(blob, which: str = "data", with_sumsq: bool = False) -> Summary:
    """The Summary of a pycaffe Blob's `data` or `diff` from Caffe's own calls, read where the blob lives
    (on the GPU nothing comes to the host but the numbers)."""
    asum, mean_abs, sumsq, finite_asum, max_abs, zeros, nonfinite = blob.debug_stats(which == "diff", with_sumsq)
    count = blob.count
    if count == 0:
        return Summary(0.0, 0, 0, 0.0, 0.0, 0.0 if with_sumsq else None, False, 0.0, True)
    overflow = nonfinite == 0 and math.isinf(asum)
    return Summary(finite_asum / count if overflow else mean_abs, count, nonfinite,
                   1.0 - (count - zeros) / count,   # summarize's expression, to the last bit
                   max_abs, sumsq if with_sumsq else None, overflow, asum, True)


def param_norms(data: list, diff: list) -> tuple:
    """(L1 data, L1 diff, L2 data, L2 diff) of `[Backward] All net params`, from the Summaries of the net's
    learnable parameters in Caffe's order (with sumsq). Net::Backward adds each parameter's float asum and
    sumsq to a float total, in that order, and prints the square root of the sums of squares; with Caffe's
    own numbers we do exactly that. The numpy path adds float64 sums, nan where an element is not finite."""
    if all(s.exact for s in data + diff):
        def total(parts, attr):
            value = np.float32(0)
            with np.errstate(over="ignore", invalid="ignore"):   # Caffe's float total overflows the same way
                for part in parts:
                    value = np.float32(value + np.float32(getattr(part, attr)))
            return value
        with np.errstate(invalid="ignore"):
            return (float(total(data, "asum")), float(total(diff, "asum")),
                    float(np.sqrt(total(data, "sumsq"))), float(np.sqrt(total(diff, "sumsq"))))
    total = lambda parts, attr: sum(getattr(p, attr) if p.nonfinite == 0 else math.nan for p in parts)
    return total(data, "asum"), total(diff, "asum"), total(data, "sumsq") ** 0.5, total(diff, "sumsq") ** 0.5


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
