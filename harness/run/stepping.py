"""Training on a Caffe build without pycaffe's per-layer hooks: the blobs are read once per iteration.

`Net.after_forward` / `after_backward` came to BVLC Caffe in 2016; many forks branched off before (SSD's
weiliu89/caffe, py-faster-rcnn's caffe-fast-rcnn). The worker then observes at the finest point the build
offers (`harness train --hooks`):

- `layers`: after every layer (worker.py alone; the default where the build has the hooks);
- `solver`: `Solver.add_callback` only. In `on_gradients_ready`, after the iteration's forward and backward
  passes and before the update, every blob is read back in the order Caffe prints them, and the rules judge
  those records as they would live ones: a NaN halts the run before the weights change, but it is known for
  the iteration, not for the layer as it happened;
- `none`: neither: `solver.step(1)` at a time, then the same read-back, after the update.

A read-back sees each blob as the pass left it, so it keeps only the records that still hold their layer's
value: a blob written in place by several layers (conv then ReLU) only for the last of them, a bottom diff
only for the layer whose backward wrote it last, a shared parameter's diff only with its total. In mode
`none` parameter data comes from before the step and parameter diffs (by then the update, not the gradient)
are left out. `lost()` says all of this in words for the run directory and the report.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from ..core.errors import HarnessError
from ..core.netinfo import NetInfo
from ..core.records import BACKWARD, FORWARD, TRAIN
from ..rules.findings import OFF

AUTO, LAYERS, SOLVER, NONE = "auto", "layers", "solver", "none"
MODES = (AUTO, LAYERS, SOLVER, NONE)
HOOKS_ENV = "HARNESS_HOOKS"   # the same choice as --hooks, for runs started by other tools


def offers(caffe, solver) -> dict:
    """Which of the worker's entry points this build's pycaffe has (`debug_stats`: the exact statistics)."""
    from .stats import has_caffe_stats   # here: stats imports numpy, and `harness train` imports this module
    net = solver.net
    return {"after_forward": hasattr(net, "after_forward"), "after_backward": hasattr(net, "after_backward"),
            "add_callback": hasattr(solver, "add_callback"), "snapshot": hasattr(solver, "snapshot"),
            "top_ids": hasattr(net, "_top_ids"), "debug_stats": has_caffe_stats(caffe)}


def choose(requested: str, offered: dict) -> str:
    """The mode to run in: the finest the build offers for `auto`, else the one asked for if it can."""
    layers = offered["after_forward"] and offered["after_backward"] and offered["add_callback"]
    if requested == AUTO:
        return LAYERS if layers else SOLVER if offered["add_callback"] else NONE
    if requested == LAYERS and not layers:
        missing = [name for name, key in (("Net.after_forward", "after_forward"), ("Net.after_backward",
                   "after_backward"), ("Solver.add_callback", "add_callback")) if not offered[key]]
        raise HarnessError(f"--hooks layers: this Caffe build's pycaffe has no {' and no '.join(missing)} (BVLC "
                           "added the per-layer hooks in 2016). Leave out --hooks (or use --hooks auto) to "
                           "observe once per iteration instead.")
    if requested == SOLVER and not offered["add_callback"]:
        raise HarnessError("--hooks solver: this Caffe build's pycaffe has no Solver.add_callback. Leave out "
                           "--hooks (or use --hooks none) to step the solver one iteration at a time instead.")
    return requested


def hidden(info: NetInfo, net: str, mode: str) -> set:
    """(net, phase, layer, blob) of the records a read-back cannot give their layer's value."""
    layers = info.layers
    last_writer = {blob: i for i, layer in enumerate(layers) for blob in layer.tops}
    # Backward runs from the last layer to the first: a bottom diff stays as the first layer reading it left it.
    first_reader: dict = {}
    for i, layer in enumerate(layers):
        for k, blob in enumerate(layer.bottoms):
            if layer.need_backward and layer.bottom_need_backward[k]:
                first_reader.setdefault(blob, i)
    keys, shared = set(), set()
    for i, layer in enumerate(layers):
        keys |= {(net, FORWARD, layer.name, blob) for blob in layer.tops if last_writer[blob] != i}
        keys |= {(net, BACKWARD, layer.name, blob) for blob in layer.bottoms if first_reader.get(blob, i) != i}
        for k in range(len(layer.lr_mults)):
            name = layer.param_names[k] if k < len(layer.param_names) else ""
            # A shared parameter's diff accumulates over its layers, backwards: only its first user's line
            # (the last one printed) shows the total the read-back sees.
            if mode == NONE or name in shared:
                keys.add((net, BACKWARD, layer.name, f"param blob {k}"))
            if name:
                shared.add(name)
    return keys


def rules_config(config, mode: str):
    """The rules in force: without parameter gradients (mode none) no_gradient would take them for zeros."""
    if mode != NONE:
        return config
    return replace(config, no_gradient=replace(config.no_gradient, policy=OFF))


def lost(mode: str, nets: dict, iter_size: int, test_iters: list, offered: dict) -> list:
    """What a run in this mode does not see, in words, naming this net's blobs where that helps."""
    if mode == LAYERS:
        return []
    train = nets[TRAIN]
    blobs = sorted({blob for layer in train.layers for blob in layer.tops if len(train.producers(blob)) > 1})
    where = "before the update" if mode == SOLVER else "after the update"
    out = [f"halting precision: a NaN/Inf is found in the iteration it appears in, read back once the "
           f"forward and backward passes are done ({where}), not in the layer that produced it as it happens; "
           "the layer named is the first whose blob still holds it after the pass"]
    if blobs:
        out.append("in-place intermediates: " + "; ".join(
            f"`{blob}` is seen only as {train.producers(blob)[-1].name} left it in forward (not after "
            + ", ".join(layer.name for layer in train.producers(blob)[:-1])
            + f") and its diff as {train.producers(blob)[1].name}'s backward left it" for blob in blobs))
    shared = sorted({name for layer in train.layers for name in layer.param_names
                     if name and sum(name in other.param_names for other in train.layers) > 1})
    if shared and mode == SOLVER:
        out.append("shared parameters (" + ", ".join(f"`{name}`" for name in shared) + "): the diff is seen as "
                   "the total over the layers sharing it, not what each layer added")
    if iter_size > 1:
        out.append(f"iter_size {iter_size}: only the last of the {iter_size} forward/backward passes of an iteration "
                   "is seen, and the loss is that pass's")
    if test_iters:
        out.append("test nets: only the last test batch is seen; the test outputs (means over the batches) are "
                   "only in caffe.log")
    if mode == NONE:
        out.append("parameter gradients: after solver.step() a parameter's diff holds the update, not the gradient: "
                   "no gradient statistics of parameters, no `All net params` norms, and the rule no_gradient "
                   "is off")
        out.append("the update: an iteration is seen after its update, so a halt leaves the weights of that "
                   "update (and the snapshot holds them)")
        out.append("the extra forward pass and the final test that `caffe train` runs after max_iter")
        if not offered["snapshot"]:
            out.append("solver state: this pycaffe has no Solver.snapshot, so snapshots hold the weights "
                       "(.caffemodel) only")
    return out


class _Readback:
    """The worker as a NetObserver sees it while reading a finished pass: the iteration the pass belongs to
    (in mode `none` the solver has counted it already), parameter data from before the step, and without
    the records the pass has overwritten."""

    def __init__(self, worker, hidden_keys: set, norms: bool):
        self._worker = worker
        self._hidden = hidden_keys
        self._norms = norms
        self.solver = SimpleNamespace(iter=0)
        self.before: dict = {}   # id(parameter blob) -> its Summary before the step

    @property
    def iteration(self) -> int:
        return self._worker.iteration

    @iteration.setter
    def iteration(self, value: int) -> None:
        self._worker.iteration = value

    def displays(self) -> bool:
        return self._worker.displays()

    def measure(self, blob, which: str, with_sumsq: bool = False):
        kept = self.before.get(id(blob)) if which == "data" else None
        return kept if kept is not None else self._worker.measure(blob, which, with_sumsq)

    def observe(self, stats) -> None:
        self._worker.observe([s for s in stats if (s.net, s.phase, s.layer, s.blob) not in self._hidden])

    def observe_norms(self, norms) -> None:
        if self._norms:
            self._worker.observe_norms(norms)


def _read(observer, iteration: int, pass_index: int, backward: bool) -> None:
    """Feed the pass as it stands to `observer`, layer by layer in Caffe's print order, as pass `pass_index`
    of `iteration` (the observer starts a new pass at layer 0 unless the iteration is the one it holds)."""
    observer.worker.solver.iter = iteration
    observer.pass_iteration, observer.pass_index, observer.pass_losses = iteration, pass_index - 1, []
    for i in range(len(observer.info.layers)):
        observer.after_forward(i)
    if backward:   # pycaffe's after_backward runs for every layer, also those Caffe skips
        for i in reversed(range(len(observer.info.layers))):
            observer.after_backward(i)


def _weights_before(worker, train, tests: list) -> dict:
    """Summaries of the parameters' data before a step, as its forward lines print them: the train net's,
    and for test nets that test in this step the train net's too (Caffe shares them by layer name when
    the test starts; until then a test net holds weights of its own)."""
    before, by_layer = {}, {}
    for layer, params in zip(train.info.layers, train.params):
        for k, blob in enumerate(params):
            before[id(blob)] = by_layer[layer.name, k] = worker.measure(blob, "data", True)
    for observer in tests:
        for layer, params in zip(observer.info.layers, observer.params):
            for k, blob in enumerate(params):
                before[id(blob)] = by_layer.get((layer.name, k)) or worker.measure(blob, "data", True)
    return before


def _tested(param, iteration: int, at_end: bool = False) -> bool:
    """Whether Caffe runs the test nets at `iteration` (Solver::Step; after max_iter, Solver::Solve)."""
    return bool(param.test_interval) and iteration % param.test_interval == 0 and (
        at_end or iteration > 0 or param.test_initialization)


def solve(worker, solver, param, nets: dict, mode: str) -> None:
    """Train to max_iter observing once per iteration; raises what the worker's callbacks raise (Halt, ...)."""
    readback = _Readback(worker, set().union(*(hidden(info, name, mode) for name, info in nets.items())),
                         norms=mode != NONE)
    train, tests = worker.train, worker.tests
    for observer in [train] + [observer for observer, _ in tests]:
        observer.worker = readback
    last_pass = max(param.iter_size, 1) - 1

    def read_tests(iteration: int) -> None:
        for observer, test_iter in tests:
            _read(observer, iteration, test_iter - 1, backward=False)

    if mode == SOLVER:
        def on_start() -> None:
            worker.on_start()
            if _tested(param, solver.iter):
                read_tests(solver.iter)

        def on_gradients_ready() -> None:
            _read(train, solver.iter, last_pass, backward=True)
            worker.on_gradients_ready()

        solver.add_callback(on_start, on_gradients_ready)
        solver.solve()
        # Solver::Solve ends with a forward pass of the train net (display) and a test (test_interval).
        if param.display and solver.iter % param.display == 0:
            _read(train, solver.iter, 0, backward=False)
        if _tested(param, solver.iter, at_end=True):
            read_tests(solver.iter)
        return

    while solver.iter < param.max_iter:
        iteration = solver.iter
        worker.on_start()
        readback.before = _weights_before(worker, train, [o for o, _ in tests] if _tested(param, iteration) else [])
        solver.step(1)
        if _tested(param, iteration):
            read_tests(iteration)
        _read(train, iteration, last_pass, backward=True)
        readback.before = {}
        worker.on_gradients_ready()


def loaded_libcaffe() -> str:
    """The libcaffe this process loaded, from the kernel's map of it (what ran, not what a path suggests)."""
    try:
        maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    except OSError:
        return ""
    return next((line.split()[-1] for line in maps.splitlines() if "/libcaffe" in line), "")


def write_build(run_dir: Path, caffe, offered: dict, mode: str, lost_items: list) -> None:
    """caffe.json: the Caffe the worker loaded and how it observed it (train puts it into the verdict)."""
    (Path(run_dir) / "caffe.json").write_text(json.dumps({
        "pycaffe": str(Path(caffe.__file__).resolve().parent), "libcaffe": loaded_libcaffe(),
        "version": getattr(caffe, "__version__", None), "offers": offered,
        "hooks": mode, "lost": lost_items,
    }, indent=1))
