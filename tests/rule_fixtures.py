"""Toy nets and literal record streams for the rule and report tests (no Caffe).

`records(net, iteration, changes)` produces one iteration in the order Caffe prints it: forward tops
then params layer by layer, backward bottoms then params in reverse layer order (only what needs
backward), one ParamNorms per pass, one IterationEnd. Healthy values unless `changes` says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.netinfo import NetInfo, build
from harness.core.records import BACKWARD, FORWARD, BlobStat, IterationEnd, ParamNorms

NAN, INF = float("nan"), float("inf")


@dataclass
class _Spec:
    """Stands in for caffe_pb2.LayerParameter: what netinfo.build reads from it."""
    lr_mults: tuple = ()
    names: tuple = ()
    propagate_down: tuple = ()
    source: str = ""
    param: list = field(default_factory=list)

    def __post_init__(self):
        self.param = [_Param(m, n) for m, n in zip(self.lr_mults, self.names or ("",) * len(self.lr_mults))]
        self.hdf5_data_param = _Source(self.source)

    def HasField(self, name):
        return name == "hdf5_data_param" and bool(self.source)


@dataclass
class _Param:
    lr_mult: float
    name: str


@dataclass
class _Source:
    source: str


def layer(name, type, bottoms=(), tops=(), num_params=0, loss_weights=None):
    return dict(name=name, type=type, bottoms=list(bottoms), tops=list(tops), num_params=num_params,
                loss_weights=list(loss_weights if loss_weights is not None else [0.0] * len(tops)))


def mlp(extra=(), specs=None, force_backward=False, loss_weight=1.0) -> NetInfo:
    """data (HDF5Data) -> fc1 -> relu1 (in place) -> fc2 -> loss (SoftmaxWithLoss), plus `extra` layers."""
    layers = [
        layer("data", "HDF5Data", tops=("data", "label")),
        layer("fc1", "InnerProduct", ("data",), ("fc1",), 2),
        layer("relu1", "ReLU", ("fc1",), ("fc1",)),
        layer("fc2", "InnerProduct", ("fc1",), ("fc2",), 2),
        *extra,
        layer("loss", "SoftmaxWithLoss", ("fc2", "label"), ("loss",), loss_weights=[loss_weight]),
    ]
    specs = {"data": _Spec(source="train.h5list"), **(specs or {})}
    return build("toy", layers, specs, force_backward)


def spec(**kwargs) -> _Spec:
    return _Spec(**kwargs)


def _stat(iteration, net, pass_index, phase, layer, blob, kind, live, **values) -> BlobStat:
    base = dict(mean_abs=0.5, count=100, nonfinite=0, zero_fraction=0.0, max_abs=2.0, sumsq=30.0)
    base.update(values)
    if not live:
        base = dict(mean_abs=base["mean_abs"])
    return BlobStat(iteration, net, pass_index, phase, layer, blob, kind, **base)


def _healthy(info, phase, kind) -> dict:
    if phase == FORWARD and info.type == "ReLU":
        return dict(mean_abs=0.4, zero_fraction=0.5)
    if phase == FORWARD and kind == "param":
        return dict(mean_abs=0.1)
    if phase == BACKWARD:
        return dict(mean_abs=1e-3, max_abs=1e-2)
    return {}


def records(net: NetInfo, iteration: int, changes=None, live=True, net_name="train", passes=1,
            l2_diff=1.0, loss=2.3, lr=0.01, backward=True) -> list:
    """One iteration. `changes`: {(phase, layer, blob): {field: value}}; blob "param blob K" for params."""
    changes = changes or {}
    out = []

    def add(pass_index, phase, info, blob, kind):
        values = {**_healthy(info, phase, kind), **changes.get((phase, info.name, blob), {})}
        out.append(_stat(iteration, net_name, pass_index, phase, info.name, blob, kind, live, **values))

    for p in range(passes):
        for info in net.layers:
            for top in info.tops:
                add(p, FORWARD, info, top, "top")
            for k in range(len(info.lr_mults)):
                add(p, FORWARD, info, info.param_display(k), "param")
        if not backward:
            continue
        for info in reversed(net.layers):
            if not info.need_backward:
                continue
            for k, bottom in enumerate(info.bottoms):
                if info.bottom_need_backward[k]:
                    add(p, BACKWARD, info, bottom, "bottom")
            for k in range(len(info.lr_mults)):
                if info.param_need_backward[k]:
                    add(p, BACKWARD, info, f"param blob {k}", "param")
        out.append(ParamNorms(iteration, net_name, p, 10.0, 1.0, 5.0, l2_diff))
    if backward:
        out.append(IterationEnd(iteration, loss=loss, lr=lr))
    return out


def stream(net: NetInfo, iterations, changes_at=None, **kwargs) -> list:
    """Several iterations; `changes_at(iteration)` gives that iteration's changes."""
    out = []
    for it in iterations:
        out += records(net, it, changes_at(it) if changes_at else None, **kwargs)
    return out
