"""How fast harness.glog parses a typical debug_info log, and in how much memory.

    .venv/bin/python bench/parse_speed.py [--lines 2000000] [--fixture tests/logs/display1.log]

Writes a large log to a temporary file by repeating the training part of a real fixture with rising
iteration numbers, parses it with parse_file (bytes in, records out, every record consumed), and prints
lines/s and the peak resident memory before and after parsing.
"""
import argparse
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.glog import LogFolder, parse_file  # noqa: E402

_ITERATION = re.compile(r"(Iteration |_iter_)(\d+)")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--fixture", type=Path, default=Path(__file__).resolve().parent.parent / "tests/logs/display1.log")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
        total = write_log(args.fixture, log, args.lines)
        log.flush()
        size_mib = Path(log.name).stat().st_size / 2**20
        before = peak_rss_mib()
        folder = LogFolder()
        start, cpu_start = time.perf_counter(), time.process_time()
        records = sum(1 for _ in parse_file(log.name, folder))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU time too: on a shared machine the wall clock also counts other processes' turns.
    print(f"{total:,} lines ({size_mib:.0f} MiB) -> {records:,} records in {seconds:.2f} s wall, {cpu:.2f} s CPU: "
          f"{total / seconds:,.0f} lines/s wall, {total / cpu:,.0f} lines/s CPU; "
          f"unknown lines {folder.unknown_lines:,}")
    print(f"peak RSS {before:.0f} MiB before parsing, {peak_rss_mib():.0f} MiB after")


if __name__ == "__main__":
    main()
