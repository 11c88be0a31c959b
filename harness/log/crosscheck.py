"""Every debug line Caffe prints, matched to the harness's own number for the same thing.

A line and a value match on (iteration, net, pass, phase, layer, blob), or (iteration, net, pass, "norms",
field) for the `All net params` line; the two streams arrive at different times, so each side waits in a
dict until its partner comes. How they are compared depends on where the harness's numbers came from
(`statistics`, which the worker reports when it starts):

- **exact** (`caffe`: Blob.debug_stats, the patched pycaffe): the harness's value is the very float Caffe
  computed, by the same calls. glog prints a float as std::ostream does by default, 6 significant digits
  (`%.6g`); the harness's value formatted the same way must read back as exactly the logged number.
  Any difference, however small, is a mismatch.
- **tolerance** (`numpy` or `cupy`: a Caffe without the patch): the harness sums |x| in its own order, Caffe
  in BLAS's, and both in float32 for the printed mean. The relative tolerance is derived from the blob's
  size (`rel_tolerance`).

Where Caffe's float sum overflows, the log says `inf` for a finite mean: that is counted as an overflow,
not a mismatch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..core.records import FLT_MAX, BlobStat, ParamNorms

_NORM_FIELDS = ("l1_data", "l1_diff", "l2_data", "l2_diff")
# Below this both sides are denormal-small and differ only by float rounding.
_TINY = 1e-30
EXACT_STATISTICS = "caffe"

# The tolerance path's error model. Caffe's printed mean |x| is BLAS's float32 sum of |x| (cblas_sasum,
# cublasSasum) over count. A BLAS kernel keeps parallel partial sums: at least BLAS_LANES of them in every
# kernel we know (OpenBLAS's AVX2 kernel: 4 registers of 8 floats; AVX-512 and cuBLAS: more). Each is a
# recursive float sum of ceil(n / BLAS_LANES) non-negative terms, whose relative error is at most that
# many units of float32 rounding (UNIT_ROUNDOFF, Higham, "Accuracy and Stability of Numerical Algorithms",
# §4.2); combining the partial sums, the division by count and the harness's own float32 pairwise sum add
# at most 2 * BLAS_LANES more; glog's 6 significant digits add PRINT_ROUNDING. The L1/L2 norms use the
# element count of all parameters (the sum of squares of L2 has the same bound; its square root halves it).
# Measured with OpenBLAS 0.3.21 (AVX-512): Gaussian weights of 40M elements differ by 4.7e-4, constant ones
# (the worst case: each partial sum stalls) by 2.4e-2, against a bound of 7.5e-2.
UNIT_ROUNDOFF = 2.0 ** -24
BLAS_LANES = 32
PRINT_ROUNDING = 5e-6


def rel_tolerance(count: Optional[int]) -> float:
    """How far Caffe's printed mean |x| over `count` elements may be from the harness's (tolerance path)."""
    terms = math.ceil((count or 1) / BLAS_LANES) + 2 * BLAS_LANES
    return PRINT_ROUNDING + terms * UNIT_ROUNDOFF


def as_glog_prints(value: float) -> float:
    """A float as glog writes it (std::ostream's default: 6 significant digits), read back."""
    return float(f"{value:.6g}")


@dataclass
class Mismatch:
    key: tuple
    log_value: float
    harness_value: float
    rel_error: float


@dataclass
class CrossCheck:
    statistics: Optional[str] = None   # where the harness's numbers come from: caffe (exact), numpy or cupy;
                                       # None until the worker says (it never does when set-up fails)
    compared: int = 0
    overflowed: int = 0
    max_rel_error: float = 0.0
    max_rel_tolerance: float = 0.0
    mismatches: list = field(default_factory=list)
    _log: dict = field(default_factory=dict)
    _harness: dict = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.statistics == EXACT_STATISTICS

    @staticmethod
    def _entries(record):
        """(key, value, overflows, count) for each printed number a record carries."""
        if isinstance(record, BlobStat):
            key = (record.iteration, record.net, record.pass_index, record.phase, record.layer, record.blob)
            return [(key, record.mean_abs, record.overflow, record.count)]
        if isinstance(record, ParamNorms):
            base = (record.iteration, record.net, record.pass_index, "norms")
            return [(base + (name,), getattr(record, name),
                     # Caffe takes the square root of a float sum of squares: that sum overflows first.
                     getattr(record, name) ** (2 if name.startswith("l2") else 1) > FLT_MAX, record.count)
                    for name in _NORM_FIELDS]
        return []

    def add_log(self, record) -> None:
        for key, value, _, _ in self._entries(record):
            partner = self._harness.pop(key, None)
            if partner is None:
                self._log[key] = value
            else:
                self._compare(key, value, *partner)

    def add_harness(self, record) -> None:
        if isinstance(record, BlobStat) and not record.printed:
            return
        for key, value, overflows, count in self._entries(record):
            partner = self._log.pop(key, None)
            if partner is None:
                self._harness[key] = (value, overflows, count)
            else:
                self._compare(key, partner, value, overflows, count)

    def _compare(self, key, log_value: float, harness_value: float, overflows: bool, count) -> None:
        self.compared += 1
        if math.isnan(log_value) and math.isnan(harness_value):
            return
        if math.isinf(log_value) and (harness_value == log_value or (overflows and log_value > 0)):
            self.overflowed += overflows
            return
        if math.isfinite(log_value) and math.isfinite(harness_value):
            # Exact: the harness's float as glog prints it; the rest of it is not in the log to compare.
            theirs = as_glog_prints(harness_value) if self.exact else harness_value
            scale = max(abs(log_value), abs(theirs))
            rel = 0.0 if scale < _TINY else abs(log_value - theirs) / scale
            self.max_rel_error = max(self.max_rel_error, rel)
            tolerance = 0.0 if self.exact else rel_tolerance(count)
            self.max_rel_tolerance = max(self.max_rel_tolerance, tolerance)
            if rel <= tolerance:
                return
        else:
            rel = math.inf
        self.mismatches.append(Mismatch(key, log_value, harness_value, rel))

    def summary(self, keep: int = 50) -> dict:
        return {
            "compared": self.compared,
            "mismatched": len(self.mismatches),
            "unmatched_log_lines": len(self._log),
            "unmatched_harness_values": len(self._harness),
            "overflowed": self.overflowed,
            "max_rel_error": self.max_rel_error,
            "method": "exact" if self.exact else ("tolerance" if self.statistics else None),
            "statistics": self.statistics,
            "max_rel_tolerance": self.max_rel_tolerance,
            "mismatches": [_mismatch_entry(m) for m in self.mismatches[:keep]],
            "unmatched_log_examples": [list(k) for k in list(self._log)[:10]],
            "unmatched_harness_examples": [list(k) for k in list(self._harness)[:10]],
        }


def _mismatch_entry(mismatch: Mismatch) -> dict:
    """A mismatch where it happened: a blob's line (iteration, net, pass, phase, layer, blob) or the
    norms line (iteration, net, pass, "norms", field)."""
    iteration, net, pass_index, phase, *where = mismatch.key
    if phase == "norms":
        place = {"layer": "All net params", "blob": where[0]}
    else:
        place = {"layer": where[0], "blob": where[1]}
    return {"iteration": iteration, "net": net, "pass": pass_index, "phase": "backward" if phase == "norms" else phase,
            **place, "log": _text(mismatch.log_value), "harness": _text(mismatch.harness_value),
            "rel_error": _text(mismatch.rel_error)}


def _text(value: float):
    return value if math.isfinite(value) else str(value)
