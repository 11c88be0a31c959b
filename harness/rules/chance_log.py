"""Chance level from a log without the net definition: the number of classes K from the numbers the log prints,
and where a loss sat at ln K (pure functions over the observed series; the chance_loss rule collects them).

K is taken only where two numbers of the log agree, or one pins it to its last digit:
- an accuracy output (top-1) at 1/K, while some loss of the log is within the rule's distance of ln K;
- a loss printed as ln K to its last printed digit (within a tenth of the gap to ln(K+1)), at iteration 0
  (an untrained classifier is at chance) or repeated unchanged.
A log that gives neither (say a loss of 6.4 and a top-1 of 0.19) says nothing about chance level.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

# Top-1 accuracies (not top-5); a pre-2015 log's unnamed test scores are told apart by their values.
_ACCURACY = re.compile(r"acc|top-?1(?!\d)", re.I)
_METRIC = re.compile(r"acc|top-?\d|prec|recall|map\b|iou|eval", re.I)   # named "loss1/top-5", still no loss
UNNAMED = "Test score #"
_SHARP = 0.1          # of the gap between ln K and ln(K + 1)
_NEAR_ONE_OVER = 0.05  # 1/accuracy within this of an integer K


@dataclass
class Series:
    """One output of one net as the log shows it: (iteration, value) in log order."""
    net: str
    name: str
    weight: float = 1.0                      # its loss_weight (1 when the log does not say)
    points: list = field(default_factory=list)


def is_accuracy(name: str, value: float) -> bool:
    return bool(_ACCURACY.search(name)) or (name.startswith(UNNAMED) and 0 <= value <= 1)


def is_loss(name: str, value: float, printed: dict) -> bool:
    if name in printed:
        return printed[name] != 0
    if name.startswith(UNNAMED):
        return value > 1
    return "loss" in name.lower() and not _METRIC.search(name)


def sharp_classes(value: float) -> Optional[int]:
    """K when `value` is ln K to its printed precision, else None."""
    if not 0.5 < value < 12:      # ln 2 .. ln 160000
        return None
    k = round(math.exp(value))
    if k < 2:
        return None
    return k if abs(value - math.log(k)) <= _SHARP * (math.log(k + 1) - math.log(k)) else None


def infer_classes(losses: list, accuracies: list, max_rel: float) -> Optional[tuple]:
    """(K, how the log says it) or None."""
    for series in losses:
        for i, (iteration, value) in enumerate(series.points):
            repeated = i > 0 and series.points[i - 1][1] == value
            k = sharp_classes(value) if iteration == 0 or repeated else None
            if k is not None:
                why = "at iteration 0 (an untrained classifier is at chance)" if iteration == 0 else "unchanged"
                return k, f"{series.name} prints {value:g} = ln({k}) {why}"
    values = [v for s in losses for _, v in s.points]
    for series in accuracies:
        for _, value in series.points:
            if not 0 < value <= 0.5 or abs(1 / value - round(1 / value)) > _NEAR_ONE_OVER * (1 / value):
                continue
            k = round(1 / value)
            near = [v for v in values if abs(v - math.log(k)) <= max_rel * math.log(k)]
            if k >= 2 and near:
                return k, (f"{series.name} = {value:g} is 1/{k} while the loss reads {near[0]:g}, about "
                           f"ln({k}) = {math.log(k):.4g}")
    return None


@dataclass(frozen=True)
class Verdict:
    kind: str                    # stuck_at_chance, collapse_to_chance, test_at_chance
    series: Series
    iteration: int
    before: Optional[int]        # the iteration shown before it, for an event (None: none, or a state)
    value: float


def judge_loss(series: Series, k: int, max_rel: float, trained_fraction: float, min_points: int,
               corroborated: set) -> Optional[Verdict]:
    """How the series ends: collapsed to exactly ln K, or stuck near it (None: neither)."""
    points, chance = series.points, math.log(k)
    if not points:
        return None
    last = points[-1][1]
    start = len(points)
    while start > 0 and points[start - 1][1] == last:
        start -= 1
    if sharp_classes(last) == k and start > 0 and len(points) - start >= 2:
        return Verdict("collapse_to_chance", series, points[start][0], points[start - 1][0], last)
    start = len(points)
    while start > 0 and abs(points[start - 1][1] - chance) <= max_rel * chance:
        start -= 1
    run = points[start:]
    if not run:
        return None
    learned = any(v < trained_fraction * chance for _, v in points[:start])
    enough = (len(run) >= 2 or (series.net, run[0][0]) in corroborated) and \
        (run[0][0] > 0 or len(run) >= min_points)
    if not enough:
        return None
    # Stuck is a state, not an event: it has no range to begin in. A collapse after learning has one.
    before = points[start - 1][0] if start > 0 and learned else None
    kind = "collapse_to_chance" if learned else "stuck_at_chance"
    return Verdict(kind, series, run[0][0], before, sum(v for _, v in run) / len(run))


def judge_test(accuracy: Series, train_losses: list, k: int, trained_fraction: float) -> Optional[Verdict]:
    """A test accuracy at or below 1/K at every test after iteration 0 (two or more) while a train loss fell
    below trained_fraction x ln K: the train net learns what the test net does not see."""
    later = [(i, v) for i, v in accuracy.points if i > 0]
    if len(later) < 2 or any(v > 1.2 / k for _, v in later):
        return None
    if not any(v < trained_fraction * math.log(k) for s in train_losses for i, v in s.points if i > 0):
        return None
    earlier = [i for i, _ in accuracy.points if i < later[0][0]]
    return Verdict("test_at_chance", accuracy, later[0][0], earlier[-1] if earlier else None,
                   sum(v for _, v in later) / len(later))
