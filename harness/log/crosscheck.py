"""Every debug line Caffe prints, matched to the harness's own number for the same thing.

A line and a value match on (iteration, net, pass, phase, layer, blob); the two streams arrive at
different times, so each side waits in a dict until its partner comes. glog prints 6 significant
digits and Caffe sums in float, so values agree to a relative tolerance, not exactly. Where Caffe's
float sum overflows, the log says `inf` for a finite mean: that is counted as an overflow, not a mismatch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.records import FLT_MAX, BlobStat, ParamNorms

_NORM_FIELDS = ("l1_data", "l1_diff", "l2_data", "l2_diff")
# Below this both sides are denormal-small and differ only by float rounding.
_TINY = 1e-30


@dataclass
class Mismatch:
    key: tuple
    log_value: float
    harness_value: float
    rel_error: float


@dataclass
class CrossCheck:
    rel_tol: float = 1e-4
    compared: int = 0
    overflowed: int = 0
    max_rel_error: float = 0.0
    mismatches: list = field(default_factory=list)
    _log: dict = field(default_factory=dict)
    _harness: dict = field(default_factory=dict)

    @staticmethod
    def _entries(record):
        """(key, value, overflows) for each printed number a record carries."""
        if isinstance(record, BlobStat):
            key = (record.iteration, record.net, record.pass_index, record.phase, record.layer, record.blob)
            return [(key, record.mean_abs, record.overflow)]
        if isinstance(record, ParamNorms):
            base = (record.iteration, record.net, record.pass_index, "norms")
            return [(base + (name,), getattr(record, name),
                     # Caffe takes the square root of a float sum of squares: that sum overflows first.
                     getattr(record, name) ** (2 if name.startswith("l2") else 1) > FLT_MAX)
                    for name in _NORM_FIELDS]
        return []

    def add_log(self, record) -> None:
        for key, value, _ in self._entries(record):
            partner = self._harness.pop(key, None)
            if partner is None:
                self._log[key] = value
            else:
                self._compare(key, value, *partner)

    def add_harness(self, record) -> None:
        if isinstance(record, BlobStat) and not record.printed:
            return
        for key, value, overflows in self._entries(record):
            partner = self._log.pop(key, None)
            if partner is None:
                self._harness[key] = (value, overflows)
            else:
                self._compare(key, partner, value, overflows)

    def _compare(self, key, log_value: float, harness_value: float, overflows: bool) -> None:
        self.compared += 1
        if math.isnan(log_value) and math.isnan(harness_value):
            return
        if math.isinf(log_value) and (harness_value == log_value or (overflows and log_value > 0)):
            self.overflowed += overflows
            return
        if math.isfinite(log_value) and math.isfinite(harness_value):
            scale = max(abs(log_value), abs(harness_value))
            rel = 0.0 if scale < _TINY else abs(log_value - harness_value) / scale
            self.max_rel_error = max(self.max_rel_error, rel)
            if rel <= self.rel_tol:
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
            "rel_tolerance": self.rel_tol,
            "mismatches": [
                {"iteration": m.key[0], "net": m.key[1], "pass": m.key[2], "phase": m.key[3],
                 "layer": m.key[4], "blob": m.key[5], "log": _text(m.log_value),
                 "harness": _text(m.harness_value), "rel_error": _text(m.rel_error)}
                for m in self.mismatches[:keep]],
            "unmatched_log_examples": [list(k) for k in list(self._log)[:10]],
            "unmatched_harness_examples": [list(k) for k in list(self._harness)[:10]],
        }


def _text(value: float):
    return value if math.isfinite(value) else str(value)
