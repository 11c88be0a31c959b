"""A net folder, the unit of a regression test: a folder with `solver.prototxt` and an `expected.yaml` that pins
its verdict (`expected`). Here it is found, run once under `harness train`, its logs judged by `harness parse`,
and each verdict compared with the pins: one Judgement per source. `harness check` and the pytest plugin both
run nets through `NetRun`, so a net passes or fails the same way under either.

The sources: `live` (the harness's own verdict of the training run), `log` (its caffe.log through `harness
parse`) and `caffe` (a log of the plain `caffe train` on the same effective solver, through `harness parse`).
The two log judgements need the live run's files, so the live run happens first, once per run directory:
whichever judgement arrives first runs it, under a lock that processes sharing the directory (pytest-xdist
workers on one host) respect, and its result is saved beside it for the others to read.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import sysconfig
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..core.errors import HarnessError
from . import EXPECTED_FILE
from .expected import compare, expected_from_log, load_expected, side_by_side
from .training import draw_report, tail, train

LIVE, LOG, CAFFE = "live", "log", "caffe"
SOURCE_NAMES = {LIVE: "the live run", LOG: "its caffe.log", CAFFE: "plain caffe's log"}


def find_nets(dirs) -> list:
    """The net folders under each DIR: DIR itself if it holds expected.yaml, else every folder below it that
    does (not below a net folder), in sorted order, as pytest collects them."""
    folders = []
    for name in dirs:
        path = Path(name)
        if not path.is_dir():
            raise HarnessError(f"{path}: no such folder.")
        found = _nets_below(path)
        if not found:
            raise HarnessError(f"{path}: neither it nor any folder inside it has an {EXPECTED_FILE}.")
        folders.extend(found)
    return folders


def _nets_below(path: Path) -> list:
    if (path / EXPECTED_FILE).is_file():
        return [path]
    return [net for sub in sorted(path.iterdir()) if sub.is_dir() and not sub.name.startswith((".", "__"))
            for net in _nets_below(sub)]


@dataclass(frozen=True)
class NetFolder:
    folder: Path
    expected: dict

    @classmethod
    def load(cls, folder: Path) -> "NetFolder":
        """The folder and its validated pins; a bad expected.yaml is a HarnessError naming the file."""
        return cls(Path(folder), load_expected(Path(folder) / EXPECTED_FILE))

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def marks(self) -> list:
        return self.expected.get("marks", [])

    @staticmethod
    def sources(caffe_binary: bool) -> list:
        """What is judged, in the order it runs: the live run, then the logs."""
        return [LIVE, LOG, CAFFE] if caffe_binary else [LIVE, LOG]


@dataclass
class Judgement:
    """One verdict of a net (from the live run or from a log) compared with the pins it must meet."""
    source: str
    pins: dict
    verdict: Optional[dict]
    differences: list
    run_dir: str                 # where the verdict was written; report.html is drawn there
    log: str = ""                # the caffe.log the verdict was judged from (or written by the run)
    seconds: float = 0.0
    report: str = field(default="", compare=False)    # report.html, once drawn

    @property
    def passed(self) -> bool:
        return not self.differences

    def explain(self, net: NetFolder) -> str:
        """The pins beside the verdict, each difference in a sentence, and where to look further."""
        lines = [f"{net.name}: the verdict from {SOURCE_NAMES[self.source]} differs from {net.folder / EXPECTED_FILE}"]
        if self.verdict is not None:
            log_text = _read(self.log) if self.log else ""
            lines += ["", side_by_side(self.pins, self.verdict, self.differences, log_text), ""]
        lines += [f"  {difference}" for difference in self.differences]
        lines.append(f"run directory: {self.run_dir}")
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


class NetRun:
    """One net folder run into `run_dir` and judged from there, each source at most once, also across
    processes that share `run_dir`: the first to need a result computes it, the others read it."""

    def __init__(self, net: NetFolder, run_dir: Path, timeout: float, env: Optional[dict] = None,
                 gpu: Optional[int] = None):
        self.net = net
        self.run_dir = Path(run_dir).resolve()
        self.timeout = timeout
        self.env = env
        self.gpu = gpu           # train on this GPU (harness check --gpu N), else on the CPU

    def judge(self, source: str) -> Judgement:
        with self._locked():
            return self._once(source)

    def draw_report(self, judgement: Judgement) -> Judgement:
        """Draw report.html for a judgement (the runs themselves skip it: only a failure needs it)."""
        judgement.report = draw_report(Path(judgement.run_dir), self.timeout)
        return judgement

    @contextmanager
    def _locked(self):
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir.parent / f"{self.run_dir.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _once(self, source: str) -> Judgement:
        saved = self.run_dir / f"judged-{source}.json"
        if saved.is_file():
            return Judgement(**json.loads(saved.read_text()))
        started = time.monotonic()
        judgement = self._judged(source)
        judgement.seconds = time.monotonic() - started
        self.run_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(asdict(judgement)))
        return judgement

    def _judged(self, source: str) -> Judgement:
        """The verdict from `source` compared with its pins; what kept it from a verdict is a difference too."""
        live = source == LIVE
        pins = self.net.expected if live else expected_from_log(self.net.expected)
        judgement = Judgement(source, pins, None, [], str(self.run_dir if live else self.run_dir / f"parsed-{source}"))
        try:
            verdict, log = self._train() if live else self._judge_log(source, Path(judgement.run_dir))
        except subprocess.TimeoutExpired:
            judgement.differences.append(f"timed out after {self.timeout:g} s")
            return judgement
        except HarnessError as error:
            judgement.differences.append(str(error))
            return judgement
        judgement.verdict, judgement.log = verdict, str(log)
        judgement.differences = compare(pins, verdict, _read(log))
        return judgement

    def _train(self) -> tuple:
        """Generate the folder's data and train it under the harness: (verdict, caffe.log)."""
        net = self.net
        if (net.folder / "make_data.py").is_file():
            made = subprocess.run([sys.executable, "make_data.py"], cwd=net.folder, capture_output=True,
                                  text=True, timeout=self.timeout, env=self.env)
            if made.returncode != 0:
                raise HarnessError(f"make_data.py failed (exit {made.returncode}): {tail(made.stderr)}")
        # In the net folder, like make_data.py: paths in train_args are relative to it. Every iteration's debug
        # lines, so that the log judgements see what the live run saw (train_args may say otherwise).
        run = train(net.folder.resolve() / "solver.prototxt", self.run_dir,
                    ["--quiet", "--no-html", "--crosscheck", "every", *self._device("--gpu"),
                     *net.expected.get("train_args", [])],
                    cwd=net.folder, env=self.env, timeout=self.timeout)
        return run.verdict.data, run.log

    def _judge_log(self, source: str, out: Path) -> tuple:
        """`harness parse` of the live run's caffe.log, or of plain caffe's log on the same solver: (verdict, log)."""
        live = self._once(LIVE)
        if live.verdict is None:
            raise HarnessError(f"nothing to judge: the live run failed ({'; '.join(live.differences)})")
        log = self.run_dir / "caffe.log" if source == LOG else self._train_with_caffe_binary()
        return self._parse(log, out), log

    def _parse(self, log: Path, out: Path) -> dict:
        parsed = subprocess.run([sys.executable, "-m", "harness", "parse", str(log), "--out", str(out), "--quiet",
                                 "--no-html", *_parse_options(self.net.expected.get("train_args", []))],
                                cwd=self.net.folder, capture_output=True, text=True, timeout=self.timeout,
                                env=self.env)
        if not (out / "verdict.json").is_file():
            raise HarnessError(f"harness parse {log} exited {parsed.returncode} without a verdict: {tail(parsed.stderr)}")
        return json.loads((out / "verdict.json").read_text())

    def _train_with_caffe_binary(self) -> Path:
        """`caffe train` of the build the live run trained with, on the run's effective solver (debug_info on,
        display 1, absolute paths), in the net folder, with its Python layers importable; returns the log."""
        worker = json.loads((self.run_dir / "worker.json").read_text())
        tool, python, libraries = self._caffe_tool()
        args = self.net.expected.get("train_args", [])
        weights = ["-weights", args[args.index("--weights") + 1]] if "--weights" in args else []
        base = self.env if self.env is not None else os.environ
        env = dict(base, GLOG_logtostderr="1")
        for variable, folders in (("PYTHONPATH", python + worker["python_paths"]), ("LD_LIBRARY_PATH", libraries)):
            if folders:
                env[variable] = os.pathsep.join(folders + [p for p in [base.get(variable)] if p])
        log = self.run_dir / "caffe-binary.log"
        with open(log, "w") as stream:
            subprocess.run([tool, "train", "-solver", str(self.run_dir / "solver.prototxt"), *weights,
                            *self._device("-gpu")],
                           cwd=self.net.folder, stdout=stream, stderr=subprocess.STDOUT, env=env, timeout=self.timeout)
        return log

    def _device(self, option: str) -> list:
        return [] if self.gpu is None else [option, str(self.gpu)]

    def _caffe_tool(self) -> tuple:
        """(the `caffe` tool, PYTHONPATH folders, LD_LIBRARY_PATH folders) of the build the live run used, as
        its run.json records it: a user's build (`--caffe` in train_args, or HARNESS_CAFFE) with its pycaffe and
        this venv's packages for Python layers, as the worker had them; else the harness's own, whose wrapper in
        the venv sets its paths itself."""
        build = json.loads((self.run_dir / "run.json").read_text()).get("caffe_build", {})
        if "binary" not in build:
            return str(Path(sys.executable).parent / "caffe"), [], []
        if not build["binary"]:
            raise HarnessError(f"the Caffe build in {build['path']} has no `caffe` tool (bin/caffe, build/tools/caffe), "
                               "which the judgement from plain caffe's log runs")
        return (build["binary"], [str(Path(build["pycaffe"]).parent), sysconfig.get_paths()["purelib"]],
                build.get("lib_dirs", []))


def _read(path) -> str:
    return Path(path).read_text(errors="replace") if Path(path).is_file() else ""


def _parse_options(train_args: list) -> list:
    """The options `harness parse` shares with `harness train`: rule settings (--set, --config) and the Caffe
    build (--caffe: its caffe.proto reads a fork's layer parameters in the log's echo of the net)."""
    options = []
    for k, arg in enumerate(train_args[:-1]):
        if arg in ("--set", "--config", "--caffe"):
            options += [arg, train_args[k + 1]]
    return options
