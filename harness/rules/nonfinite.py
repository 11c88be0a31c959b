"""nonfinite: the first NaN/Inf, named after the layer that produced it.

Groups arrive in execution order (forward: layer by layer; backward: in reverse), and this rule fires
on the first group holding a non-finite value, so every earlier group was finite: in forward the
layer's inputs were finite, in backward the diffs of its tops were. The first offender is therefore
the producer, never a layer that merely passes NaN on. Reported once: after that, NaN is everywhere.
"""
from __future__ import annotations

from ..core.records import FORWARD
from . import structure, suggest
from .base import LOG, Rule, is_nonfinite


# Layers that turn finite inputs into NaN/Inf outside their domain, and that domain's violation.
_DOMAINS = {"Log": "a log of a value <= 0", "Power": "a fractional power of a negative value or 0 to a negative power"}


def _first(stats: list):
    # Prefer what Caffe prints, so the finding names the line a reader finds first in caffe.log.
    printed = [s for s in stats if s.printed]
    return (printed or stats)[0]


def _describe(stat) -> str:
    if stat.kind == "param":
        return stat.blob
    return f"{stat.kind} blob {stat.blob}"


class Nonfinite(Rule):
    name = "nonfinite"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.reported = False

    def on_layer(self, group):
        if self.reported:
            return []
        bad = [s for s in group.stats if is_nonfinite(s)]
        if not bad:
            return []
        self.reported = True
        info = self.context.layer(group.net, group.layer)
        params = [s for s in bad if s.kind == "param"]
        if group.phase == FORWARD and params:
            return [self._corrupted_param(group, _first(params), info)]
        stat = _first(bad)
        cause, explanation, suggestions = (self._forward_cause if group.phase == FORWARD
                                           else self._backward_cause)(group, info)
        where = f"layer {group.layer}" + (f" ({info.type})" if info else "")
        inputs = "its inputs and parameters were finite" if group.phase == FORWARD \
            else "the diffs of its tops were finite"
        message = (f"{_describe(stat)} of {where} became non-finite ({stat.mean_abs}) in {group.phase} at "
                   f"iteration {group.iteration} while {inputs}: {explanation}.{self._log_caveat(stat)}")
        return [self._finding(group, stat, message, cause, suggestions)]

    def _finding(self, group, stat, message, cause, suggestions, phase=None, **evidence):
        return self.finding(
            kind="nonfinite", iteration=group.iteration, phase=phase or group.phase, layer=group.layer,
            blob=stat.blob, value=stat.mean_abs, message=message, net=group.net,
            suggestions=tuple(suggestions),
            evidence=dict(cause=cause, pass_index=group.pass_index, nonfinite=stat.nonfinite,
                          count=stat.count, source=self.context.source, **evidence))

    def _log_caveat(self, stat) -> str:
        if self.context.source == LOG and stat.mean_abs == float("inf"):
            return (" Caffe printed mean |x| = inf, which may be float overflow of its sum while every"
                    " element is still finite (nan would be certain).")
        return ""

    def _loss_weight_fixes(self, net: str) -> list:
        info = self.context.net(net)
        layers = structure.loss_layers(info) if info else []
        return [suggest.lower_loss_weight(layer, structure.loss_weight(layer), self.context.solver, net)
                for layer in layers if structure.loss_weight(layer) > 1]

    def _forward_cause(self, group, info):
        solver = self.context.solver
        if info is None:
            return "unknown", "the net definition is unknown, so its cause cannot be told", \
                [suggest.lower_lr(solver), suggest.clip_gradients(solver)]
        if structure.is_data_layer(info):
            source = f" (source: {info.source})" if info.source else ""
            return "bad_input", f"the input data holds non-finite values{source}", [suggest.fix_input(info)]
        if info.type == "Python":
            return "python_layer", "the Python layer's forward() computed them from finite inputs", \
                [suggest.fix_python_layer(info, "forward")]
        if info.type in _DOMAINS:
            net = self.context.net(group.net)
            data = [f for f in structure.feeders(net, info.name) if structure.is_data_layer(f)]
            return "math_domain", f"its inputs left its domain ({_DOMAINS[info.type]})", \
                [suggest.fix_domain(info, _DOMAINS[info.type])] + [
                    suggest.fix_input(f, f"values outside the domain of layer {info.name}") for f in data]
        if structure.is_loss_layer(info):
            return "loss_layer", "the loss overflowed", \
                self._loss_weight_fixes(group.net) + [suggest.normalise_targets(info), suggest.lower_lr(solver)]
        if group.iteration == 0:
            return "initialisation", "activations overflow before any update: the initial weights are too large", \
                [suggest.change_init(info), suggest.add_batchnorm(info)]
        return "exploding", "activations grew until they overflowed", \
            [suggest.lower_lr(solver), suggest.clip_gradients(solver), suggest.add_batchnorm(info)]

    def _backward_cause(self, group, info):
        solver = self.context.solver
        if info is not None and info.type == "Python":
            return "python_layer", "the Python layer's backward() computed them from finite top diffs", \
                [suggest.fix_python_layer(info, "backward")]
        if info is not None and structure.is_loss_layer(info):
            return "loss_layer", "the loss layer's gradient overflowed", \
                self._loss_weight_fixes(group.net) + [suggest.normalise_targets(info), suggest.lower_lr(solver)]
        return "exploding", "gradients grew until they overflowed", \
            self._loss_weight_fixes(group.net) + [suggest.lower_lr(solver), suggest.clip_gradients(solver)]

    def _corrupted_param(self, group, stat, info):
        where = f"layer {group.layer}" + (f" ({info.type})" if info else "")
        if group.iteration == 0:
            message = (f"{stat.blob} of {where} is non-finite ({stat.mean_abs}) before the first update: "
                       f"the weights were loaded that way.")
            return self._finding(group, stat, message, "corrupted_weights", [suggest.check_weights_file()],
                                 phase="update")
        message = (f"{stat.blob} of {where} is already non-finite ({stat.mean_abs}) when iteration "
                   f"{group.iteration} starts: the weights were corrupted by the update of iteration "
                   f"{group.iteration - 1}.")
        solver = self.context.solver
        return self._finding(group, stat, message, "corrupted_weights",
                             [suggest.lower_lr(solver), suggest.clip_gradients(solver)],
                             phase="update", updated_at=group.iteration - 1)
