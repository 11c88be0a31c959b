"""Load a solver the way `caffe train` does, and write the effective solver and nets into the run dir.

Paths in a solver are relative to the working directory for `caffe train`; people also expect them
relative to the solver file. We try the working directory first, then the solver's folder, and say
which one was used. Data sources inside the nets get the same treatment, relative to the net file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from google.protobuf import text_format

from ..core.caffe_proto import caffe_pb2
from ..core.errors import HarnessError
from ..core.netinfo import SolverInfo

# Data layers whose `source` names a file (HDF5 list, LMDB folder, image list).
_SOURCE_FIELDS = ("hdf5_data_param", "data_param", "image_data_param", "window_data_param")


@dataclass
class LoadedSolver:
    path: Path
    param: object                          # caffe_pb2.SolverParameter, as written in the file
    nets: dict = field(default_factory=dict)   # "train" / "test0"... -> (source path, NetParameter)
    notes: list = field(default_factory=list)  # how relative paths were resolved
    python_paths: list = field(default_factory=list)  # folders of nets with Python layers


def read_prototxt(path: Path, message):
    """Parse a text prototxt into `message`; errors name file:line:column."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file.") from None
    except OSError as error:
        raise HarnessError(f"{path}: cannot be read ({error.strerror}).") from None
    try:
        text_format.Merge(text, message)
    except text_format.ParseError as error:
        raise HarnessError(f"{path}:{error}. Fix the prototxt syntax there "
                           f"(field names are those of caffe.proto's {type(message).__name__}).") from None
    return message


def _resolve(name: str, relative_to: Path, what: str, notes: list) -> Path:
    candidate = Path(name)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    beside = relative_to / name
    if beside.exists():
        notes.append(f"{what} '{name}' was not found relative to the working directory; "
                     f"using {beside.resolve()} (relative to {relative_to}).")
        return beside.resolve()
    raise HarnessError(f"{what} '{name}' does not exist, neither relative to the working directory "
                       f"({Path.cwd()}) nor relative to {relative_to}.")


def _resolve_sources(net, net_dir: Path, net_path: Path, notes: list) -> None:
    for layer in net.layer:
        for sub in _SOURCE_FIELDS:
            if layer.HasField(sub) and getattr(layer, sub).source:
                param = getattr(layer, sub)
                param.source = str(_resolve(param.source, net_dir,
                                            f"data source of layer '{layer.name}' in {net_path}", notes))
                if sub == "hdf5_data_param":
                    _check_hdf5_list(Path(param.source), layer.name, net_path)


def _check_hdf5_list(source: Path, layer: str, net_path: Path) -> None:
    """HDF5Data opens each listed file relative to the working directory and aborts on the first missing."""
    try:
        listed = [line.strip() for line in source.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise HarnessError(f"{source} (source of layer '{layer}' in {net_path}) cannot be read as a list of "
                           f"HDF5 files ({error}).") from None
    if not listed:
        raise HarnessError(f"{source} (source of layer '{layer}' in {net_path}) lists no HDF5 files.")
    missing = [name for name in listed if not Path(name).exists()]
    if missing:
        raise HarnessError(f"{source} (source of layer '{layer}' in {net_path}) lists {len(missing)} file(s) that "
                           f"do not exist, e.g. '{missing[0]}'. HDF5Data opens them relative to the working "
                           f"directory ({Path.cwd()}): use absolute paths or regenerate the data.")


def load(path: str) -> LoadedSolver:
    pb2 = caffe_pb2()
    solver_path = Path(path)
    param = read_prototxt(solver_path, pb2.SolverParameter())
    loaded = LoadedSolver(path=solver_path.resolve(), param=param)
    solver_dir = solver_path.resolve().parent

    def net_from_file(name: str, role: str):
        net_path = _resolve(name, solver_dir, f"{role} net of {solver_path}", loaded.notes)
        net = read_prototxt(net_path, pb2.NetParameter())
        _resolve_sources(net, net_path.parent, net_path, loaded.notes)
        if any(layer.type == "Python" for layer in net.layer) and str(net_path.parent) not in loaded.python_paths:
            loaded.python_paths.append(str(net_path.parent))
        return net_path, net

    def inline(net_param, role):
        net = pb2.NetParameter()
        net.CopyFrom(net_param)
        _resolve_sources(net, solver_dir, solver_path, loaded.notes)
        return solver_path.resolve(), net

    if param.HasField("train_net"):
        loaded.nets["train"] = net_from_file(param.train_net, "train")
    elif param.HasField("train_net_param"):
        loaded.nets["train"] = inline(param.train_net_param, "train")
    elif param.HasField("net"):
        loaded.nets["train"] = net_from_file(param.net, "train")
    elif param.HasField("net_param"):
        loaded.nets["train"] = inline(param.net_param, "train")
    else:
        raise HarnessError(f"{solver_path}: the solver names no net. Add `net: \"path/to/net.prototxt\"` "
                           "(or train_net / net_param).")
    test_files = list(param.test_net)
    test_params = list(param.test_net_param)
    num_tests = len(param.test_iter)
    for k, name in enumerate(test_files):
        loaded.nets[f"test{k}"] = net_from_file(name, f"test #{k}")
    for k, net_param in enumerate(test_params):
        loaded.nets[f"test{len(test_files) + k}"] = inline(net_param, f"test #{k}")
    if not test_files and not test_params and (param.HasField("net") or param.HasField("net_param")):
        # One net file for both phases: Caffe builds `test_iter` test nets from it.
        for k in range(num_tests):
            loaded.nets[f"test{k}"] = loaded.nets["train"]
    if num_tests and num_tests != sum(1 for name in loaded.nets if name.startswith("test")):
        raise HarnessError(f"{solver_path}: test_iter is given {num_tests} time(s) but the solver has "
                           f"{sum(1 for n in loaded.nets if n.startswith('test'))} test net(s): give one test_iter per test net.")
    return loaded


SAMPLE, EVERY = "sample", "every"
CROSSCHECK_MODES = (SAMPLE, EVERY)


def sampled_display(user_display: int, mode: str, every_iters: int) -> int:
    """The effective solver's `display`: Caffe prints its debug lines (and the loss) only on iterations
    divisible by it. `every`: 1. `sample`: the user's interval where it is at most `every_iters`, else the
    largest interval that divides both it and `every_iters` (so Caffe still prints at the user's iterations,
    and at least every `every_iters`); `every_iters` itself without a user interval."""
    if mode == EVERY:
        return 1
    if 0 < user_display <= every_iters:
        return user_display
    return math.gcd(user_display, every_iters)


@dataclass(frozen=True)
class Overrides:
    display: int = 1                 # Caffe prints debug lines only on iterations divisible by this
    max_iter: Optional[int] = None
    snapshot_every: int = 0          # 0: only on halt and at the end
    gpu: Optional[int] = None        # the GPU the worker selects itself (--gpu); None: the CPU


@dataclass(frozen=True)
class Change:
    """A setting of the effective solver that differs from the user's, and why."""
    setting: str
    yours: str
    effective: str
    why: str

    def as_text(self) -> str:
        return f"{self.setting}: {self.yours} -> {self.effective} ({self.why})"


_NET_FIELDS = ("net", "net_param", "train_net", "train_net_param", "test_net", "test_net_param")
_WHY = {
    "debug_info": "the harness cross-checks Caffe's per-layer debug lines",
    "display": "Caffe prints its debug lines only on iterations divisible by display, which the harness "
               "cross-checks: your display, at least every crosscheck.every_iters; --crosscheck every for 1",
    "max_iter": "--max-iter",
    "snapshot": "the harness snapshots on a halt, at the end, and every --snapshot-every S iterations",
    "snapshot_after_train": "the harness takes the final snapshot itself",
    "snapshot_prefix": "snapshots go into the run directory",
}


def _shown(param, name: str) -> str:
    """A solver field's value as a prototxt says it; an unset field shows its default, or `(unset)` where it
    has none worth showing (a path, a net)."""
    value = getattr(param, name)
    descriptor = param.DESCRIPTOR.fields_by_name[name]
    if hasattr(value, "extend"):   # a repeated field (FieldDescriptor.label is gone in protobuf 6)
        items = ["(inline net)" if descriptor.message_type else f'"{v}"' for v in value]
        return ", ".join(items) if items else "(unset)"
    if descriptor.message_type or (isinstance(value, str) and not param.HasField(name)):
        return ("(inline net)" if descriptor.message_type else f'"{value}"') if param.HasField(name) else "(unset)"
    if descriptor.enum_type:
        return descriptor.enum_type.values_by_number[value].name
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def changes(user, effective, gpu: Optional[int]) -> list:
    """Every setting `effective` (the solver written into the run directory) changes from `user`'s, with
    the reason. The net fields become one change: the nets are copied with every path made absolute."""
    found = []
    if any(_shown(user, name) != _shown(effective, name) for name in _NET_FIELDS):
        yours = "; ".join(f"{name}: {_shown(user, name)}" for name in _NET_FIELDS if _shown(user, name) != "(unset)")
        found.append(Change("nets", yours, "copies in the run directory",
                            "the effective nets, with every data path made absolute"))
    for name, why in _WHY.items():
        if _shown(user, name) != _shown(effective, name):
            found.append(Change(name, _shown(user, name), _shown(effective, name), why))
    # The effective file says CPU either way: the worker switches to the GPU itself (--gpu N). Without the
    # field `caffe train` trains on the CPU unless given -gpu, whatever caffe.proto's default says.
    runs_on = "CPU" if gpu is None else "GPU"
    yours = _shown(user, "solver_mode") if user.HasField("solver_mode") else "CPU"
    if yours != runs_on:
        why = "the harness trains on the CPU unless given --gpu N" if gpu is None else f"--gpu {gpu}"
        found.append(Change("solver_mode", yours, runs_on, why))
    return found


def write_effective(loaded: LoadedSolver, run_dir: Path, overrides: Overrides) -> tuple:
    """Write solver.prototxt and the nets into run_dir with every path absolute.

    Returns (the solver's path, {"train" / "test0" / ...: the path of the net file Caffe builds it from},
    the Changes from the user's solver)."""
    pb2 = caffe_pb2()
    param = pb2.SolverParameter()
    param.CopyFrom(loaded.param)
    for name in ("net", "net_param", "train_net", "train_net_param", "test_net", "test_net_param"):
        param.ClearField(name)
    def write(net, name: str, source: Path) -> str:
        target = run_dir / name
        target.write_text(f"# effective copy of {source}\n" + text_format.MessageToString(net))
        return str(target)

    train_source, train_net = loaded.nets["train"]
    if all(net is train_net for _, net in loaded.nets.values()):
        param.net = write(train_net, "net.prototxt", train_source)   # one file, both phases
        net_files = {role: param.net for role in loaded.nets}
    else:
        net_files = {}
        for role, (source, net) in loaded.nets.items():   # insertion order is test-net order
            net_files[role] = path = write(net, f"{role}_net.prototxt", source)
            if role == "train":
                param.train_net = path
            else:
                param.test_net.append(path)
    param.debug_info = True
    param.display = overrides.display
    if overrides.max_iter is not None:
        param.max_iter = overrides.max_iter
    param.snapshot = overrides.snapshot_every
    param.snapshot_after_train = False
    (run_dir / "snapshots").mkdir(exist_ok=True)
    param.snapshot_prefix = str(run_dir / "snapshots" / "snapshot")
    param.solver_mode = pb2.SolverParameter.CPU   # the worker switches to GPU when asked
    path = run_dir / "solver.prototxt"
    path.write_text(f"# effective solver for {loaded.path}\n" + text_format.MessageToString(param))
    return path, net_files, changes(loaded.param, param, overrides.gpu)


def solver_info(loaded: LoadedSolver) -> SolverInfo:
    return info_from_param(loaded.param, str(loaded.path),
                           {role: str(source) for role, (source, _) in loaded.nets.items()})


# The enum that named the solver before its `type` string (2016); caffe.proto of forks from then has only it.
_SOLVER_TYPES = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp",
                 "ADADELTA": "AdaDelta", "ADAM": "Adam"}


def _solver_type(p) -> str:
    if "type" in p.DESCRIPTOR.fields_by_name and p.type:
        return p.type
    if "solver_type" in p.DESCRIPTOR.fields_by_name and p.HasField("solver_type"):
        return _SOLVER_TYPES.get(p.SolverType.Name(p.solver_type), "SGD")
    return "SGD"


def info_from_param(p, solver_path: str = "", net_paths: Optional[dict] = None) -> SolverInfo:
    """The solver facts rules quote, from a SolverParameter (a file's, or one echoed in a log)."""
    return SolverInfo(
        solver_path=solver_path, net_paths=net_paths or {},
        type=_solver_type(p), base_lr=p.base_lr, lr_policy=p.lr_policy or "fixed",
        gamma=p.gamma if p.HasField("gamma") else None, power=p.power if p.HasField("power") else None,
        stepsize=p.stepsize if p.HasField("stepsize") else None,
        momentum=p.momentum if p.HasField("momentum") else None,
        weight_decay=p.weight_decay if p.HasField("weight_decay") else None,
        clip_gradients=p.clip_gradients if p.clip_gradients >= 0 else None,
        iter_size=p.iter_size, max_iter=p.max_iter, display=p.display,
        test_interval=p.test_interval if p.HasField("test_interval") else None,
        random_seed=p.random_seed if p.random_seed >= 0 else None)
