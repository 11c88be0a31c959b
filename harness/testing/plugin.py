"""The pytest plugin of caffe-harness (entry point `pytest11`, so every pytest in the environment loads it).

- A folder with an `expected.yaml` under the paths pytest is given (or under `--harness-nets DIR`) is a
  collector named by the folder, with the items `live`, `log` and, with `--harness-caffe-binary`, `caffe`: the
  Judgements of harness.testing.netfolder, so `pytest prototxt/` and `harness check prototxt/` agree. The
  folder's `marks` become pytest marks, and each net is one `xdist_group`: `--dist loadgroup` keeps its items on
  one worker. Under other schedules the items of a net may land on different workers; NetRun's lock makes
  the first run the net and the others read its result (workers on one host share the run directories).
- The fixture `harness_run(solver, **options)` trains a solver from a test and returns a training.HarnessRun.

pytest loads this module in every session, also where no net is in sight: it imports only pytest here and
the harness when a net folder is collected or the fixture is used.
"""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from . import EXPECTED_FILE


def pytest_addoption(parser) -> None:
    group = parser.getgroup("harness", "caffe-harness net folders (expected.yaml, docs/zoo.md)")
    group.addoption("--harness-nets", action="append", default=[], metavar="DIR",
                    help="also collect the net folders (with expected.yaml) under DIR; repeatable")
    group.addoption("--harness-caffe-binary", action="store_true", default=None,
                    help="also train each net with the plain `caffe` tool and judge that log (item `caffe`); "
                         "ini: harness_caffe_binary = true")
    group.addoption("--harness-timeout", type=float, default=600.0, metavar="SECONDS",
                    help="give up on one run of a net (or of harness_run) after this long (default 600)")
    group.addoption("--harness-blas-threads", type=int, metavar="N",
                    help="BLAS threads of each Caffe run (default: this host's cores shared out among the "
                         "xdist workers, all of them without xdist)")
    parser.addini("harness_caffe_binary", type="bool", default=False,
                  help="as --harness-caffe-binary, for every run of this project's tests")


def pytest_configure(config) -> None:
    # The workers of pytest-xdist parse the same command line, so they collect the same extra folders.
    config.args.extend(config.getoption("harness_nets"))
    if not config.pluginmanager.hasplugin("xdist"):    # the mark is ours to declare when xdist is absent
        config.addinivalue_line("markers", "xdist_group(name): pytest-xdist's --dist loadgroup runs a group on one worker")


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent):
    if (path / EXPECTED_FILE).is_file():
        return NetCollector.from_parent(parent, path=path)
    return None


def _caffe_binary(config) -> bool:
    given = config.getoption("harness_caffe_binary")
    return given if given is not None else config.getini("harness_caffe_binary")


def _blas_threads(config) -> int:
    from .training import blas_threads
    given = config.getoption("harness_blas_threads")
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    return given if given else blas_threads(int(workers))


def _shared_root(config) -> Path:
    """Where the nets' run directories go: in pytest's base temporary folder (the last three are kept), shared
    by the local xdist workers, whose own folders sit side by side in the session's as popen-<worker id>."""
    base = config._tmp_path_factory.getbasetemp()    # items have no fixtures: the factory behind tmp_path
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is not None and base.name == f"popen-{worker}":
        base = base.parent
    return base / "harness-nets"


class NetFailure(Exception):
    """A verdict that differs from its pins; the message is the whole explanation, no traceback needed."""


class NetCollector(pytest.Directory):
    """A net folder: its items are the live run and the log judgements."""
    _net_run = None

    def collect(self):
        from ..core.errors import HarnessError
        from .netfolder import NetFolder
        try:
            self.net = NetFolder.load(self.path)
        except HarnessError as error:
            raise self.CollectError(str(error)) from None
        for mark in self.net.marks:
            self.add_marker(mark)
        self.add_marker(pytest.mark.xdist_group(self.name))
        for source in NetFolder.sources(_caffe_binary(self.config)):
            yield NetItem.from_parent(self, name=source, source=source)

    def net_run(self):
        """The NetRun of this folder, made once per process."""
        if self._net_run is None:
            from .netfolder import NetRun
            from .training import blas_env
            # The name for reading, the digest for two folders of the same name in one session.
            key = f"{self.name}-{hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:8]}"
            self._net_run = NetRun(self.net, _shared_root(self.config) / key,
                                   self.config.getoption("harness_timeout"), blas_env(_blas_threads(self.config)))
        return self._net_run


class NetItem(pytest.Item):
    """One verdict of a net folder (`live`, `log` or `caffe`) against its expected.yaml."""

    def __init__(self, *, source: str, **kwargs):
        super().__init__(**kwargs)
        self.source = source

    def runtest(self) -> None:
        net_run = self.parent.net_run()
        judgement = net_run.judge(self.source)
        self.user_properties.append(("run_dir", judgement.run_dir))
        if not judgement.passed:
            net_run.draw_report(judgement)
            self.user_properties.append(("report", judgement.report))
            raise NetFailure(judgement.explain(net_run.net))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, NetFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.parent.name} [{self.source}]"


@pytest.fixture
def harness_run(request, tmp_path):
    """`harness_run(solver, **options)` trains SOLVER under `harness train` and returns a
    harness.testing.training.HarnessRun: `.status`, `.verdict` (anomaly and warnings as Findings), `.records`,
    `.run_dir`, `.exit_code`. Options are train's, in Python spelling: max_iter=50, weights="w.caffemodel",
    set={"dead.policy": "warn"}, strict=True, no_html=False (report.html; off by default, as is the progress
    line). Relative paths start in the test file's folder. A run that leaves no verdict fails the test."""
    import subprocess

    from ..core.errors import HarnessError
    from .training import blas_env, cli_args, train
    here = request.path.parent
    numbers = itertools.count()
    env = blas_env(_blas_threads(request.config))

    def run(solver, **options):
        options = {"quiet": True, "no_html": True, **options}
        run_dir = Path(options.pop("run_dir", None) or tmp_path / f"harness-run-{next(numbers)}")
        try:
            return train(here / solver, here / run_dir, cli_args(options), cwd=here, env=env,
                         timeout=request.config.getoption("harness_timeout"))
        except HarnessError as error:
            pytest.fail(f"harness_run({str(solver)!r}): {error}", pytrace=False)
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"harness_run({str(solver)!r}): timed out after {error.timeout:g} s", pytrace=False)
    return run
