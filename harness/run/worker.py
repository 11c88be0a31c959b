"""The worker process: the only one that imports caffe. It steps the solver, computes the statistics of
every blob right after Caffe's own debug line for it (pycaffe's after_forward / after_backward hooks;
builds without them are read back once per iteration by stepping.py), feeds them to the rules, stops
inside the iteration when a rule halts, and sends records to the supervisor as JSON lines on a file
descriptor of their own. A Caffe CHECK failure kills only this process.

Run as `python -m harness.run.worker SPEC.json` by the supervisor (harness/run/supervisor.py).
"""
from __future__ import annotations

import difflib
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..core import netinfo
from ..core.errors import HarnessError
from ..core.netinfo import SolverInfo
from ..core.records import (BlobStat, Event, IterationEnd, ParamNorms, TestResult, BACKWARD, FORWARD, TRAIN,
                            test_net_name, to_json)
from ..rules import config as harness_config
from ..rules.engine import RuleEngine
from . import dump, gpu_stats, pycaffe, stepping, topology
from .inputs import locate_nonfinite
from .stats import has_caffe_stats, param_norms, summarize, summarize_blob


class Halt(Exception):
    """A rule with policy halt fired; raised inside a Caffe callback to stop before the weights update."""


class StopRequested(Exception):
    """SIGINT / SIGTERM arrived; raised at the next iteration boundary."""


class TargetReached(Exception):
    """A replay (`harness reproduce`) reached the iteration, and layer, it was asked to stop at."""


class Channel:
    """Records to the supervisor: buffered, written once per iteration so the hot path stays cheap."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "w", buffering=1 << 20)
        self._pending = []

    def record(self, record) -> None:
        self._pending.append(to_json(record))

    def control(self, what: str, /, **fields) -> None:
        """A message about the run itself (started, finding, end), told apart by its "control" key."""
        self._pending.append(json.dumps({"control": what, **fields}, default=str))

    def flush(self) -> None:
        if self._pending:
            self._file.write("\n".join(self._pending) + "\n")
            self._pending.clear()
        self._file.flush()


def _phase_layer_params(net_param, phase: int) -> dict:
    """Layer name -> LayerParameter for the layers a net of `phase` keeps (include/exclude by phase)."""
    kept = {}
    for layer in net_param.layer:
        if layer.include and not any(not rule.HasField("phase") or rule.phase == phase for rule in layer.include):
            continue
        if any(rule.HasField("phase") and rule.phase == phase for rule in layer.exclude):
            continue
        kept[layer.name] = layer
    return kept


def describe_net(net, net_param, phase: int, source: str) -> netinfo.NetInfo:
    blob_names = list(net._blob_names)
    index = {name: j for j, name in enumerate(blob_names)}
    loss_weights = list(net._blob_loss_weights)
    layer_names = list(net._layer_names)
    kept = _phase_layer_params(net_param, phase)
    if hasattr(net, "_top_ids"):
        tops = [[blob_names[j] for j in net._top_ids(i)] for i in range(len(layer_names))]
        bottoms = [[blob_names[j] for j in net._bottom_ids(i)] for i in range(len(layer_names))]
    else:   # an older pycaffe: the blobs follow from the prototxt and Caffe's Split insertion
        bottoms, tops = topology.blob_names([kept[name] for name in layer_names if name in kept],
                                            list(net_param.input), layer_names, source)
    layers = [dict(name=name, type=net.layers[i].type, tops=tops[i], bottoms=bottoms[i],
                   num_params=len(net.layers[i].blobs), loss_weights=[loss_weights[index[t]] for t in tops[i]])
              for i, name in enumerate(layer_names)]
    return netinfo.build(net_param.name, layers, kept, net_param.force_backward)


class NetObserver:
    """Computes the statistics of one net's blobs after each layer, exactly where Caffe prints them."""

    def __init__(self, net, name: str, info: netinfo.NetInfo, worker: "Worker"):
        self.net, self.name, self.info, self.worker = net, name, info, worker
        blobs = dict(zip(net._blob_names, net._blobs))
        self.tops, self.bottoms, self.params = [], [], []
        seen_param_names = set()
        # Caffe's learnable_params_ (each possibly shared parameter once) for the norms line: the index
        # into them of each layer's parameter k when this layer owns it (its first user, which is the last
        # one whose backward adds to the shared diff), else None.
        self.owned_index = []
        owned_count = 0
        for i, layer in enumerate(info.layers):
            self.tops.append([(blobs[name], name) for name in layer.tops])
            self.bottoms.append([(blobs[name], name) for k, name in enumerate(layer.bottoms)
                                 if layer.need_backward and layer.bottom_need_backward[k]])
            params = list(net.layers[i].blobs)
            self.params.append(params)
            owned = []
            for k in range(len(params)):
                param_name = layer.param_names[k] if k < len(layer.param_names) else ""
                if not param_name or param_name not in seen_param_names:
                    seen_param_names.add(param_name)
                    owned.append(owned_count)
                    owned_count += 1
                else:
                    owned.append(None)
            self.owned_index.append(owned)
        # The owned parameters' summaries of this pass, data from the forward and diff from the backward:
        # the norms are their totals, so no parameter is summarized twice.
        self.param_data, self.param_diff = [None] * owned_count, [None] * owned_count
        self.loss_blobs = [(blobs[name], w) for name, w in zip(net._blob_names, net._blob_loss_weights) if w]
        self.last_layer = len(info.layers) - 1
        self.pass_index = -1
        self.pass_iteration = None
        self.pass_losses = []

    def _stat(self, phase, layer, blob_name, kind, summary, printed):
        s = summary
        return BlobStat(self.worker.iteration, self.name, self.pass_index, phase, layer, blob_name, kind,
                        s.mean_abs, s.count, s.nonfinite, s.zero_fraction, s.max_abs, None, s.overflow, printed)

    def _param_summaries(self, i: int, which: str, kept: list) -> list:
        """Summaries of layer i's parameters' data or diff; the owned ones also kept for the norms."""
        summaries = []
        for blob, owned in zip(self.params[i], self.owned_index[i]):
            summary = self.worker.measure(blob, which, owned is not None and self.name == TRAIN)
            if owned is not None:
                kept[owned] = summary
            summaries.append(summary)
        return summaries

    def after_forward(self, i: int) -> None:
        if i == 0:
            # A pass starts: the next block of an iteration (iter_size), the next test batch, or the
            # forward-only pass Caffe runs after max_iter. Iterations advance only in the update.
            iteration = self.worker.solver.iter
            if iteration != self.pass_iteration:
                self.pass_iteration, self.pass_index, self.pass_losses = iteration, -1, []
            self.worker.iteration = iteration
            self.pass_index += 1
        layer = self.info.layers[i]
        printed = self.name != TRAIN or self.worker.displays()
        stats = [self._stat(FORWARD, layer.name, blob_name, "top", self.worker.measure(blob, "data"), printed)
                 for blob, blob_name in self.tops[i]]
        stats += [self._stat(FORWARD, layer.name, layer.param_display(k), "param", summary, printed)
                  for k, summary in enumerate(self._param_summaries(i, "data", self.param_data))]
        if i == self.last_layer and self.name == TRAIN:
            self.pass_losses.append(sum(w * float(blob.data.sum()) for blob, w in self.loss_blobs))
        self.worker.observe(stats)

    def after_backward(self, i: int) -> None:
        layer = self.info.layers[i]
        printed = self.worker.displays() and layer.need_backward
        stats = [self._stat(BACKWARD, layer.name, blob_name, "bottom", self.worker.measure(blob, "diff"), printed)
                 for blob, blob_name in self.bottoms[i]]
        # Parameters Caffe skips (frozen, or cut off from the loss) are still recorded, marked unprinted:
        # a zero gradient is exactly what the no_gradient rule looks for.
        stats += [self._stat(BACKWARD, layer.name, f"param blob {k}", "param", summary,
                             printed and layer.param_need_backward[k])
                  for k, summary in enumerate(self._param_summaries(i, "diff", self.param_diff))]
        self.worker.observe(stats)
        if i == 0:
            # Backward runs from the last layer to layer 0, so every owned diff is final here.
            self.worker.observe_norms(self._norms())

    def _norms(self) -> ParamNorms:
        return ParamNorms(self.worker.iteration, self.name, self.pass_index,
                          *param_norms(self.param_data, self.param_diff),
                          count=sum(s.count for s in self.param_data))


class Worker:
    def __init__(self, spec: dict):
        self.spec = spec
        self.channel = Channel(spec["record_fd"])
        self.display = spec["display"]
        self.debug_info = False   # whether Caffe prints the train net's debug lines now (set per iteration)
        self.iteration = 0
        self.started = time.monotonic()
        self.stop_signal = None
        self.smoothed = []
        self.target = spec.get("stop_at")

    def displays(self) -> bool:
        return self.debug_info

    def observe(self, stats) -> None:
        for stat in stats:
            self.channel.record(stat)
        self.engine.feed_layer(stats)
        on_train = stats and stats[0].net == TRAIN     # replay targets name train-net layers
        self._stop_if_due(stats[0].phase if on_train else None, stats[0].layer if on_train else None)

    def observe_norms(self, norms: ParamNorms) -> None:
        self.channel.record(norms)
        self.engine.feed(norms)
        self._stop_if_due(None, None)

    def _stop_if_due(self, phase, layer, at_iteration_end: bool = False) -> None:
        """Stop inside the iteration when a rule halts, or when a replay reaches its target."""
        if self.engine.halt is not None:
            raise Halt()
        target = self.target
        if target is None or self.iteration != target["iteration"]:
            return
        if target.get("layer") is None:
            if at_iteration_end:
                raise TargetReached()
        elif layer == target["layer"] and target.get("phase") in (None, phase):
            raise TargetReached()

    # Solver callbacks: on_start opens an iteration, on_gradients_ready closes it before the update.
    def on_start(self) -> None:
        if self.stop_signal is not None:
            raise StopRequested()
        # Solver::Step sets the train net's debug_info right after this callback, from this iteration; the
        # forward pass Solver::Solve adds after max_iter keeps the last iteration's setting.
        self.debug_info = self.display > 0 and self.solver.iter % self.display == 0

    def on_gradients_ready(self) -> None:
        net = self.solver.net
        outputs = {}
        for name in net.outputs:
            values = net.blobs[name].data.reshape(-1)
            outputs[name] = float(values[0]) if values.size == 1 else [float(v) for v in values]
        loss = sum(self.train.pass_losses) / max(len(self.train.pass_losses), 1)
        # Caffe's displayed loss: the mean of the last `average_loss` iteration losses.
        self.smoothed = (self.smoothed + [loss])[-self.average_loss:]
        end = IterationEnd(self.iteration, loss, sum(self.smoothed) / len(self.smoothed), outputs,
                           getattr(self.solver, "lr", None), time.monotonic() - self.started)
        self.channel.record(end)
        self.engine.feed(end)
        self.channel.flush()
        self._stop_if_due(None, None, at_iteration_end=True)

    def _test_hook(self, observer: "NetObserver", test_iter: int):
        """After each test-net layer: the statistics; after the last batch of a test: Caffe's
        `Test net output` values, the mean of each output over the `test_iter` batches."""
        sums = {}

        def after_forward(i: int) -> None:
            observer.after_forward(i)
            if i != observer.last_layer:
                return
            for name in observer.net.outputs:
                values = observer.net.blobs[name].data.reshape(-1).astype(float)
                sums[name] = sums[name] + values if name in sums else values
            if observer.pass_index == test_iter - 1:
                outputs = {name: float(total[0] / test_iter) if total.size == 1 else list(total / test_iter)
                           for name, total in sums.items()}
                result = TestResult(self.iteration, observer.name, outputs)
                self.channel.record(result)
                self.engine.feed(result)
                sums.clear()
        return after_forward

    def run(self) -> int:
        spec = self.spec
        for path in spec["python_paths"]:
            sys.path.insert(0, path)
        caffe = pycaffe.load()   # only here: libcaffe lives in this process alone
        from caffe.proto import caffe_pb2
        from google.protobuf import text_format
        self.measure, statistics = _blob_summarizer(caffe, spec.get("gpu") is not None)

        # Each net file parsed once (GoogLeNet's takes 60 ms): for the type check, then to describe the nets.
        net_params = {role: text_format.Merge(Path(path).read_text(), caffe_pb2.NetParameter())
                      for role, path in spec["net_files"].items()}
        unknown = _unknown_layer_types(net_params, spec["net_sources"], set(caffe.layer_type_list()))
        if unknown:
            return self._refuse(unknown)
        if spec.get("gpu") is not None:
            caffe.set_device(spec["gpu"])
            caffe.set_mode_gpu()
        else:
            caffe.set_mode_cpu()
        self.solver = solver = caffe.get_solver(spec["solver"])
        solver_param = text_format.Merge(Path(spec["solver"]).read_text(), caffe_pb2.SolverParameter())
        self.average_loss = max(solver_param.average_loss, 1)
        ignored = []
        if spec.get("weights"):
            for weights in spec["weights"]:
                self._step("weights", file=weights)
                ignored += _ignored_source_layers(weights, set(solver.net._layer_names), caffe_pb2)
                solver.net.copy_from(weights)
                for test_net in solver.test_nets:
                    test_net.copy_from(weights)
        if spec.get("snapshot"):
            self._step("snapshot", file=spec["snapshot"])
            solver.restore(spec["snapshot"])
        self._step("hooks")

        offered = stepping.offers(caffe, solver)
        try:
            self.hooks = stepping.choose(spec.get("hooks") or stepping.AUTO, offered)
            nets = self._observe_nets(solver, solver_param, caffe_pb2, net_params)
        except HarnessError as error:   # a build that cannot run this net or mode: said once, exit 2
            return self._refuse(str(error))
        lost = stepping.lost(self.hooks, nets, solver_param.iter_size, list(solver_param.test_iter), offered)
        stepping.write_build(spec["run_dir"], caffe, offered, self.hooks, lost)
        (Path(spec["run_dir"]) / "nets.json").write_text(
            json.dumps({name: netinfo.to_dict(info) for name, info in nets.items()}, indent=1))
        self.engine = RuleEngine(stepping.rules_config(harness_config.load(spec["config"]), self.hooks), nets,
                                 SolverInfo(**spec["solver_info"]), source="live")
        for name in ignored:   # what Caffe logs as `Ignoring source layer X` while copying weights
            event = Event(None, "ignored_source_layer", name)
            self.channel.record(event)
            self.engine.feed(event)
        if self.hooks == stepping.LAYERS:
            solver.add_callback(self.on_start, self.on_gradients_ready)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request_stop)
        self.channel.control("started", iteration=solver.iter, max_iter=solver_param.max_iter,
                             statistics=statistics)
        self.channel.flush()
        status = "ok"
        try:
            if self.hooks == stepping.LAYERS:
                solver.solve()
            else:
                stepping.solve(self, solver, solver_param, nets, self.hooks)
            self.iteration = solver.iter
        except Halt:
            status = "halted"
        except StopRequested:
            status = "interrupted"
        except TargetReached:
            status = "target"
        if spec.get("dump") and status in ("target", "halted"):
            self.channel.control("dump", rows=dump.save(spec["dump"], dump.net_arrays(solver.net)))
        self.channel.flush()
        if spec.get("interactive"):
            self._interact(caffe, solver)
        for finding in self._findings(nets):
            self.channel.control("finding", **finding.as_verdict_entry())
        snapshot = self._snapshot(solver)   # the last good state at a halt; the trained weights otherwise
        self.channel.control("end", status=status, iterations_run=solver.iter, snapshot=snapshot,
                             signal=self.stop_signal)
        self.channel.flush()
        return 0

    def _step(self, step: str, **details) -> None:
        """Tell the supervisor what comes next, before doing it: a Caffe abort there is that step's."""
        self.channel.control("step", step=step, **details)
        self.channel.flush()

    def _observe_nets(self, solver, solver_param, caffe_pb2, net_params: dict) -> dict:
        """Describe the train and test nets as Caffe built them and hook an observer to each."""
        def describe(net, role: str, phase):
            return describe_net(net, net_params[role], phase, self.spec["net_sources"][role])

        nets = {TRAIN: describe(solver.net, TRAIN, caffe_pb2.TRAIN)}
        self.train = NetObserver(solver.net, TRAIN, nets[TRAIN], self)
        self.tests = []
        for k, test_net in enumerate(solver.test_nets):
            name = test_net_name(k)
            nets[name] = describe(test_net, name, caffe_pb2.TEST)
            self.tests.append((NetObserver(test_net, name, nets[name], self), solver_param.test_iter[k]))
        if self.hooks == stepping.LAYERS:   # otherwise stepping.solve reads the nets back once per iteration
            solver.net.after_forward(self.train.after_forward)
            solver.net.after_backward(self.train.after_backward)
            for (observer, test_iter), test_net in zip(self.tests, solver.test_nets):
                test_net.after_forward(self._test_hook(observer, test_iter))
        return nets

    def _findings(self, nets):
        findings = list(self.engine.findings) + list(self.engine.finish())
        located = []
        for finding in findings:
            layer = nets.get(finding.net, nets[TRAIN]).layer(finding.layer)
            if finding.kind == "nonfinite" and layer is not None and not layer.bottoms and layer.source:
                places = locate_nonfinite(layer.source, finding.blob)
                if places:
                    where = "; ".join(f"{p['file']}, dataset {p['dataset']}, row {p['row']} "
                                      f"({p['nonfinite']} value{'s' if p['nonfinite'] > 1 else ''})" for p in places)
                    finding = replace(finding, evidence={**finding.evidence, "nonfinite_in": places},
                                      message=f"{finding.message} Non-finite values in: {where}.",
                                      suggestions=(f"fix or drop these samples: {where}", *finding.suggestions))
            located.append(finding)
        return located

    def _snapshot(self, solver):
        folder = Path(self.spec["run_dir"], "snapshots")
        before = set(folder.iterdir())
        if hasattr(solver, "snapshot"):
            solver.snapshot()
        else:   # pycaffe before 2016: the weights alone, named the way Caffe names its snapshots
            solver.net.save(str(folder / f"snapshot_iter_{solver.iter}.caffemodel"))
        written = sorted(set(folder.iterdir()) - before)
        return [str(p) for p in written]

    def _refuse(self, text: str) -> int:
        self.channel.control("error", text=text)
        self.channel.flush()
        return 2

    def _interact(self, caffe, solver) -> None:
        """A Python prompt on the user's terminal, whose descriptors the supervisor passed along."""
        import code
        import numpy
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C cancels a line, as usual
        for target, fd in enumerate(self.spec["terminal_fds"]):
            os.dup2(fd, target)
        sys.stdin, sys.stdout, sys.stderr = (os.fdopen(0, "r"), os.fdopen(1, "w", buffering=1),
                                             os.fdopen(2, "w", buffering=1))
        names = {"net": solver.net, "solver": solver, "blobs": solver.net.blobs, "params": solver.net.params,
                 "caffe": caffe, "np": numpy}
        code.interact(banner=f"Stopped at iteration {self.iteration}. Bound: {', '.join(names)}. Ctrl-D leaves.",
                      local=names, exitmsg="")

    def _request_stop(self, signum, frame) -> None:
        self.stop_signal = signal.Signals(signum).name


# HARNESS_STATS=numpy measures with numpy even where Caffe's own numbers are there: to compare the two
# paths, and for the tests of the one a user's own Caffe build takes.
FORCE_NUMPY = "HARNESS_STATS"


def _blob_summarizer(caffe, on_gpu: bool) -> tuple:
    """How a blob is measured, and by what ("caffe", "cupy" or "numpy", for the cross-check): by Caffe's
    own calls where this pycaffe has them (exact, and on the GPU where the blob lives); else on the GPU with
    CuPy, where only the reductions come to the host (pycaffe's .data would copy the whole blob to the host
    and make the next layer copy it back); else with numpy."""
    forced = os.environ.get(FORCE_NUMPY) == "numpy"
    if has_caffe_stats(caffe) and not forced:
        return summarize_blob, "caffe"
    if on_gpu and not forced and gpu_stats.cupy_available():
        return gpu_stats.summarize_blob, "cupy"
    return (lambda blob, which, with_sumsq=False: summarize(getattr(blob, which), with_sumsq)), "numpy"


def _ignored_source_layers(weights: str, net_layers: set, caffe_pb2) -> list:
    """Layers of a .caffemodel that the net has no layer of the same name for: Caffe skips them silently
    (pycaffe's copy_from only logs it), which is how renamed layers end up untrained."""
    source = caffe_pb2.NetParameter()
    source.ParseFromString(Path(weights).read_bytes())
    return [layer.name for layer in list(source.layer) + list(source.layers) if layer.name not in net_layers]


def _unknown_layer_types(net_params: dict, net_sources: dict, known: set):
    """Caffe aborts on an unknown layer type with a list of every type; say it once, with the user's file."""
    by_lower = {name.lower(): name for name in known}
    for role, net in net_params.items():
        for layer in net.layer:
            if layer.type not in known:
                close = difflib.get_close_matches(layer.type.lower(), sorted(by_lower), n=3)
                hint = f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?" if close else ""
                return (f"{net_sources[role]}: layer '{layer.name}' has type '{layer.type}', which this Caffe build does not "
                        f"know.{hint} (Custom C++ layers need a Caffe built with them; Python layers use "
                        "type: \"Python\".)")
    return None


def main(argv) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    return Worker(spec).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
