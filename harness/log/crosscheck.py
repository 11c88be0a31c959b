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

Caffe prints the train net's lines only on iterations divisible by `display` (the harness samples them,
docs/train.md): the harness's values of other iterations are not waited for. Memory stays flat however long
the run: a value whose partner has not come once both streams are two iterations further is counted as
unmatched and dropped, and only the first mismatches and unmatched keys are kept as examples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..core.records import FLT_MAX, BlobStat, ParamNorms

_NORM_FIELDS = ("l1_data", "l1_diff", "l2_data", "l2_diff")
_EXAMPLES = 50         # mismatches, and unmatched keys of each side, kept to show
_LAG = 2               # iterations both streams must be past a pending value before it counts as unmatched
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
    display: int = 1                   # Caffe prints the train net's debug lines on iterations divisible by this
    compared: int = 0
    lines: int = 0                     # log lines compared (a norms line holds four numbers)
    iterations: int = 0                # iterations with a compared line
    overflowed: int = 0
    mismatched: int = 0
    unmatched_log: int = 0             # pending values dropped (see the module's docstring)
    unmatched_harness: int = 0
    max_rel_error: float = 0.0
    max_rel_tolerance: float = 0.0
    mismatches: list = field(default_factory=list)          # the first _EXAMPLES
    unmatched_log_examples: list = field(default_factory=list)
    unmatched_harness_examples: list = field(default_factory=list)
    _log: dict = field(default_factory=dict)
    _harness: dict = field(default_factory=dict)
    _last_iteration: dict = field(default_factory=lambda: {"log": -1, "harness": -1})
    _checked_iteration: int = -1

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
        entries = self._entries(record)
        for key, value, _, _ in entries:
            partner = self._harness.pop(key, None)
            if partner is None:
                self._log[key] = value
            else:
                self._compare(key, value, *partner)
        if entries:
            self._advance("log", entries[0][0][0])

    def add_harness(self, record) -> None:
        if isinstance(record, BlobStat) and not record.printed:
            return
        if isinstance(record, ParamNorms) and not self._displays(record.iteration):
            return   # Caffe prints the norms line with the train net's other lines only
        entries = self._entries(record)
        for key, value, overflows, count in entries:
            partner = self._log.pop(key, None)
            if partner is None:
                self._harness[key] = (value, overflows, count)
            else:
                self._compare(key, partner, value, overflows, count)
        if entries:
            self._advance("harness", entries[0][0][0])

    def _displays(self, iteration: int) -> bool:
        return self.display > 0 and iteration % self.display == 0

    def _advance(self, side: str, iteration: int) -> None:
        """Drop the pending values both streams have left behind, counting them as unmatched."""
        if iteration <= self._last_iteration[side]:
            return
        self._last_iteration[side] = iteration
        before = min(self._last_iteration.values()) - _LAG
        for pending, examples, counter in ((self._log, self.unmatched_log_examples, "unmatched_log"),
                                           (self._harness, self.unmatched_harness_examples, "unmatched_harness")):
            stale = [key for key in pending if key[0] < before]
            for key in stale:
                del pending[key]
                if len(examples) < _EXAMPLES:
                    examples.append(key)
            setattr(self, counter, getattr(self, counter) + len(stale))

    def _compare(self, key, log_value: float, harness_value: float, overflows: bool, count) -> None:
        self.compared += 1
        self.lines += key[3] != "norms" or key[4] == _NORM_FIELDS[0]
        if key[0] != self._checked_iteration:
            self._checked_iteration = key[0]
            self.iterations += 1
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
        self.mismatched += 1
        if len(self.mismatches) < _EXAMPLES:
            self.mismatches.append(Mismatch(key, log_value, harness_value, rel))

    def pending(self) -> int:
        """Values waiting for their partner: bounded by a few iterations' lines however long the run."""
        return len(self._log) + len(self._harness)

    def summary(self, keep: int = _EXAMPLES) -> dict:
        return {
            "compared": self.compared,
            "mismatched": self.mismatched,
            "unmatched_log_lines": self.unmatched_log + len(self._log),
            "unmatched_harness_values": self.unmatched_harness + len(self._harness),
            "overflowed": self.overflowed,
            "max_rel_error": self.max_rel_error,
            "method": "exact" if self.exact else ("tolerance" if self.statistics else None),
            "statistics": self.statistics,
            "max_rel_tolerance": self.max_rel_tolerance,
            "sampling": "every" if self.display == 1 else "sample",
            "display": self.display,
            "lines_compared": self.lines,
            "iterations_compared": self.iterations,
            "mismatches": [_mismatch_entry(m) for m in self.mismatches[:keep]],
            "unmatched_log_examples": [list(k) for k in (self.unmatched_log_examples + list(self._log))[:10]],
            "unmatched_harness_examples": [list(k) for k in
                                           (self.unmatched_harness_examples + list(self._harness))[:10]],
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
