"""How fast harness.log.glog parses a typical debug_info log, and in how much memory.

    .venv/bin/python bench/parse_speed.py [--lines 2000000 | --big] [--runs 3] [--fixture tests/logs/display1.log]

Writes a large log to a temporary file by repeating the training part of a real fixture with rising
iteration numbers (--big: 10M lines, about 1 GiB), parses it with parse_file (bytes in, records out, every
record consumed) --runs times, and prints lines/s by the wall clock and by CPU time for each run and their
medians. Memory: the resident set size while parsing, sampled as the records go by, and the peak.
"""
import argparse
import os
import resource
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.log.glog import LogFolder, parse_file  # noqa: E402

_ITERATION = re.compile(r"(Iteration |_iter_)(\d+)")
_BIG = 10_000_000
_SAMPLE_EVERY = 1 << 18   # records between two resident-size samples (a power of two: a cheap test)


def write_log(fixture: Path, target, lines_wanted: int) -> int:
    lines = fixture.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "Starting Optimization" in line) + 1
    head, body = lines[:start], lines[start:]
    iterations = 1 + max(int(m[2]) for line in body for m in _ITERATION.finditer(line))
    target.writelines(head)
    written, offset = len(head), 0
    while written < lines_wanted:
        target.writelines(_ITERATION.sub(lambda m: f"{m[1]}{int(m[2]) + offset}", line) for line in body)
        written += len(body)
        offset += iterations
    return written


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """The resident set size now (Linux); the peak so far elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mib()


def parse_once(path: str) -> tuple:
    """(records, unknown lines, wall s, CPU s, resident MiB samples) of one parse."""
    folder, records, samples = LogFolder(), 0, []
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in parse_file(path, folder):
        records += 1
        if not records & (_SAMPLE_EVERY - 1):
            samples.append(rss_mib())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return records, folder.unknown_lines, seconds, cpu, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--big", action="store_true", help=f"{_BIG:,} lines")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fixture", type=Path, default=Path(__file__).resolve().parent.parent / "tests/logs/display1.log")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
        total = write_log(args.fixture, log, _BIG if args.big else args.lines)
        log.flush()
        size_mib = Path(log.name).stat().st_size / 2**20
        print(f"log: {total:,} lines, {size_mib:,.0f} MiB (from {args.fixture.name})")
        before = rss_mib()
        walls, cpus, samples = [], [], []
        for run in range(1, args.runs + 1):
            records, unknown, seconds, cpu, run_samples = parse_once(log.name)
            walls.append(seconds)
            cpus.append(cpu)
            samples += run_samples
            print(f"run {run}: {records:,} records, {unknown:,} unknown lines, {seconds:.2f} s wall, {cpu:.2f} s CPU: "
                  f"{total / seconds:,.0f} lines/s wall, {total / cpu:,.0f} lines/s CPU")
    # CPU time too: on a shared machine the wall clock also counts other processes' turns.
    print(f"median of {args.runs}: {total / statistics.median(walls):,.0f} lines/s wall, "
          f"{total / statistics.median(cpus):,.0f} lines/s CPU")
    print(f"memory: resident {before:.0f} MiB before parsing; while parsing {min(samples, default=before):.0f}-"
          f"{max(samples, default=before):.0f} MiB ({len(samples)} samples, one per {_SAMPLE_EVERY:,} records); "
          f"peak {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
