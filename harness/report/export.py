"""A run's records as CSV tables, one per record kind, TensorBoard event files, or JSON lines.

Each streams the records once. TensorBoard gets scalars (loss, outputs, lr, test outputs, parameter
norms, per-blob mean |data| / |diff|, rectifiers' share of zeros) and, per iteration, histograms over the
blobs of log10 mean |x| — the records hold one statistic per blob, not the elements, so these are the
only histograms they allow.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import sys
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import Iterable, Iterator

from ..core.records import BACKWARD, FORWARD, TRAIN, BlobStat, Event, IterationEnd, ParamNorms, TestResult, to_json

CSV_TABLES = {BlobStat: "blobs.csv", ParamNorms: "norms.csv", IterationEnd: "iterations.csv",
              TestResult: "tests.csv", Event: "events.csv"}
HISTOGRAMS = {FORWARD: "histograms/forward_log10_mean_abs_data", BACKWARD: "histograms/backward_log10_mean_abs_diff"}


# ---------------------------------------------------------------- CSV

def _cell(value):
    return "" if value is None else value   # csv writes floats as repr: nan, inf and -inf stay readable


def _columns(kind) -> list:
    # outputs become columns of their own; loss_weights only says which of them are losses
    return [f.name for f in fields(kind) if f.name not in ("record", "outputs", "loss_weights")]


def write_csv(records: Iterable, out_dir: Path) -> list:
    """One table per record kind. Blob, norm and event rows stream straight to disk; iteration and test rows
    (one per iteration) are held until the end, because their output columns are known only then."""
    out_dir.mkdir(parents=True, exist_ok=True)
    held = {IterationEnd: [], TestResult: []}
    with ExitStack() as stack:
        streamed = {}
        for kind in (BlobStat, ParamNorms, Event):
            stream = stack.enter_context(open(out_dir / CSV_TABLES[kind], "w", newline="", encoding="utf-8"))
            streamed[kind] = csv.writer(stream)
            streamed[kind].writerow(_columns(kind))
        for record in records:
            kind = type(record)
            if kind in held:
                held[kind].append(record)
            else:
                streamed[kind].writerow([_cell(getattr(record, name)) for name in _columns(kind)])
    for kind, rows in held.items():
        outputs = list(dict.fromkeys(name for row in rows for name in row.outputs))
        with open(out_dir / CSV_TABLES[kind], "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(_columns(kind) + [f"output:{name}" for name in outputs])
            for row in rows:
                writer.writerow([_cell(getattr(row, name)) for name in _columns(kind)]
                                + [_cell(row.outputs.get(name)) for name in outputs])
    return [out_dir / name for name in CSV_TABLES.values()]


# ---------------------------------------------------------------- JSON lines

def write_jsonl(records: Iterable, path) -> "Path | None":
    """records.jsonl as run directories held it before the records store (docs/records.md): one JSON
    object per record. path None: standard output."""
    if path is None:
        try:
            sys.stdout.writelines(to_json(record) + "\n" for record in records)
            sys.stdout.flush()
        except BrokenPipeError:   # the reader has had enough (`| head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        stream.writelines(to_json(record) + "\n" for record in records)
    return path


# ---------------------------------------------------------------- TensorBoard

def points(records: Iterable, rectifiers: set = frozenset()) -> Iterator:
    """(kind, tag, step, value) for every point: kind "scalar" with a float, or "histogram" with a list.

    Per-blob points cover the train net's first pass of each iteration, as the HTML heatmaps do.
    A histogram is emitted once an iteration's blob statistics are complete (a later iteration appears).
    """
    pending: dict = {}   # iteration -> {phase: [log10 mean_abs]}

    def flush(before: int) -> Iterator:
        for iteration in sorted(i for i in pending if i < before):
            for phase, values in pending.pop(iteration).items():
                if values:
                    yield "histogram", HISTOGRAMS[phase], iteration, values

    for record in records:
        if isinstance(record, BlobStat):
            if record.net != TRAIN or record.pass_index != 0:
                continue
            yield from flush(record.iteration)
            yield "scalar", f"{record.phase}/{record.layer}/{record.blob}", record.iteration, record.mean_abs
            if math.isfinite(record.mean_abs) and record.mean_abs > 0:
                pending.setdefault(record.iteration, {}).setdefault(record.phase, []).append(
                    math.log10(record.mean_abs))
            if record.layer in rectifiers and record.kind == "top" and record.zero_fraction is not None:
                yield "scalar", f"zero_fraction/{record.layer}/{record.blob}", record.iteration, record.zero_fraction
        elif isinstance(record, IterationEnd):
            for name, value in (("train/loss", record.loss), ("train/smoothed_loss", record.smoothed_loss),
                                ("lr", record.lr)):
                if value is not None:
                    yield "scalar", name, record.iteration, value
            for name, value in record.outputs.items():
                if isinstance(value, (int, float)) and name != "loss":
                    yield "scalar", f"train/{name}", record.iteration, value
        elif isinstance(record, ParamNorms) and record.net == TRAIN:
            for name in ("l1_data", "l1_diff", "l2_data", "l2_diff"):
                yield "scalar", f"norms/{name}", record.iteration, getattr(record, name)
        elif isinstance(record, TestResult):
            for name, value in record.outputs.items():
                if isinstance(value, (int, float)):
                    yield "scalar", f"{record.net}/{name}", record.iteration, value
    yield from flush(math.inf)


def write_tensorboard(records: Iterable, out_dir: Path, rectifiers: set = frozenset()) -> Path:
    import numpy as np
    from tensorboardX import SummaryWriter
    # NaN/Inf scalars are what a failing run is about: written on purpose, not worth a warning each.
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(logdir=str(out_dir))
    try:
        for kind, tag, step, value in points(records, rectifiers):
            if kind == "scalar":
                writer.add_scalar(tag, float(value), step)
            else:
                writer.add_histogram(tag, np.asarray(value), step)
    finally:
        writer.close()
    return out_dir
