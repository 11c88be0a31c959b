"""`harness train` in a subprocess, as a user runs it, and what it left loaded as typed objects: the verdict
with its findings, and the records. The `harness_run` fixture and the live run of a net folder both train here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Optional

from ..core.errors import HarnessError
from ..core.store import iter_run_records
from ..rules.findings import Finding

# The variables OpenBLAS, OpenMP and MKL read for their thread count.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(parallel_runs: int) -> int:
    """This machine's cores shared out among runs that go at once: each BLAS gets its own slice instead of
    every run starting one thread per core and all of them fighting over the same cores."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, parallel_runs))


def blas_env(threads: int) -> dict:
    """The environment of a Caffe run with its BLAS pinned to `threads` threads."""
    return dict(os.environ, **{name: str(threads) for name in BLAS_THREAD_VARIABLES})


def _number(value):
    return float(value) if value in ("nan", "inf", "-inf") else value


def _finding(entry: dict) -> Finding:
    known = {f.name for f in fields(Finding)}
    values = {key: value for key, value in entry.items() if key in known}
    return Finding(**{**values, "value": _number(values.get("value")),
                      "suggestions": tuple(values.get("suggestions", ()))})


@dataclass(frozen=True)
class Verdict:
    """verdict.json (docs/verdict.md) with its anomaly and warnings as rules.findings.Finding."""
    status: str
    iterations_run: int
    anomaly: Optional[Finding]
    warnings: tuple
    crosscheck: dict
    caffe_error: Optional[str]
    data: dict = field(repr=False, compare=False)    # the file as written, extras included

    @classmethod
    def load(cls, path: Path) -> "Verdict":
        data = json.loads(Path(path).read_text())
        return cls(status=data["status"], iterations_run=data["iterations_run"],
                   anomaly=_finding(data["anomaly"]) if data.get("anomaly") else None,
                   warnings=tuple(_finding(w) for w in data.get("warnings") or ()),
                   crosscheck=data.get("crosscheck") or {}, caffe_error=data.get("caffe_error"), data=data)


@dataclass
class HarnessRun:
    """One finished `harness train`: its run directory, exit code and verdict; the records are read on demand."""
    run_dir: Path
    exit_code: int
    verdict: Verdict

    @property
    def status(self) -> str:
        return self.verdict.status

    @property
    def anomaly(self) -> Optional[Finding]:
        return self.verdict.anomaly

    @property
    def warnings(self) -> tuple:
        return self.verdict.warnings

    @cached_property
    def records(self) -> list:
        """The run's records as core.records dataclasses (docs/records.md)."""
        return list(iter_run_records(self.run_dir))

    @property
    def log(self) -> Path:
        return self.run_dir / "caffe.log"


def cli_args(options: dict) -> list:
    """`harness train` options from keyword arguments: max_iter=50 -> --max-iter 50, strict=True -> --strict,
    set={"dead.policy": "warn"} -> --set dead.policy=warn; False or None leaves an option out, a list repeats it."""
    args = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is None or value is False:
            continue
        elif isinstance(value, dict):
            args += [part for key, item in value.items() for part in (flag, f"{key}={item}")]
        elif isinstance(value, (list, tuple)):
            args += [part for item in value for part in (flag, str(item))]
        else:
            args += [flag, str(value)]
    return args


def train(solver: Path, run_dir: Path, args: list, cwd: Path, env: Optional[dict] = None,
          timeout: Optional[float] = None) -> HarnessRun:
    """`harness train SOLVER --run-dir RUN_DIR ARGS` in `cwd` (where relative paths in ARGS start). A run that
    leaves no verdict (bad input) is a HarnessError with the end of what the command printed."""
    trained = subprocess.run([sys.executable, "-m", "harness", "train", str(solver), "--run-dir", str(run_dir), *args],
                             cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    verdict_path = Path(run_dir) / "verdict.json"
    if not verdict_path.is_file():
        raise HarnessError(f"harness train exited {trained.returncode} without a verdict.json: {tail(trained.stderr)}")
    return HarnessRun(Path(run_dir), trained.returncode, Verdict.load(verdict_path))


def draw_report(run_dir: Path, timeout: Optional[float] = None) -> str:
    """`harness report RUN_DIR`: report.html's path, or why it could not be drawn."""
    try:
        drawn = subprocess.run([sys.executable, "-m", "harness", "report", str(run_dir)], capture_output=True,
                               text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"report.html not drawn: `harness report {run_dir}` timed out"
    if drawn.returncode != 0:
        return f"report.html not drawn: {tail(drawn.stderr)}"
    return drawn.stdout.strip()


def tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"
