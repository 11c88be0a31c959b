"""Is a replay the same run? Compare its records with the original's, record by record, exactly."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

from ..core.records import BlobStat, IterationEnd, ParamNorms


def _key_and_values(record):
    if isinstance(record, BlobStat):
        return ((record.iteration, record.net, record.pass_index, record.phase, record.layer, record.blob),
                (record.mean_abs, record.nonfinite, record.zero_fraction, record.max_abs, record.sumsq))
    if isinstance(record, ParamNorms):
        return ((record.iteration, record.net, record.pass_index, "norms", "", ""),
                (record.l1_data, record.l1_diff, record.l2_data, record.l2_diff))
    if isinstance(record, IterationEnd):
        # Wall time differs between runs by nature; everything Caffe computed must not.
        return ((record.iteration, "train", -1, "end", "", ""), (record.loss, record.lr, repr(record.outputs)))
    return None, None


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@dataclass
class Comparison:
    compared: int = 0
    iterations: int = 0                    # replayed iterations found identical from start to end
    first_divergence: Optional[dict] = None


def compare(original: Iterable, replayed: Iterable, last_iteration: int) -> Comparison:
    """Every original record up to `last_iteration` that the replay also produced must be identical;
    an original record of an earlier iteration that the replay lacks is a divergence too."""
    produced = {}
    for record in replayed:
        key, values = _key_and_values(record)
        if key is not None:
            produced[key] = values
    result = Comparison()
    for record in original:
        key, values = _key_and_values(record)
        if key is None or key[0] > last_iteration:
            continue
        if key not in produced:
            if key[0] < last_iteration:
                result.first_divergence = {"key": list(key), "original": list(values), "replayed": None}
                break
            continue
        result.compared += 1
        if not all(_same(a, b) for a, b in zip(values, produced[key])):
            result.first_divergence = {"key": list(key), "original": list(values), "replayed": list(produced[key])}
            break
    ends = sorted(k[0] for k in produced if k[3] == "end")
    if result.first_divergence is None:
        result.iterations = len(ends)
    else:
        result.iterations = sum(1 for it in ends if it < result.first_divergence["key"][0])
    return result
