"""`harness report RUN`: draw a run directory as report.html (harness/report/page.py)."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import HarnessError
from ..report import page


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run directory of `harness train` or `harness parse`")


def run(args) -> int:
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise HarnessError(f"{run_dir} is not a directory: give the run directory of `harness train` or "
                           "`harness parse`")
    print(page.write(run_dir))
    return 0
