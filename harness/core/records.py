"""The records that flow between the stages: Caffe (live or its log) -> records -> rules -> verdict -> report.

Stored in the run directory by core/store.py (docs/records.md), as JSON lines by `to_json`. A record mirrors
one line of what Caffe prints with `debug_info` on, plus what Caffe does not print but the rules need.
Both the live worker and the log parser produce these, so the rules and the report never know which.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import IO, Iterator, Optional, Union

FORWARD, BACKWARD = "forward", "backward"
# The largest float32: Caffe sums in float, so a printed asum above it reads `inf` (an overflow, not a NaN).
FLT_MAX = 3.4028234663852886e+38
TRAIN = "train"


def test_net_name(index: int) -> str:
    return f"test{index}"


# Not frozen, unlike the other records: a frozen dataclass's __init__ pays an object.__setattr__ per field,
# 1.5 us of the parser's ~2 us per debug line (a log is mostly these). Nothing assigns to a BlobStat after it
# is handed out; unsafe_hash keeps it hashable like the frozen records.
@dataclass(slots=True, unsafe_hash=True)
class BlobStat:
    """One blob after one layer, as `[Forward] Layer L, top blob B data: X` or `[Backward] ... diff: X`.

    `blob` is spelt as Caffe prints it: the blob name for top/bottom blobs; `param blob K` for parameters
    (forward lines use the param's name when it has one, backward lines always the index K).
    `mean_abs` is Caffe's float `asum / count`. The other statistics are the harness's own and are None
    for records parsed from a log.
    """
    iteration: int
    net: str               # "train", "test0", "test1", ...
    pass_index: int        # forward/backward block within the iteration (iter_size), or test batch
    phase: str             # FORWARD (top and param data) or BACKWARD (bottom and param diff)
    layer: str
    blob: str
    kind: str              # "top", "bottom" or "param"
    mean_abs: float
    count: Optional[int] = None
    nonfinite: Optional[int] = None     # elements that are NaN or +-Inf
    zero_fraction: Optional[float] = None
    max_abs: Optional[float] = None     # over finite elements
    sumsq: Optional[float] = None       # float64 sum of squares over finite elements
    overflow: bool = False              # Caffe's float asum overflowed although the true mean is finite
    printed: bool = True                # whether Caffe prints this line (False: harness-only statistic)
    record: str = field(default="blob", init=False)


@dataclass(frozen=True, slots=True)
class ParamNorms:
    """`[Backward] All net params (data, diff): L1 norm = (a, b); L2 norm = (c, d)`, once per pass."""
    iteration: int
    net: str
    pass_index: int
    l1_data: float
    l1_diff: float
    l2_data: float
    l2_diff: float
    count: Optional[int] = None         # elements in all learnable params (the harness's; None from a log)
    record: str = field(default="norms", init=False)


@dataclass(frozen=True, slots=True)
class IterationEnd:
    """What is known when an iteration's gradients are ready (before the update)."""
    iteration: int
    loss: Optional[float] = None                      # the loss of this iteration (mean over iter_size)
    smoothed_loss: Optional[float] = None             # Caffe's displayed running average
    outputs: dict = field(default_factory=dict)       # train net outputs: name -> value (lists flattened)
    lr: Optional[float] = None
    seconds: Optional[float] = None                   # wall time since the run started
    # name -> loss_weight of the outputs a log prints as losses ("(* w = x loss)"): which outputs are
    # losses when the net definition is unknown. Empty live (the net is known there).
    loss_weights: dict = field(default_factory=dict)
    display: Optional[int] = None     # a log's display interval, when it says (solver echo, display line)
    record: str = field(default="iteration", init=False)


@dataclass(frozen=True, slots=True)
class TestResult:
    """`Iteration N, Testing net (#k)` and its `Test net output #j: name = value` lines."""
    __test__ = False   # not a pytest test class, despite the name
    iteration: int
    net: str
    outputs: dict = field(default_factory=dict)
    loss_weights: dict = field(default_factory=dict)  # as IterationEnd's
    record: str = field(default="test", init=False)


@dataclass(frozen=True, slots=True)
class Event:
    """Anything else worth keeping: a snapshot, a Caffe FATAL line, a note from the harness."""
    iteration: Optional[int]
    kind: str              # "snapshot", "fatal", "ignored_source_layer", "update", "nonfinite_text", "note", ...
    text: str
    record: str = field(default="event", init=False)


@dataclass(frozen=True)
class Update:
    """What an `update` Event says: old Caffe's `[Update] Layer L, param K data: D; diff: S` (the weights and
    the step about to be applied; a shared parameter prints only its diff)."""
    layer: str
    blob: str              # "param blob K"
    data: Optional[float]
    diff: float

    def event(self, iteration: Optional[int]) -> Event:
        data = "" if self.data is None else repr(self.data)
        return Event(iteration, "update", f"{self.layer}\n{self.blob}\n{data}\n{self.diff!r}")

    @classmethod
    def of(cls, event: Event) -> "Update":
        layer, blob, data, diff = event.text.split("\n")
        return cls(layer, blob, float(data) if data else None, float(diff))


Record = Union[BlobStat, ParamNorms, IterationEnd, TestResult, Event]
_TYPES = {cls.__dataclass_fields__["record"].default: cls for cls in (BlobStat, ParamNorms, IterationEnd, TestResult, Event)}


def _json_number(value):
    # JSON has no nan/inf; keep them readable and round-trippable as strings.
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# Refuses nan and inf, so that the rare record holding one takes the road that spells them as strings.
_encode_finite = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def to_json(record: Record) -> str:
    # The fields read directly: dataclasses.asdict deep-copies every value and cost more than the rest of
    # writing a record, on the worker's hot path and in `harness parse` alike.
    fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
    try:
        return _encode_finite(fields)
    except ValueError:
        return json.dumps({k: _json_number(v) for k, v in fields.items()}, separators=(",", ":"))


def from_dict(row: dict) -> Record:
    cls = _TYPES[row["record"]]
    kwargs = {}
    for f in fields(cls):
        if f.name == "record" or f.name not in row:
            continue
        value = row[f.name]
        if isinstance(value, str) and value in ("nan", "inf", "-inf") and f.name not in ("layer", "blob", "net", "text", "kind"):
            value = float(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def read_records(stream: IO[str]) -> Iterator[Record]:
    """Records from a records.jsonl stream; a truncated or garbled last line (a crash) is skipped."""
    for line in stream:
        try:
            row = json.loads(line)
            yield from_dict(row)
        except (ValueError, KeyError, TypeError):
            continue
