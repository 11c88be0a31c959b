"""`harness parse LOG`: the same rules, verdict and report as a live run, from an existing Caffe log."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from google.protobuf import text_format

from ..core import netinfo, rundir
from ..core.caffe_proto import caffe_pb2
from ..core.errors import HarnessError
from ..core.records import BlobStat, Event, IterationEnd, TestResult, read_records, to_json
from ..log import glog
from ..rules import config as harness_config
from ..rules import verdict
from ..rules.engine import RuleEngine
from ..run import caffe_dir, solver as solver_loader
from ..report import page, text

LOG, NO_NET_ECHO = "log", "the log holds no echo of the net definition, so lr_mult, loss weights and layer types are unknown"


def add_arguments(parser) -> None:
    parser.add_argument("log", help="a Caffe log (glog format; pasted excerpts work too)")
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


def _net_from_echo(text: str):
    try:
        return netinfo.from_net_parameter(text_format.Merge(text, caffe_pb2().NetParameter()))
    except text_format.ParseError:
        return None


def _solver_from_echo(text: str):
    try:
        return solver_loader.info_from_param(text_format.Merge(text, caffe_pb2().SolverParameter()))
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


def run(args) -> int:
    caffe_dir.use(args.caffe)
    config = harness_config.load(args.config, harness_config.overrides_from_cli(args.set))
    path = Path(args.log)
    if not path.is_file():
        raise HarnessError(f"{path}: no such log file.")
    try:
        path.open("rb").close()
    except OSError as error:
        raise HarnessError(f"{path}: cannot be read ({error.strerror}).") from None
    out = rundir.make(args.out, f"parse-{path.stem}")

    nets, solver, engine = {}, None, None
    fatal, iterations, debug_iterations, early_events = None, 0, set(), []
    tables = _Tables(out / path.name) if args.csv else None
    folder = glog.LogFolder()
    with open(out / "records.jsonl", "w") as records_file:
        for record in glog.parse_file(path, folder):
            if isinstance(record, Event):
                if record.kind == "net_parameter" and engine is None:
                    name, body = glog.split_net(record.text)
                    info = _net_from_echo(body)
                    if info is not None and name != "unknown":
                        nets[name] = info
                elif record.kind == "solver_parameter" and solver is None:
                    solver = _solver_from_echo(record.text)
                elif record.kind == "fatal" and fatal is None:
                    fatal = record.text
            if engine is None:
                if isinstance(record, Event):
                    early_events.append(record)   # set-up lines: the rules see them once the nets are known
                else:
                    engine = RuleEngine(config, nets, solver, source=LOG)
                    for event in early_events:
                        engine.feed(event)
            records_file.write(to_json(record) + "\n")
            if isinstance(record, BlobStat) and record.net == "train":
                debug_iterations.add(record.iteration)
            if isinstance(record, IterationEnd):
                iterations = max(iterations, record.iteration + 1)
            if tables is not None:
                tables.add(record)
            if engine is not None:
                engine.feed(record)
    findings = list(engine.findings) + list(engine.finish()) if engine else []
    limits = _limits(nets, debug_iterations, iterations)
    halting = [f for f in findings if f.severity == "halt"]
    status = "error" if fatal else ("halted" if halting else "ok")
    result = verdict.build(status, iterations, findings, None, fatal, source=LOG, log=str(path.resolve()),
                           limits=limits, unparsed_lines=folder.unknown_lines)
    verdict.write(out / "verdict.json", result)
    with open(out / "records.jsonl") as stream:
        text.write(out, result, read_records(stream), nets, solver)
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


def _limits(nets: dict, debug_iterations: set, iterations: int) -> list:
    """What this log cannot decide, said in the verdict rather than guessed."""
    limits = []
    if not nets:
        limits.append(NO_NET_ECHO)
    if not debug_iterations:
        limits.append("the log has no debug_info lines: only the loss, lr and outputs could be judged")
    elif len(debug_iterations) < iterations:
        limits.append(f"debug lines cover {len(debug_iterations)} of {iterations} iterations (display > 1, or an "
                      "excerpt): a problem may have started in an iteration the log does not show")
    return limits
