"""How the records store (harness/core/store.py) compares with one JSON line per record, and how fast
`harness parse` runs end to end, all measured in one run.

    .venv/bin/python bench/records_store.py [--lines 300000] [--fixture tests/logs/display1.log] [--rounds 3]

Writes a debug-heavy log as bench/parse_speed.py does, parses it once into records, then for each format
writes them all (flushing every 100 records, as a live run flushes per iteration) and reads them all back
as dataclasses: CPU microseconds per record, bytes per blob record, and their ratios to JSON lines.
Parquet (pyarrow) is measured where pyarrow imports: BlobStats alone, as columns, one row group per 100
records as the others flush (a live run cannot wait for more), and none of it readable before close()
writes the footer.
Then `harness parse` end to end (start-up, parser, rules, store, verdict, report.md; no report.html) as a
subprocess, --rounds times: lines/s by CPU time and by the wall clock (medians) and its peak RSS.
"""
import argparse
import resource
import shutil
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.core import store  # noqa: E402
from harness.core.records import BlobStat, read_records, to_json  # noqa: E402
from harness.log.glog import LogFolder, parse_file  # noqa: E402
from parse_speed import write_log  # noqa: E402

_FLUSH_EVERY = 100
# `harness parse` in a child that says its own peak RSS: VmHWM starts afresh at exec, while getrusage's
# maxrss keeps the forking parent's (here: every record of the log in a list).
_PARSE = ("import sys\nfrom harness.commands import cli\ncode = cli.main(sys.argv[1:])\n"
          "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], file=sys.stderr)\n"
          "sys.exit(code)")


def cpu(action) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def jsonl(records: list, folder: Path) -> tuple:
    path = folder / "records.jsonl"

    def write():
        with open(path, "w") as stream:
            for i, record in enumerate(records):
                stream.write(to_json(record) + "\n")
                if i % _FLUSH_EVERY == 0:
                    stream.flush()

    def read():
        with open(path) as stream:
            for _ in read_records(stream):
                pass
    return cpu(write), cpu(read), path.stat().st_size


def rows(records: list, folder: Path) -> tuple:
    def write():
        with store.RecordWriter(folder) as writer:
            for i, record in enumerate(records):
                writer.write(record)
                if i % _FLUSH_EVERY == 0:
                    writer.flush()

    def read():
        for _ in store.iter_run_records(folder):
            pass
    written = cpu(write)
    return written, cpu(read), sum(p.stat().st_size for p in (folder / store.DIR).iterdir())


def parquet(records: list, folder: Path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    names = [f for f in BlobStat.__dataclass_fields__ if f != "record"]
    path = folder / "blobs.parquet"

    def write():
        blobs = [r for r in records if type(r) is BlobStat]
        writer = None
        for start in range(0, len(blobs), _FLUSH_EVERY):
            chunk = blobs[start:start + _FLUSH_EVERY]
            table = pa.table({n: [getattr(r, n) for r in chunk] for n in names})
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        writer.close()

    def read():
        for batch in pq.ParquetFile(path).iter_batches(1 << 16):
            for values in zip(*(batch.column(n).to_pylist() for n in names)):
                BlobStat(*values)
    written = cpu(write)
    return written, cpu(read), path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fixture", type=Path,
                        default=Path(__file__).resolve().parent.parent / "tests/logs/display1.log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log = tmp / "debug.log"
        with open(log, "w") as stream:
            total = write_log(args.fixture, stream, args.lines)
        records = list(parse_file(str(log), LogFolder()))
        blobs = sum(type(r) is BlobStat for r in records)
        print(f"log: {total:,} lines from {args.fixture.name}; {len(records):,} records, {blobs:,} of them blob")
        results = {}
        for name, measure in (("JSON lines", jsonl), ("store", rows), ("Parquet (blobs only)", parquet)):
            folder = tmp / name.split()[0]
            folder.mkdir()
            results[name] = measure(records, folder)
            if results[name] is None:
                print(f"{name}: pyarrow is not installed")
        json_write, json_read = (seconds / len(records) * 1e6 for seconds in results["JSON lines"][:2])
        json_size = results["JSON lines"][2]
        print(f"{'format':<22}{'write us/rec':>14}{'read us/rec':>14}{'bytes/blob':>12}   ratios to JSON lines")
        for name, result in results.items():
            if result is not None:
                count = blobs if name.startswith("Parquet") else len(records)
                write, read, size = result[0] / count * 1e6, result[1] / count * 1e6, result[2] / blobs
                print(f"{name:<22}{write:>14.2f}{read:>14.2f}{size:>12.1f}   write {write / json_write:.2f}, "
                      f"read {read / json_read:.2f}, size {size / (json_size / blobs):.3f}")
        walls, cpus, peaks = [], [], []
        for _ in range(args.rounds):
            out = tmp / "parse"
            shutil.rmtree(out, ignore_errors=True)
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            child = subprocess.run([sys.executable, "-c", _PARSE, "parse", str(log), "--out", str(out), "--no-html",
                                    "--quiet"], check=False, capture_output=True, text=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            peaks.append(int(child.stderr.split()[-1]) / 1024)
            walls.append(time.perf_counter() - start)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        # CPU time too: on a shared machine the wall clock also counts other processes' turns.
        print(f"`harness parse` end to end (no report.html), {args.rounds} runs: CPU "
              f"{', '.join(f'{s:.2f}' for s in cpus)} s, wall {', '.join(f'{s:.2f}' for s in walls)} s; median "
              f"{total / statistics.median(cpus):,.0f} lines/s CPU, {total / statistics.median(walls):,.0f} lines/s "
              f"wall; peak RSS {max(peaks):.0f} MiB")

if __name__ == "__main__":
    main()
