"""What every rule sees and how it answers: layer groups in, Findings out.

A rule is a small stateful object because records stream in (live, one layer at a time) and the driver
must be able to stop inside an iteration; its state is only what its thresholds need (streaks,
windows). It never raises to say that it fired: it returns Findings.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

from ..core.netinfo import LayerInfo, NetInfo, SolverInfo
from ..core.records import BACKWARD, BlobStat, Event, IterationEnd, ParamNorms, TestResult
from .findings import Finding

LIVE, LOG = "live", "log"
# Caffe's BatchNorm forces lr_mult 0 on its statistics whatever the prototxt says.
_ALWAYS_FROZEN = {"BatchNorm"}


@dataclass(frozen=True)
class LayerGroup:
    """The consecutive BlobStats of one layer in one phase of one pass, in the order Caffe prints them:
    forward tops then params (data), backward bottoms then params (diff)."""
    iteration: int
    net: str
    pass_index: int
    phase: str
    layer: str
    stats: tuple

    def params(self) -> list:
        return [s for s in self.stats if s.kind == "param"]

    def blobs(self) -> list:
        return [s for s in self.stats if s.kind != "param"]


def param_index(stat: BlobStat, info: Optional[LayerInfo]) -> Optional[int]:
    """K of `param blob K`; forward lines may spell a shared param by its name instead."""
    label = stat.blob.removeprefix("param blob ")
    if label.isdigit():
        return int(label)
    if info is not None and label in info.param_names:
        return info.param_names.index(label)
    return None


def lr_mult(info: Optional[LayerInfo], k: Optional[int]) -> Optional[float]:
    """The parameter's effective lr_mult; None when the net definition does not say."""
    if info is None or k is None or k >= len(info.lr_mults):
        return None
    return 0.0 if info.type in _ALWAYS_FROZEN else info.lr_mults[k]


def is_nonfinite(stat: BlobStat) -> bool:
    """The harness's element count when there is one (live); otherwise Caffe's printed mean |x| (log)."""
    if stat.nonfinite is not None:
        return stat.nonfinite > 0
    return not math.isfinite(stat.mean_abs)


class PassView:
    """The groups seen so far in the current pass of one net (forward and backward share a pass)."""

    def __init__(self, iteration: int, pass_index: int):
        self.iteration = iteration
        self.pass_index = pass_index
        self.groups: list = []

    def group(self, phase: str, layer: str) -> Optional[LayerGroup]:
        for group in reversed(self.groups):
            if group.phase == phase and group.layer == layer:
                return group
        return None

    def stat(self, phase: str, layer: str, blob: str) -> Optional[BlobStat]:
        group = self.group(phase, layer)
        found = [s for s in group.stats if s.blob == blob] if group else []
        return found[0] if found else None

    def has_nonfinite(self) -> bool:
        return any(is_nonfinite(s) for g in self.groups for s in g.stats)


class Context:
    """What the engine shares with every rule: the nets, the solver, the source and the current passes."""

    def __init__(self, nets: dict, solver: Optional[SolverInfo], source: str):
        self.nets = nets
        self.solver = solver
        self.source = source
        self.passes: dict = {}
        self.backward_at: dict = {}      # net -> last iteration with a backward pass (lines or L1/L2 norms)

    def net(self, name: str) -> Optional[NetInfo]:
        return self.nets.get(name)

    def layer(self, net: str, name: str) -> Optional[LayerInfo]:
        info = self.nets.get(net)
        return info.layer(name) if info is not None else None

    def view(self, net: str) -> Optional[PassView]:
        return self.passes.get(net)

    def param_diffs(self, net: str, iteration: int) -> Optional[list]:
        """(layer name, LayerInfo or None, param index or None, BlobStat) for every backward param record of the
        current pass, if `iteration` had a backward pass (else None: e.g. a log between two `display`s).
        Printed diffs accumulate over iter_size passes, so the last pass has them all."""
        view = self.passes.get(net)
        if self.backward_at.get(net) != iteration:
            return None
        found = []
        for group in view.groups if view is not None and view.iteration == iteration else ():
            if group.phase == BACKWARD:
                info = self.layer(net, group.layer)
                found += [(group.layer, info, param_index(stat, info), stat) for stat in group.params()]
        return found

    def add(self, group: LayerGroup) -> None:
        view = self.passes.get(group.net)
        if view is None or (view.iteration, view.pass_index) != (group.iteration, group.pass_index):
            view = self.passes[group.net] = PassView(group.iteration, group.pass_index)
        view.groups.append(group)
        if group.phase == BACKWARD:
            self.backward_at[group.net] = group.iteration

    def add_norms(self, norms: ParamNorms) -> None:
        # Caffe prints the L1/L2 line after every backward pass, even when no layer prints a diff.
        self.backward_at[norms.net] = norms.iteration


class Rule:
    """Base of every rule: `name` is its section in the config; hooks return new Findings."""
    name = ""

    def __init__(self, settings, context: Context):
        self.settings = settings
        self.context = context

    def on_layer(self, group: LayerGroup) -> list:
        return []

    def on_norms(self, norms: ParamNorms) -> list:
        return []

    def on_iteration(self, end: IterationEnd) -> list:
        return []

    def on_test(self, result: TestResult) -> list:
        return []

    def on_event(self, event: Event) -> list:
        return []

    def finish(self) -> list:
        return []

    def finding(self, **kwargs) -> Finding:
        """A Finding carrying this rule's name, its policy as the severity and the thresholds in force."""
        thresholds = {k: v for k, v in asdict(self.settings).items() if k != "policy"}
        return Finding(rule=self.name, severity=self.settings.policy, thresholds=thresholds, **kwargs)

