"""`harness parse LOG`: the same rules, verdict and report as a live run, from an existing Caffe log."""
from __future__ import annotations

import csv
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from google.protobuf import text_format

from ..core import netinfo, rundir, store
from ..core.caffe_proto import caffe_pb2
from ..core.errors import HarnessError
from ..core.records import BlobStat, Event, IterationEnd, TestResult
from ..log import glog
from ..rules import config as harness_config
from ..rules import verdict
from ..rules.findings import HALT, WARN
from ..rules.engine import RuleEngine
from ..run import caffe_dir, solver as solver_loader
from ..report import page, text

LOG, STDIN = "log", "-"
NO_NET_ECHO = ("the log holds no echo of the net definition, so lr_mult, loss weights, layer types and the number "
               "of classes (chance level) are unknown: paste the log from its start (Caffe echoes the net there) or "
               "give the net prototxt")
# Below this share of its non-blank lines recognised as Caffe's, a log is said to be mostly something else.
_MOSTLY_UNDERSTOOD = 0.5
_QUOTED = 60     # characters of a line a message quotes
_LAYER_START = re.compile(r"^layer \{", re.M)   # Caffe echoes each layer from column 0


def add_arguments(parser) -> None:
    parser.add_argument("log", help="a Caffe log (glog format, any Caffe since 2014; pasted excerpts, Markdown and "
                                    "e-mail quoting work too; gzip or not); - reads standard input")
    parser.add_argument("--out", help="directory for records, verdict and report (default runs/<UTC time>-<log name>)")
    parser.add_argument("--csv", action="store_true",
                        help="also write <log>.train and <log>.test tables in the columns of Caffe's parse_log.py")
    parser.add_argument("--config", help="YAML file with rule thresholds and policies")
    parser.add_argument("--set", action="append", default=[], metavar="RULE.KEY=VALUE", help="override one setting")
    parser.add_argument("--caffe", metavar="DIR",
                        help="read the echoed net and solver with the caffe.proto of the Caffe build in DIR (a fork's "
                             f"own layer parameters; also ${caffe_dir.ENV})")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--no-html", action="store_true", help="skip report.html (pictures take a few seconds)")


def _merge(text: str, message):
    # Forks add fields (SSD's multibox_loss_param, NVCaffe's solver settings): skipped, the rest is read.
    return text_format.Merge(text, message, allow_unknown_field=True)


def _net_from_echo(text: str):
    """The echoed net; when an excerpt cut the echo apart, the layers that are whole (None: not one is)."""
    try:
        return netinfo.from_net_parameter(_merge(text, caffe_pb2().NetParameter()))
    except text_format.ParseError:
        pass
    net = caffe_pb2().NetParameter()
    starts = [m.start() for m in _LAYER_START.finditer(text)]
    for start, end in zip(starts, starts[1:] + [len(text)]):
        chunk = text[start:end]
        if chunk.count("{") != chunk.count("}"):
            continue   # a layer the cut went through
        try:
            _merge(chunk, net)
        except text_format.ParseError:
            continue
    return netinfo.from_net_parameter(net) if net.layer else None


def _solver_from_echo(text: str):
    try:
        return solver_loader.info_from_param(_merge(text, caffe_pb2().SolverParameter()))
    except text_format.ParseError:
        return None


class _Tables:
    """The train/test tables of Caffe's tools/extra/parse_log.py (NumIters, Seconds, LearningRate, then the
    outputs), written row by row as the log streams by: memory stays flat however long the log."""

    def __init__(self, stem: Path):
        self.paths = {".train": stem.with_name(stem.name + ".train"), ".test": stem.with_name(stem.name + ".test")}
        self._files, self._writers = {}, {}
        self._lr = None

    def add(self, record) -> None:
        if isinstance(record, IterationEnd) and record.outputs:
            self._lr = record.lr
            self._write(".train", {"NumIters": record.iteration, "Seconds": record.seconds,
                                   "LearningRate": record.lr, **_flat(record.outputs)})
        elif isinstance(record, TestResult):
            self._write(".test", {"NumIters": record.iteration, "Seconds": None, "LearningRate": self._lr,
                                  **_flat(record.outputs)})

    def _write(self, suffix: str, row: dict) -> None:
        if suffix not in self._writers:
            # A net's outputs are fixed, so the first row names the columns.
            self._files[suffix] = stream = open(self.paths[suffix], "w", newline="")
            self._writers[suffix] = csv.DictWriter(stream, fieldnames=list(row), restval="", extrasaction="ignore")
            self._writers[suffix].writeheader()
        self._writers[suffix].writerow({k: ("" if v is None else v) for k, v in row.items()})

    def close(self) -> list:
        for suffix, path in self.paths.items():
            if suffix not in self._files:   # no such rows in the log: the header alone, as parse_log.py does
                path.write_text("NumIters,Seconds,LearningRate\n")
        for stream in self._files.values():
            stream.close()
        return list(self.paths.values())


def _flat(outputs: dict) -> dict:
    flat = {}
    for name, value in outputs.items():
        if isinstance(value, list):
            flat.update({f"{name}#{k}": v for k, v in enumerate(value)})
        else:
            flat[name] = value
    return flat


def _open_log(name: str):
    """(byte stream, the name reports use, a stem for the run directory) of the log, or standard input."""
    if name == STDIN:
        return sys.stdin.buffer, "<stdin>", "stdin"
    path = Path(name)
    if not path.is_file():
        raise HarnessError(f"{path}: no such log file.")
    try:
        stream = path.open("rb")
    except OSError as error:
        raise HarnessError(f"{path}: cannot be read ({error.strerror}).") from None
    return stream, str(path.resolve()), path.name.removesuffix(".gz")


def run(args) -> int:
    caffe_dir.use(args.caffe)
    config = harness_config.load(args.config, harness_config.overrides_from_cli(args.set))
    stream, shown, name = _open_log(args.log)
    with stream:
        out = rundir.make(args.out, f"parse-{Path(name).stem}")
        result, nets, solver, tables = _parse(stream, shown, name, out, config, args.csv)
    text.write(out, result, None, nets, solver)
    if not args.no_html:
        page.write_or_warn(out, args.quiet)
    if tables is not None:
        for written in tables.close():
            if not args.quiet:
                print(f"wrote {written}", file=sys.stderr)
    if not args.quiet:
        print(text.terminal_summary(result), file=sys.stderr)
        print(f"records, verdict and report: {out}", file=sys.stderr)
    return verdict.exit_code(result)


def _parse(stream, shown: str, name: str, out: Path, config, csv_tables: bool) -> tuple:
    """Parse the log into out/records (the store) and out/verdict.json: (verdict, nets, solver, CSV tables or None)."""
    nets, solver, judge = {}, None, None
    fatal, early_events = None, []
    tables = _Tables(out / name) if csv_tables else None
    folder = glog.LogFolder()
    seen = _Seen()
    with store.RecordWriter(out) as records_file:
        for record in glog.parse_stream(stream, folder):
            if isinstance(record, Event):
                if record.kind == "net_parameter" and judge is None:
                    name, body = glog.split_net(record.text)
                    info = _net_from_echo(body)
                    if info is not None and name != "unknown":
                        nets[name] = info
                elif record.kind == "solver_parameter" and solver is None:
                    solver = _solver_from_echo(record.text)
                elif record.kind == "fatal" and fatal is None:
                    fatal = record.text
            if judge is None:
                if isinstance(record, Event):
                    early_events.append(record)   # set-up lines: the rules see them once the nets are known
                else:
                    judge = _Judge(config, nets, solver, early_events)
            records_file.write(record)
            seen.add(record)
            if tables is not None:
                tables.add(record)
            if judge is not None:
                judge.feed(record)
    understood = _understood(folder)
    if not understood["caffe_lines"]:
        _discard(out, tables)
        raise HarnessError(_not_a_log(shown, folder))
    findings = judge.finish() if judge else []
    halting = [f for f in findings if f.severity == HALT]
    status = "error" if fatal else ("halted" if halting else "ok")
    limits = _limits(nets, seen, understood, halting[0] if halting else None)
    if judge is not None and judge.restarts:
        limits.append(f"the log starts over {len(judge.restarts)} time(s) (iteration {judge.restarts[-1][1]} after "
                      f"{judge.restarts[-1][0]}: another run appended, or a line pasted above the log): the verdict "
                      f"judges the last run; what earlier runs showed is listed among the warnings")
    result = verdict.build(status, seen.iterations, findings, None, fatal, source=LOG, log=shown,
                           limits=limits, unparsed_lines=folder.unknown_lines, log_lines=understood)
    verdict.write(out / "verdict.json", result)
    return result, nets, solver, tables


class _Judge:
    """The rules over a log, started again where the log starts over: its iterations go back (another run
    appended to the same file, or a line pasted above the log that it repeats). The last run is judged;
    an earlier run's findings stay as warnings, or as the anomaly when the last run has none."""

    def __init__(self, config, nets: dict, solver, setup: list):
        self._start = lambda: _engine(config, nets, solver, setup)
        self.engine = self._start()
        self.earlier: list = []
        self.restarts: list = []        # (the last iteration before, the first after)
        self._last = None

    def feed(self, record) -> None:
        if isinstance(record, IterationEnd):
            if self._last is not None and record.iteration < self._last:
                self.earlier += self.engine.findings
                self.restarts.append((self._last, record.iteration))
                self.engine = self._start()
            self._last = record.iteration
        self.engine.feed(record)

    def finish(self) -> list:
        findings = self.engine.findings + self.engine.finish()
        earlier = self.earlier
        if any(f.severity == HALT for f in findings):
            earlier = [replace(f, severity=WARN, message=f"(an earlier run in this log) {f.message}") for f in earlier]
        return earlier + findings


def _engine(config, nets: dict, solver, setup: list) -> RuleEngine:
    engine = RuleEngine(config, nets, solver, source=LOG)
    for event in setup:
        engine.feed(event)
    return engine


class _Seen:
    """What the records showed, for the limits: iterations, debug lines, displays."""

    def __init__(self):
        self.iterations = 0                 # iterations run, from the display lines
        self.displayed = 0                  # display lines
        self.debug_iterations: set = set()  # train iterations with debug lines
        self.debug_lines = False

    def add(self, record) -> None:
        if isinstance(record, BlobStat):
            self.debug_lines = True
            if record.net == "train":
                self.debug_iterations.add(record.iteration)
        elif isinstance(record, IterationEnd):
            self.iterations = max(self.iterations, record.iteration + 1)
            self.displayed += 1


def _understood(folder) -> dict:
    """How much of the file was read as Caffe's log (verdict.json `log_lines`): Caffe's messages; other lines
    with a glog prefix or in an echoed prototxt; blank lines and markup; lines not recognised at all."""
    return {"lines": folder.lines, "caffe_lines": folder.caffe_lines,
            "other_log_lines": folder.other_lines,
            "blank_or_markup": folder.blank_lines,
            "not_recognised": folder.unrecognised_lines,
            "not_recognised_with_numbers": folder.unrecognised_with_numbers,
            "numbers_not_read": folder.unreadable_numbers, "samples": list(folder.samples),
            "wrap_width": folder.wrap_width or None, "rows_joined": folder.joined_rows}


def _not_a_log(shown: str, folder) -> str:
    first = ", ".join(f"'{line}'" if len(line) <= _QUOTED else f"'{line[:_QUOTED]}...'"
                      for line in folder.first_lines[:3])
    if not folder.lines:
        read = "it is empty"
    else:
        looks = f"the first look like {first}" if first else "all of them blank"
        read = f"read {folder.lines} lines ({folder.blank_lines} blank); {looks}"
    return (f"{shown}: no line was recognised as Caffe's log output, so there is nothing to judge: {read}. "
            f"`harness parse` reads "
            f"the glog output of `caffe train` (lines like `I0425 10:13:21.206111  9167 solver.cpp:218] "
            f"Iteration 220 (...), loss = 6.55`), from any Caffe since 2014, pasted excerpts included.")


def _discard(out: Path, tables) -> None:
    """Remove what a parse that found no log wrote (the directory too when that leaves it empty)."""
    shutil.rmtree(out / store.DIR, ignore_errors=True)
    if tables is not None:
        for path in tables.close():
            path.unlink(missing_ok=True)
    try:
        out.rmdir()
    except OSError:
        pass   # the user's --out directory with other files in it


def _limits(nets: dict, seen: _Seen, understood: dict, anomaly) -> list:
    """What this log cannot decide, and what to paste or turn on to decide it: said rather than guessed."""
    limits = []
    lines = understood["lines"] - understood["rows_joined"] - understood["blank_or_markup"]
    if understood["not_recognised"] > (1 - _MOSTLY_UNDERSTOOD) * lines:
        limits.append(f"only {lines - understood['not_recognised']} of the {lines} non-blank lines were recognised as "
                      f"Caffe's log; the verdict rests on those (verdict.json `log_lines` quotes lines not "
                      f"recognised)")
    if not seen.iterations:
        limits.append("the log has no `Iteration N` line, so iteration numbers are unknown (0 stands for the "
                      "pasted pass): paste the lines around it, with the display line that follows")
    if not nets:
        limits.append(NO_NET_ECHO)
    if not seen.debug_lines:
        limits.append("the log has no debug_info lines: only the loss, lr and outputs could be judged, not the "
                      "layer where a problem starts; set `debug_info: true` in the solver and run again (a few "
                      "iterations around the failure are enough)")
    elif len(seen.debug_iterations) < seen.displayed:
        limits.append(f"debug lines cover {len(seen.debug_iterations)} of the {seen.displayed} iterations the log "
                      "displays: a problem may have started in an iteration the log does not show")
    span = anomaly.iteration_range if anomaly is not None else None
    if span is not None:
        again = ("run it again from the start" if span[0] <= 1 else
                 f"resume from a snapshot taken before iteration {span[0]}")
        limits.append(f"the log shows no iteration between {span[0] - 1} and {span[1]} (display > 1): the problem "
                      f"started in one of iterations {span[0]}-{span[1]}; to pin it, set `display: 1` (and "
                      f"`debug_info: true`) and {again}")
    return limits
