"""Runs the worker and watches it: its glog output goes verbatim to caffe.log and through the log
parser into the cross-check; its records go to the records store (core/store.py, flushed per iteration)
and the cross-check; its messages say how it ended. A worker that aborts (a Caffe CHECK) or is killed only
ends the run: everything it had sent is kept.
"""
from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..core import store
from ..core.records import Event, IterationEnd, from_dict
from ..log import glog
from ..log.crosscheck import CrossCheck
from ..rules.findings import Finding

# What killed the worker: glog's FATAL line (the log parser's `fatal` events), else Python's last traceback
# line, said with the step the worker was in (its `step` messages). Caffe logs each layer as it builds it;
# a CHECK during set-up belongs to the last one named.
_SETTING_UP = re.compile(r"\] (?:Creating Layer|Setting up) (?P<layer>\S+)")
_PY_ERROR = re.compile(r"^(?P<text>(?:[A-Za-z_][\w.]*(?:Error|Exception)|KeyboardInterrupt)\b.*)")


@dataclass
class Outcome:
    status: str = "error"                 # ok | halted | interrupted | error
    iterations_run: int = 0
    findings: list = field(default_factory=list)   # Findings sent by the worker
    crosscheck: Optional[dict] = None
    caffe_error: Optional[str] = None
    snapshot: list = field(default_factory=list)
    exit_signal: Optional[str] = None
    dump_rows: list = field(default_factory=list)   # summary of a replay's dump, one row per array
    returncode: Optional[int] = None
    step: dict = field(default_factory=lambda: {"step": "setup"})   # what the worker was doing last


class _Lines:
    """Splits a byte stream into text lines, keeping an unfinished tail for the next chunk."""

    def __init__(self):
        self._tail = b""

    def feed(self, chunk: bytes) -> list:
        data = self._tail + chunk
        *lines, self._tail = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def close(self) -> list:
        tail, self._tail = self._tail, b""
        return [tail.decode("utf-8", "replace")] if tail else []


def _cause(fatal_lines: list, python_errors: list, returncode: int, where: str) -> str:
    """What ended the worker, in Caffe's own words: its first FATAL line, else Python's last error, each
    after the step that raised it; else the signal."""
    if fatal_lines or python_errors:
        return f"{where}: {fatal_lines[0] if fatal_lines else python_errors[-1]}"
    if returncode and returncode < 0:
        return f"the worker was killed by {signal.Signals(-returncode).name}"
    return f"the worker exited with status {returncode} (see caffe.log)"


def _where(step: dict, layer: Optional[str], iterations_run: int) -> str:
    """The worker's step, as the start of a sentence: the worker announces each step before it takes it,
    so the last one announced is the one that failed."""
    kind = step.get("step")
    if kind == "weights":
        return f"while copying weights from {step['file']} (after the nets were set up)"
    if kind == "snapshot":
        return f"while restoring the solver state from {step['file']}"
    if kind == "training":
        return f"during iteration {iterations_run}"
    if kind == "hooks":
        return "while the harness prepared its watch of the nets"
    return f"while setting up layer '{layer}'" if layer else "while setting up the nets"


class _Sink:
    """A file of the run. The first failed write (disk full, file-size limit) is reported once and
    stops the run, so that what was written before stays whole."""

    def __init__(self, path: Path, on_failure: Callable[[str], None], file=None):
        self.path, self.on_failure, self.failed = path, on_failure, False
        self.file = file if file is not None else open(path, "w", encoding="utf-8", errors="replace")

    def _guard(self, action, *args) -> None:
        if self.failed:
            return
        try:
            action(*args)
        except OSError as error:
            self.failed = True
            self.on_failure(f"could not write {self.path} ({error.strerror}); training was stopped so that "
                            "the records written so far stay intact. Free disk space or raise the file-size limit.")

    def write(self, item) -> None:
        self._guard(self.file.write, item)

    def flush(self) -> None:
        self._guard(self.file.flush)

    def close(self) -> None:
        self._guard(self.file.close)


def run(spec: dict, run_dir: Path, python_paths: list,
        on_iteration: Callable[[IterationEnd, CrossCheck], None], interactive: bool = False) -> Outcome:
    """Start `python -m harness.run.worker` on spec and follow it to its end.

    `interactive`: the worker may open a prompt on our terminal, so it gets copies of our stdin/stdout/
    stderr and stays in our session (a process outside the terminal's session cannot read from it)."""
    record_read, record_write = os.pipe()
    terminal_fds = [os.dup(fd) for fd in (0, 1, 2)] if interactive else []
    spec = dict(spec, record_fd=record_write, terminal_fds=terminal_fds)
    spec_path = run_dir / "worker.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    env = dict(os.environ, GLOG_logtostderr="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(python_paths + [p for p in [env.get("PYTHONPATH")] if p])
    worker = subprocess.Popen([sys.executable, "-m", "harness.run.worker", str(spec_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              pass_fds=(record_write, *terminal_fds), env=env, start_new_session=not interactive)
    for fd in (record_write, *terminal_fds):
        os.close(fd)
    (run_dir / "worker.pid").write_text(f"{worker.pid}\n")

    outcome = Outcome()
    check = CrossCheck(display=spec["display"])
    folder = glog.LogFolder()
    fatal_lines, python_errors, setting_up = [], [], []

    def forward_signal(signum, frame):
        # The worker stops at the next iteration boundary and reports; we keep reading until it has.
        outcome.exit_signal = signal.Signals(signum).name
        if worker.poll() is None:
            worker.send_signal(signum)
    previous = {s: signal.signal(s, forward_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def storage_failed(text: str) -> None:
        if outcome.caffe_error is None:
            outcome.caffe_error = text
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)

    log_file = _Sink(run_dir / "caffe.log", storage_failed)
    records_file = _Sink(run_dir / store.DIR, storage_failed, store.RecordWriter(run_dir))
    log_lines, record_lines = _Lines(), _Lines()

    def on_log_record(record) -> None:
        if isinstance(record, Event) and record.kind == "fatal":
            fatal_lines.append(record.text)
        check.add_log(record)

    def on_log_line(line: str) -> None:
        log_file.write(line + "\n")
        layer = _SETTING_UP.search(line)
        if layer:
            setting_up[:] = [layer.group("layer")]
        elif _PY_ERROR.match(line):
            python_errors.append(line)
        for record in folder.feed(line):
            on_log_record(record)

    def on_record_line(line: str) -> None:
        try:
            row = json.loads(line)
        except ValueError:
            return   # the unfinished last line of a worker that died mid-write
        if "control" in row:
            handle_control(row)
            return
        record = from_dict(row)
        records_file.write(record)
        check.add_harness(record)
        if isinstance(record, IterationEnd):
            records_file.flush()
            log_file.flush()
            outcome.iterations_run = record.iteration + 1
            on_iteration(record, check)

    def handle_control(row: dict) -> None:
        kind = row.pop("control")
        if kind == "finding":
            outcome.findings.append(Finding(**dict(row, suggestions=tuple(row["suggestions"]))))
        elif kind == "dump":
            outcome.dump_rows = row["rows"]
        elif kind == "error":
            outcome.caffe_error = row["text"]
        elif kind == "step":
            outcome.step = row
        elif kind == "started":
            outcome.step = {"step": "training"}
            check.statistics = row.get("statistics", check.statistics)
        elif kind == "end":
            outcome.status = row["status"]
            outcome.iterations_run = row["iterations_run"]
            outcome.snapshot = row.get("snapshot") or []

    selector = selectors.DefaultSelector()
    selector.register(worker.stdout, selectors.EVENT_READ, (log_lines, on_log_line))
    record_pipe = os.fdopen(record_read, "rb", buffering=0)
    selector.register(record_pipe, selectors.EVENT_READ, (record_lines, on_record_line))
    try:
        while selector.get_map():
            for key, _ in selector.select():
                splitter, handle = key.data
                chunk = os.read(key.fileobj.fileno(), 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    lines = splitter.close()
                else:
                    lines = splitter.feed(chunk)
                for line in lines:
                    handle(line)
        outcome.returncode = worker.wait()
        for record in folder.close():
            on_log_record(record)
    finally:
        if worker.poll() is None:   # we failed while it runs: it must not train on unwatched
            worker.kill()
            worker.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
        log_file.close()
        records_file.close()
        record_pipe.close()

    if outcome.returncode != 0 or outcome.status == "error" or outcome.caffe_error:
        outcome.status = "error"
        outcome.caffe_error = outcome.caffe_error or _cause(
            fatal_lines, python_errors, outcome.returncode,
            _where(outcome.step, setting_up[-1] if setting_up else None, outcome.iterations_run))
    if outcome.exit_signal and outcome.status == "ok":
        outcome.status = "interrupted"
    outcome.crosscheck = check.summary()
    return outcome
