"""`harness check DIR...`: run every net folder that holds an `expected.yaml` under `harness train` and
compare its verdict with what the file pins. This is how the zoo in prototxt/ is kept honest, and how
users pin their own nets.

expected.yaml (every key optional; see docs/zoo.md):
    status: halted                      # ok | halted | error, exact
    iterations_run: 12                  # exact
    anomaly: {kind: nonfinite, iteration: 7, phase: forward, layer: ip2, blob: ip2}   # or null
    warnings: [{kind: exploding}]       # each entry must match one warning; [] means "no warnings"
    warn_before_anomaly: [exploding]    # a warning of that kind at an iteration before the anomaly's
    min_test_accuracy: 0.9              # every `accuracy*` output of the last test pass in caffe.log
    crosscheck: {mismatched: 0, unmatched_log_lines: 0}   # counts of the cross-check summary, exact
    train_args: [--weights, source.caffemodel]    # appended to `harness train` (run in the net folder)
    from_log: {anomaly: {layer: data}}  # where the verdict from the log alone must differ (see below)
A mapping matches a verdict entry when each of its keys holds exactly the same value there.

Each run's caffe.log is also judged by `harness parse`, and with --caffe-binary a log written by the
plain `caffe train` is too: both must give the pinned verdict, except for what only a live run can know
(iterations_run, the cross-check) and what `from_log` overrides: a log prints Caffe's float mean, so
where that overflows to `inf` before any element is non-finite, the log cannot tell the two apart.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import yaml

from ..core.errors import HarnessError
from ..run import gpu

EXPECTED_FILE = "expected.yaml"
STATUSES = ("ok", "halted", "error")
FINDING_KEYS = {"kind", "iteration", "phase", "net", "layer", "blob", "value", "message", "severity", "rule"}
TOP_KEYS = {"status", "iterations_run", "anomaly", "warnings", "warn_before_anomaly", "min_test_accuracy",
            "crosscheck", "train_args", "from_log"}
# What a log cannot decide: how far a halted run would have gone, and the cross-check.
LIVE_ONLY_KEYS = {"iterations_run", "crosscheck", "train_args", "from_log"}
CROSSCHECK_KEYS = {"compared", "mismatched", "unmatched_log_lines", "unmatched_harness_values"}
# The test pass's outputs as Caffe logs them: "Test net output #0: accuracy = 0.97".
_TEST_OUTPUT = re.compile(r"Test net output #\d+: (\S+) = (\S+)")
_TESTING = re.compile(r"Iteration \d+, Testing net \(#\d+\)")


def add_arguments(parser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="a net folder with expected.yaml, or a folder of such folders (e.g. prototxt/)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="nets to run at once (default 1)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run directories (under runs/check-<UTC time>/) instead of deleting them")
    parser.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                        help="give up on a net after this long (default 600)")
    parser.add_argument("--caffe-binary", action="store_true",
                        help="also train each net with the plain `caffe` tool and judge its log with `harness parse`")
    parser.add_argument("--gpu", type=int, metavar="N",
                        help="train on GPU N (`harness train --gpu N`, `caffe train -gpu N`) against the same pins")


@dataclass
class Outcome:
    folder: Path
    expected: dict
    verdict: Optional[dict] = None
    seconds: float = 0.0
    differences: list = field(default_factory=list)
    log_verdicts: dict = field(default_factory=dict)     # "log" / "caffe" -> verdict judged from that log


def find_nets(dirs) -> list:
    """The folders to check: each DIR holding expected.yaml, else each of its subfolders that holds one."""
    folders = []
    for name in dirs:
        path = Path(name)
        if not path.is_dir():
            raise HarnessError(f"{path}: no such folder.")
        if (path / EXPECTED_FILE).is_file():
            folders.append(path)
            continue
        found = sorted(sub for sub in path.iterdir() if (sub / EXPECTED_FILE).is_file())
        if not found:
            raise HarnessError(f"{path}: neither it nor any folder directly inside it has an {EXPECTED_FILE}.")
        folders.extend(found)
    return folders


def load_expected(path: Path) -> dict:
    """Read and validate one expected.yaml; any problem is a HarnessError naming the file."""
    try:
        expected = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise HarnessError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(expected, dict):
        raise HarnessError(f"{path}: expected a mapping of verdict fields (status, anomaly, warnings, ...).")

    def bad(problem: str):
        return HarnessError(f"{path}: {problem}")

    unknown = set(expected) - TOP_KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(TOP_KEYS))}.")
    if "status" in expected and expected["status"] not in STATUSES:
        raise bad(f"status must be one of {', '.join(STATUSES)}, not {expected['status']!r}.")
    if "iterations_run" in expected and type(expected["iterations_run"]) is not int:
        raise bad("iterations_run must be an integer.")
    if expected.get("anomaly") is not None and not isinstance(expected["anomaly"], dict):
        raise bad("anomaly must be null or a mapping such as {kind: nonfinite, layer: fc1}.")
    entries = [("anomaly", expected["anomaly"])] if expected.get("anomaly") is not None else []
    if "warnings" in expected:
        if not isinstance(expected["warnings"], list) or not all(isinstance(w, dict) for w in expected["warnings"]):
            raise bad("warnings must be a list of mappings such as [{kind: exploding}].")
        entries += [("warnings", w) for w in expected["warnings"]]
    for where, entry in entries:
        unknown = set(entry) - FINDING_KEYS
        if unknown:
            raise bad(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                      f"known: {', '.join(sorted(FINDING_KEYS))}.")
    kinds = expected.get("warn_before_anomaly", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise bad("warn_before_anomaly must be a list of warning kinds such as [exploding].")
    if kinds and "iteration" not in (expected.get("anomaly") or {}):
        raise bad("warn_before_anomaly needs an anomaly with an iteration to compare with.")
    counts = expected.get("crosscheck", {})
    if not isinstance(counts, dict) or not set(counts) <= CROSSCHECK_KEYS or \
            not all(type(v) is int for v in counts.values()):
        raise bad(f"crosscheck must map some of {', '.join(sorted(CROSSCHECK_KEYS))} to integers.")
    train_args = expected.get("train_args", [])
    if not isinstance(train_args, list) or not all(isinstance(a, str) for a in train_args):
        raise bad("train_args must be a list of strings such as [--weights, source.caffemodel].")
    from_log = expected.get("from_log", {})
    if not isinstance(from_log, dict) or not set(from_log) <= TOP_KEYS - LIVE_ONLY_KEYS:
        raise bad(f"from_log must map some of {', '.join(sorted(TOP_KEYS - LIVE_ONLY_KEYS))} to what a log gives.")
    accuracy = expected.get("min_test_accuracy", 0)
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        raise bad("min_test_accuracy must be a number.")
    return expected


def _matches(want: dict, entry: Optional[dict]) -> bool:
    return entry is not None and all(key in entry and entry[key] == value for key, value in want.items())


def last_test_outputs(log_text: str) -> dict:
    """The outputs of the last test pass in a Caffe log, by name."""
    outputs = {}
    for line in log_text.splitlines():
        if _TESTING.search(line):
            outputs = {}
        match = _TEST_OUTPUT.search(line)
        if match:
            outputs[match.group(1)] = match.group(2)
    return outputs


def compare(expected: dict, verdict: dict, log_text: str = "") -> list:
    """What differs between expected.yaml's pins and a verdict (and its caffe.log): a list of sentences."""
    differences = []
    for key in ("status", "iterations_run"):
        if key in expected and verdict.get(key) != expected[key]:
            differences.append(f"{key}: expected {expected[key]!r}, got {verdict.get(key)!r}")
    if verdict.get("caffe_error") and expected.get("status") != "error":
        differences.append(f"caffe_error: {verdict['caffe_error']}")
    anomaly = verdict.get("anomaly")
    if "anomaly" in expected:
        want = expected["anomaly"]
        if want is None and anomaly is not None:
            differences.append(f"anomaly: expected none, got {describe(anomaly)}")
        elif want is not None and anomaly is None:
            differences.append(f"anomaly: expected {_fields(want)}, got none")
        elif want is not None and not _matches(want, anomaly):
            wrong = {k: anomaly.get(k, "<missing>") for k, v in want.items() if anomaly.get(k) != v}
            differences.append(f"anomaly: expected {_fields(want)}, got {describe(anomaly)} "
                               f"(differs in {_fields(wrong)})")
    warnings = verdict.get("warnings") or []
    if expected.get("warnings") == [] and warnings:
        differences.append(f"warnings: expected none, got {'; '.join(describe(w) for w in warnings)}")
    for want in expected.get("warnings") or []:
        if not any(_matches(want, w) for w in warnings):
            got = "; ".join(describe(w) for w in warnings) or "none"
            differences.append(f"warnings: expected one with {_fields(want)}, got {got}")
    for kind in expected.get("warn_before_anomaly", []):
        limit = (anomaly or {}).get("iteration")
        if limit is None or not any(w.get("kind") == kind and isinstance(w.get("iteration"), int)
                                    and w["iteration"] < limit for w in warnings):
            differences.append(f"warn_before_anomaly: no {kind} warning before the anomaly's iteration {limit}")
    crosscheck = verdict.get("crosscheck") or {}
    for key, value in expected.get("crosscheck", {}).items():
        if crosscheck.get(key) != value:
            differences.append(f"crosscheck: expected {key} {value}, got {crosscheck.get(key)}")
    if "min_test_accuracy" in expected:
        accuracies = {k: v for k, v in last_test_outputs(log_text).items() if k.startswith("accuracy")}
        if not accuracies:
            differences.append("min_test_accuracy: caffe.log has no test accuracy output")
        for name, value in accuracies.items():
            if not float(value) >= expected["min_test_accuracy"]:      # also catches nan
                differences.append(f"min_test_accuracy: {name} = {value} in the last test pass, "
                                   f"expected >= {expected['min_test_accuracy']}")
    return differences


def _fields(entry: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in entry.items()) + "}"


def describe(entry: Optional[dict]) -> str:
    """A finding in one short phrase: kind@iteration phase layer/blob."""
    if not entry:
        return "none"
    where = "/".join(str(entry[k]) for k in ("layer", "blob") if entry.get(k) is not None)
    return " ".join(str(part) for part in (f"{entry.get('kind')}@{entry.get('iteration')}", entry.get("phase"), where)
                    if part)


def _expected_summary(expected: dict) -> str:
    parts = [expected.get("status", "?")]
    if expected.get("anomaly"):
        parts.append(describe(expected["anomaly"]))
    parts += [f"+{w.get('kind', 'warning')}" for w in expected.get("warnings") or []]
    return " ".join(parts)


def _summary(verdict: Optional[dict]) -> str:
    if verdict is None:
        return "no verdict"
    parts = [str(verdict.get("status"))]
    if verdict.get("anomaly"):
        parts.append(describe(verdict["anomaly"]))
    parts += sorted({f"+{w.get('kind')}" for w in verdict.get("warnings") or []})
    return " ".join(parts)


def check_net(folder: Path, run_dir: Path, timeout: float, caffe_binary: bool = False,
              gpu: Optional[int] = None) -> Outcome:
    """Generate the folder's data, train it under the harness, and compare the verdict, and the verdicts
    judged from its log (and from plain caffe's log)."""
    outcome = Outcome(folder, load_expected(folder / EXPECTED_FILE))
    started = time.monotonic()
    try:
        if (folder / "make_data.py").is_file():
            made = subprocess.run([sys.executable, "make_data.py"], cwd=folder, capture_output=True, text=True,
                                  timeout=timeout)
            if made.returncode != 0:
                outcome.differences.append(f"make_data.py failed (exit {made.returncode}): {_tail(made.stderr)}")
                return outcome
        # In the net folder, like make_data.py: paths in train_args are relative to it.
        trained = subprocess.run([sys.executable, "-m", "harness", "train", str(folder / "solver.prototxt"),
                                  "--run-dir", str(run_dir), "--quiet", "--no-html",
                                  *([] if gpu is None else ["--gpu", str(gpu)]),
                                  *outcome.expected.get("train_args", [])],
                                 cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        outcome.differences.append(f"timed out after {timeout:g} s")
        return outcome
    finally:
        outcome.seconds = time.monotonic() - started
    verdict_path = run_dir / "verdict.json"
    if not verdict_path.is_file():
        outcome.differences.append(f"harness train exited {trained.returncode} without a verdict.json: "
                                   f"{_tail(trained.stderr)}")
        return outcome
    outcome.verdict = json.loads(verdict_path.read_text())
    log_path = run_dir / "caffe.log"
    log_text = log_path.read_text(errors="replace") if log_path.is_file() else ""
    outcome.differences = compare(outcome.expected, outcome.verdict, log_text)
    logs = {"log": log_path}
    try:
        if caffe_binary:
            logs["caffe"] = _train_with_caffe_binary(folder, run_dir, outcome.expected, timeout, gpu)
        for source, path in logs.items():
            outcome.log_verdicts[source] = verdict = _parse(path, run_dir / f"parsed-{source}", timeout,
                                                            _rule_options(outcome.expected.get("train_args", [])), folder)
            where = "its caffe.log" if source == "log" else "plain caffe's log"
            outcome.differences += [f"judged from {where}: {difference}" for difference in
                                    compare(expected_from_log(outcome.expected), verdict, path.read_text(errors="replace"))]
    except subprocess.TimeoutExpired:
        outcome.differences.append(f"judging the logs timed out after {timeout:g} s")
    except HarnessError as error:
        outcome.differences.append(str(error))
    return outcome


def expected_from_log(expected: dict) -> dict:
    """The pins a verdict judged from a log must meet."""
    pins = {key: value for key, value in expected.items() if key not in LIVE_ONLY_KEYS}
    for key, value in expected.get("from_log", {}).items():
        pins[key] = {**pins[key], **value} if isinstance(value, dict) and isinstance(pins.get(key), dict) else value
    return pins


def _rule_options(train_args: list) -> list:
    """The options `harness parse` shares with `harness train`: rule settings (--set, --config)."""
    options = []
    for k, arg in enumerate(train_args[:-1]):
        if arg in ("--set", "--config"):
            options += [arg, train_args[k + 1]]
    return options


def _parse(log: Path, out: Path, timeout: float, options: list, cwd: Path) -> dict:
    parsed = subprocess.run([sys.executable, "-m", "harness", "parse", str(log), "--out", str(out), "--quiet",
                             "--no-html", *options], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if not (out / "verdict.json").is_file():
        raise HarnessError(f"harness parse {log} exited {parsed.returncode} without a verdict: {_tail(parsed.stderr)}")
    return json.loads((out / "verdict.json").read_text())


def _train_with_caffe_binary(folder: Path, run_dir: Path, expected: dict, timeout: float,
                             gpu: Optional[int] = None) -> Path:
    """`caffe train` on the run's effective solver (debug_info on, display 1, absolute paths), in the net
    folder, with its Python layers importable; returns the log it wrote."""
    worker = json.loads((run_dir / "worker.json").read_text())
    args = expected.get("train_args", [])
    weights = ["-weights", args[args.index("--weights") + 1]] if "--weights" in args else []
    env = dict(os.environ, GLOG_logtostderr="1",
               PYTHONPATH=os.pathsep.join(worker["python_paths"] + [os.environ.get("PYTHONPATH", "")]))
    log = run_dir / "caffe-binary.log"
    with open(log, "w") as stream:
        subprocess.run([str(Path(sys.executable).parent / "caffe"), "train", "-solver", str(run_dir / "solver.prototxt"),
                        *weights, *([] if gpu is None else ["-gpu", str(gpu)])],
                       cwd=folder, stdout=stream, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    return log


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _table(outcomes) -> str:
    sources = sorted({source for o in outcomes for source in o.log_verdicts}, reverse=True)
    header = ("net", "expected", "got", "iters", "seconds", "cross-check", *(f"from {s}" for s in sources))
    rows = [header]
    for o in outcomes:
        verdict = o.verdict or {}
        check = verdict.get("crosscheck") or {}
        crosscheck = f"{check['compared']}/{check['mismatched']}" if "compared" in check else "-"
        judged = [_summary(o.log_verdicts[s]) if s in o.log_verdicts else "-" for s in sources]
        rows.append((("  " if not o.differences else "X ") + o.folder.name, _expected_summary(o.expected),
                     _summary(o.verdict), str(verdict.get("iterations_run", "-")), f"{o.seconds:.1f}", crosscheck,
                     *judged))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def run(args) -> int:
    folders = find_nets(args.dirs)
    for folder in folders:                      # fail on a bad expected.yaml before any net runs
        load_expected(folder / EXPECTED_FILE)
    names = [f.name for f in folders]
    if len(set(names)) != len(names):
        raise HarnessError("two net folders share a name; check them in separate runs.")
    if args.jobs < 1:
        raise HarnessError("--jobs must be at least 1.")
    if args.gpu is not None:
        gpu.require_gpu(args.gpu)               # one refusal up front instead of one per net
    if args.keep:
        root = Path("runs") / ("check-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
        root.mkdir(parents=True, exist_ok=True)
        outcomes = _check_all(folders, root, args)
        print(f"run directories kept in {root}")
    else:
        with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
            outcomes = _check_all(folders, Path(tmp), args)
    failed = [o for o in outcomes if o.differences]
    for o in failed:
        print(f"\n{o.folder}:")
        for difference in o.differences:
            print(f"  {difference}")
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} nets as expected.")
    return 1 if failed else 0


def _check_all(folders, root: Path, args) -> list:
    done = []

    def one(folder: Path) -> Outcome:
        outcome = check_net(folder.resolve(), (root / folder.name).resolve(), args.timeout, args.caffe_binary, args.gpu)
        done.append(folder)
        result = "as expected" if not outcome.differences else "DIFFERS"
        print(f"[{len(done)}/{len(folders)}] {folder.name}: {result} ({outcome.seconds:.1f} s)",
              file=sys.stderr, flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(one, folders))
    print(_table(outcomes))
    return outcomes
