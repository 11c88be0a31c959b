"""What report.html draws, collected from the run directory: the files read, and the records streamed once
into small aggregates (heatmap cells, curves). Heatmaps cover the train net, pass 0, and have at most
MAX_COLUMNS columns: a longer run is binned, several iterations to a column.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ..core.errors import HarnessError
from ..core.netinfo import RECTIFIER_TYPES, NetInfo, from_dict
from ..core.records import BACKWARD, FORWARD, TRAIN, BlobStat, IterationEnd, ParamNorms, TestResult
from ..core.store import iter_run_records

MAX_COLUMNS = 400
# Cell categories of a heatmap, in the order a column shows them when its iterations disagree.
MISSING, ZERO, FINITE, INF, NAN = range(5)



# ---------------------------------------------------------------- reading the run directory

def load_verdict(run_dir: Path) -> dict:
    path = run_dir / "verdict.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist: is {run_dir} a run directory of `harness train` or "
                           "`harness parse`?") from None
    except ValueError as error:
        raise HarnessError(f"{path} is not valid JSON ({error})") from None


def load_train_net(run_dir: Path) -> Optional[NetInfo]:
    """The train net from nets.json; None for a parsed log without a net echo."""
    path = run_dir / "nets.json"
    if not path.exists():
        return None
    try:
        nets = json.loads(path.read_text(encoding="utf-8"))
        return from_dict(nets[TRAIN]) if TRAIN in nets else None
    except (ValueError, KeyError, TypeError):
        return None   # a damaged nets.json costs only the layer order and types, not the report


def iter_records(run_dir: Path) -> Iterator:
    return iter_run_records(run_dir)


def rectifier_layers(net: Optional[NetInfo]) -> set:
    return {layer.name for layer in net.layers if layer.type in RECTIFIER_TYPES} if net is not None else set()


# ---------------------------------------------------------------- records -> aggregates

@dataclass
class Cells:
    """One heatmap being filled: rows keyed (layer, blob), columns of `width` iterations each.

    A cell keeps counts per category and the sum of its finite values (log10 of them when `log`), so a
    column that spans many iterations shows their mean (the geometric mean of mean |x| when `log`), and
    NaN or Inf if any of its iterations was.
    """
    width: int
    log: bool = True
    rows: dict = field(default_factory=dict)   # (layer, blob) -> {column: [value_sum, finite, zero, inf, nan]}

    def add(self, key: tuple, iteration: int, value: float) -> None:
        cell = self.rows.setdefault(key, {}).setdefault(iteration // self.width, [0.0, 0, 0, 0, 0])
        if math.isnan(value):
            cell[4] += 1
        elif math.isinf(value):
            cell[3] += 1
        elif self.log and value == 0:
            cell[2] += 1
        else:
            cell[0] += math.log10(abs(value)) if self.log else value
            cell[1] += 1

    def columns(self) -> int:
        return 1 + max((column for row in self.rows.values() for column in row), default=-1)

    def matrix(self, keys: list, columns: int):
        """(values, categories) arrays of shape (len(keys), columns); values are NaN outside FINITE cells."""
        import numpy as np
        values = np.full((len(keys), columns), np.nan)
        categories = np.full((len(keys), columns), MISSING, dtype=int)
        for r, key in enumerate(keys):
            for column, (total, finite, zero, inf, nan) in self.rows.get(key, {}).items():
                if nan:
                    categories[r, column] = NAN
                elif inf:
                    categories[r, column] = INF
                elif finite:
                    categories[r, column] = FINITE
                    values[r, column] = total / finite
                elif zero:
                    categories[r, column] = ZERO
        return values, categories


@dataclass
class Series:
    steps: list = field(default_factory=list)
    values: list = field(default_factory=list)

    def add(self, step: int, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.steps.append(step)
            self.values.append(float(value))


@dataclass
class RunData:
    width: int
    forward: Cells
    backward: Cells
    dead: Cells
    train: dict = field(default_factory=dict)   # "loss", "smoothed loss", train outputs -> Series
    test: dict = field(default_factory=dict)    # "test0 accuracy" ... -> Series
    lr: Series = field(default_factory=Series)
    grad_norm: Series = field(default_factory=Series)
    layer_order: list = field(default_factory=list)   # first-seen, for runs without nets.json
    last_iteration: int = -1
    passes: int = 1

    def rows(self, cells: Cells, net: Optional[NetInfo]) -> list:
        """Row keys in net order: nets.json's layer order, else the order layers first appeared."""
        order = [layer.name for layer in net.layers] if net is not None else []
        rank = {name: i for i, name in enumerate(order)}
        for name in self.layer_order:
            rank.setdefault(name, len(rank))
        first_seen = {key: i for i, key in enumerate(cells.rows)}
        return sorted(cells.rows, key=lambda key: (rank.get(key[0], len(rank)), first_seen[key]))


def column_width(iterations: int) -> int:
    return max(1, math.ceil((iterations + 1) / MAX_COLUMNS))


def collect(records: Iterable, iterations: int, rectifiers: set = frozenset()) -> RunData:
    """One pass over the records. `iterations` (verdict's iterations_run) sets the column width."""
    width = column_width(iterations)
    data = RunData(width, Cells(width), Cells(width), Cells(width, log=False))
    seen_layers: dict = {}
    for record in records:
        if isinstance(record, BlobStat):
            if record.net != TRAIN:
                continue
            data.passes = max(data.passes, record.pass_index + 1)
            if record.pass_index != 0:
                continue
            seen_layers.setdefault(record.layer, None)
            key = (record.layer, record.blob)
            data.last_iteration = max(data.last_iteration, record.iteration)
            (data.forward if record.phase == FORWARD else data.backward).add(key, record.iteration, record.mean_abs)
            if (record.phase == FORWARD and record.kind == "top" and record.layer in rectifiers
                    and record.zero_fraction is not None):
                data.dead.add(key, record.iteration, record.zero_fraction)
        elif isinstance(record, IterationEnd):
            data.last_iteration = max(data.last_iteration, record.iteration)
            data.train.setdefault("loss", Series()).add(record.iteration, record.loss)
            if record.smoothed_loss is not None and record.smoothed_loss != record.loss:
                data.train.setdefault("smoothed loss", Series()).add(record.iteration, record.smoothed_loss)
            for name, value in record.outputs.items():
                if name != "loss":
                    data.train.setdefault(name, Series()).add(record.iteration, value)
            data.lr.add(record.iteration, record.lr)
        elif isinstance(record, ParamNorms) and record.net == TRAIN:
            # With iter_size > 1 the last pass holds the accumulated gradient: it overwrites the earlier ones.
            if data.grad_norm.steps and data.grad_norm.steps[-1] == record.iteration:
                data.grad_norm.steps.pop()
                data.grad_norm.values.pop()
            data.grad_norm.add(record.iteration, record.l2_diff)
        elif isinstance(record, TestResult):
            data.last_iteration = max(data.last_iteration, record.iteration)
            for name, value in record.outputs.items():
                data.test.setdefault(f"{record.net} {name}", Series()).add(record.iteration, value)
    data.layer_order = list(seen_layers)
    return data


def marks(verdict: dict) -> list:
    """The findings to draw: (finding, is_anomaly), the anomaly first."""
    anomaly = verdict.get("anomaly")
    out = [(anomaly, True)] if isinstance(anomaly, dict) else []
    return out + [(w, False) for w in verdict.get("warnings") or [] if isinstance(w, dict)]


def heatmap_of(finding: dict) -> Optional[str]:
    """Which heatmap holds a finding's cell: forward, backward or None (other nets, net-wide norms)."""
    if finding.get("net", TRAIN) != TRAIN or finding.get("layer") == "All net params":
        return None
    return BACKWARD if finding.get("phase") == BACKWARD else FORWARD   # "update" shows in the next forward
