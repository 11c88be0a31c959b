"""The records store of a run directory (docs/records.md): where `harness train` and `harness parse` write
their records, and the one way to read them back (`iter_run_records`).

A run's records are nearly all BlobStats, one per blob per layer per iteration; as JSON lines they cost
~250 bytes and ~10 us each to write. Here each one is a fixed 28-byte row in `records/blobs.bin`, its names
(net, phase, layer, blob, kind, count) said once in `records/series.jsonl`; the few other records
(norms, iterations, tests, events) stay JSON lines in `records/other.jsonl`, each with `at`, the number of
blob rows written before it, which puts them back in order. A BlobStat a row does not hold to the last
bit is written there too (rare: non-finite elements, a sum of squares, a max |x| that is no float32, a
count over 2**32), so every record reads back equal to the one written.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

from .records import BlobStat, Record, from_dict, read_records, to_json

DIR = "records"
BLOBS, SERIES, OTHER = "blobs.bin", "series.jsonl", "other.jsonl"
LEGACY = "records.jsonl"   # run directories written before the store; also `harness export --jsonl`

# A row, as the writer packs it with struct (`harness train`'s own process does without numpy) and as the
# numpy dtype `ROW` reads it back: the same 28 bytes.
_FIELDS = [("iteration", "<i4"), ("series", "<u4"), ("pass_index", "<u2"), ("flags", "u1"), ("unused", "u1"),
           ("mean_abs", "<f8"), ("nonzero", "<u4"), ("max_abs", "<f4")]
_PACK = struct.Struct("<iIHBBdIf")
_FLOAT32 = struct.Struct("<f")
_OVERFLOW, _PRINTED, _HARNESS = 1, 2, 4   # flags; _HARNESS: the harness's own statistics are in the row
_U2, _U4 = 1 << 16, 1 << 32
_CHUNK = 1 << 16   # rows read at a time: reading a run of any length holds one chunk
_BUFFERED = 1 << 13   # rows written at a time


def zero_fraction(nonzero: int, count: int) -> float:
    # The expression of run/stats.py, so the float comes back to the last bit.
    return 1.0 - nonzero / count if count else 0.0


def __getattr__(name: str):
    # ROW, the numpy dtype of a row: numpy is imported where records are read, not where they are written.
    if name == "ROW":
        import numpy
        return numpy.dtype(_FIELDS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _float32(value: float) -> float:
    try:
        return _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    except OverflowError:   # beyond float32's range: no float32 holds it
        return math.inf


class RecordWriter:
    """Appends records to run_dir/records; `flush()` (once per iteration) makes what was written readable,
    so a crash keeps every completed iteration. Raises OSError as files do (disk full, file-size limit)."""

    def __init__(self, run_dir: Path):
        folder = Path(run_dir) / DIR
        folder.mkdir(parents=True, exist_ok=True)
        self._blobs = open(folder / BLOBS, "wb")
        self._series_file = open(folder / SERIES, "w", encoding="utf-8")
        self._other = open(folder / OTHER, "w", encoding="utf-8")
        self._series: dict = {}
        self._rows: list = []
        self._new_series: list = []
        self._lines: list = []
        self._written = 0   # blob rows before the buffered ones

    def write(self, record: Record) -> None:
        if type(record) is BlobStat:
            row = self._row(record)
            if row is not None:
                self._rows.append(row)
                if len(self._rows) >= _BUFFERED:   # a long parse holds a few thousand rows, not the log
                    self.flush()
                return
        self._lines.append(f'{{"at":{self._written + len(self._rows)},{to_json(record)[1:]}')

    def _row(self, s: BlobStat):
        """The row of s, or None when a row cannot hold it exactly."""
        key = (s.net, s.phase, s.layer, s.blob, s.kind, s.count)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = len(self._series)
            self._new_series.append(json.dumps(key, separators=(",", ":")))
        if (s.sumsq is not None or not isinstance(s.mean_abs, float) or type(s.iteration) is not int
                or type(s.pass_index) is not int or not 0 <= s.pass_index < _U2
                or not -(1 << 31) <= s.iteration < (1 << 31)):
            return None
        flags = s.overflow | (s.printed << 1)
        if s.count is None:   # a log's record: Caffe's mean |x| alone
            if s.nonfinite is None and s.zero_fraction is None and s.max_abs is None:
                return (s.iteration, series, s.pass_index, flags, 0, s.mean_abs, 0, 0.0)
            return None
        count = s.count
        if (s.nonfinite != 0 or type(count) is not int or not 0 <= count < _U4 or not isinstance(s.max_abs, float)
                or not isinstance(s.zero_fraction, float) or not 0.0 <= s.zero_fraction <= 1.0):
            return None
        nonzero = round((1.0 - s.zero_fraction) * count)
        if zero_fraction(nonzero, count) != s.zero_fraction or not 0 <= nonzero <= count \
                or _float32(s.max_abs) != s.max_abs:
            return None
        return (s.iteration, series, s.pass_index, flags | _HARNESS, 0, s.mean_abs, nonzero, s.max_abs)

    def flush(self) -> None:
        # Names first, then rows, then the records placed after them: whatever a crash cuts off, what is
        # on disk reads back in order.
        if self._new_series:
            self._series_file.write("\n".join(self._new_series) + "\n")
            self._series_file.flush()
            self._new_series.clear()
        if self._rows:
            self._blobs.write(b"".join(_PACK.pack(*row) for row in self._rows))
            self._written += len(self._rows)
            self._rows.clear()
        self._blobs.flush()
        if self._lines:
            self._other.write("\n".join(self._lines) + "\n")
            self._lines.clear()
        self._other.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for stream in (self._blobs, self._series_file, self._other):
                stream.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exists(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / DIR / BLOBS).exists() or (run_dir / LEGACY).exists()


def iter_run_records(run_dir: Path, blobs: Optional[Callable[..., bool]] = None) -> Iterator[Record]:
    """The records of a run directory in the order they were written, as core.records dataclasses; a torn
    last row or line (a crash while writing) is skipped. Reads a run directory from before the store
    (records.jsonl) too. Memory stays flat however long the run.

    `blobs(net, phase, layer, blob, kind, count)`: which BlobStats the caller wants; the rows of the others
    are skipped unread (a report that shows a few layers need not make every record of a long run)."""
    run_dir = Path(run_dir)
    folder = run_dir / DIR
    if not (folder / BLOBS).exists():
        if (run_dir / LEGACY).exists():
            with open(run_dir / LEGACY, encoding="utf-8") as stream:
                yield from (r for r in read_records(stream) if blobs is None or type(r) is not BlobStat
                            or blobs(r.net, r.phase, r.layer, r.blob, r.kind, r.count))
        return
    series = [tuple(key) for key in _json_lines(folder / SERIES)]
    with open(folder / BLOBS, "rb") as rows_file, open(folder / OTHER, encoding="utf-8") as other:
        rows = _blob_stats(rows_file, series, None if blobs is None else [blobs(*key) for key in series])
        position, stat = next(rows, (None, None))
        for row in _json_lines_from(other):
            at = row.pop("at", 0)
            while stat is not None and position < at:
                yield stat
                position, stat = next(rows, (None, None))
            try:
                yield from_dict(row)
            except (KeyError, TypeError, ValueError):
                continue
        while stat is not None:
            yield stat
            position, stat = next(rows, (None, None))


def _json_lines(path: Path) -> Iterator:
    with open(path, encoding="utf-8") as stream:
        yield from _json_lines_from(stream)


def _json_lines_from(stream: IO[str]) -> Iterator:
    for line in stream:
        try:
            yield json.loads(line)
        except ValueError:
            continue   # the torn last line of a crash


def _blob_stats(stream: IO[bytes], series: list, wanted: Optional[list]) -> Iterator[tuple]:
    """(position in the file, BlobStat) of each whole row whose series is known and wanted."""
    import numpy as np
    row_dtype = np.dtype(_FIELDS)
    known = len(series)
    keep = None if wanted is None else np.array(wanted + [False], dtype=bool)   # [known]: a cut-off name
    start = 0
    while True:
        data = stream.read(_CHUNK * row_dtype.itemsize)
        whole = len(data) // row_dtype.itemsize * row_dtype.itemsize
        if not whole:
            return
        rows = np.frombuffer(data[:whole], dtype=row_dtype)
        positions = np.arange(start, start + len(rows))
        start += len(rows)
        if keep is not None:
            chosen = keep[np.minimum(rows["series"], known)]
            rows, positions = rows[chosen], positions[chosen]
        columns = [rows[name].tolist() for name in ("iteration", "series", "pass_index", "flags", "mean_abs",
                                                     "nonzero", "max_abs")]
        for position, iteration, index, pass_index, flags, mean_abs, nonzero, max_abs in zip(positions.tolist(),
                                                                                             *columns):
            if index >= known:
                return   # rows whose names a crash cut off
            net, phase, layer, blob, kind, count = series[index]
            if flags & _HARNESS:
                yield position, BlobStat(iteration, net, pass_index, phase, layer, blob, kind, mean_abs, count, 0,
                                         zero_fraction(nonzero, count), max_abs, None, bool(flags & _OVERFLOW),
                                         bool(flags & _PRINTED))
            else:
                yield position, BlobStat(iteration, net, pass_index, phase, layer, blob, kind, mean_abs, count,
                                         None, None, None, None, bool(flags & _OVERFLOW), bool(flags & _PRINTED))
        if whole < len(data):
            return   # a torn last row
