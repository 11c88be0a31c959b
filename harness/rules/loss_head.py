"""loss_head: with several loss outputs, the one that went non-finite or exploded first while the others
stayed finite, named with its loss_weight.

A separate warning rather than a rewrite of the nonfinite finding: nonfinite names the producing layer
(often the head's loss layer itself, but after a few iterations the NaN may first appear in a shared
layer), while this names the head whose loss went wrong, and can do so iterations earlier, when its loss
has grown `growth_factor` times its first value while every other loss stayed below that growth
(e.g. a regression head with unnormalised targets). Live every iteration; from a log at display
iterations, plus the forward line of the loss top.
"""
from __future__ import annotations

import math

from ..core.records import FORWARD, TRAIN
from . import losses, suggest
from .base import Rule, is_nonfinite


class LossHead(Rule):
    name = "loss_head"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.first: dict = {}      # output name -> first finite value observed
        self.last: dict = {}       # output name -> LossOutput of the last IterationEnd

    def on_layer(self, group):
        # Forward of a loss layer turning non-finite: the iteration stops there (nonfinite halts), so the
        # other heads are judged on their last values.
        if group.net != TRAIN or group.phase != FORWARD or len(self.last) < 2:
            return []
        bad = [s for s in group.blobs() if s.blob in self.last and is_nonfinite(s)]
        others = [o for name, o in self.last.items() if name not in {s.blob for s in bad}]
        if not bad or not others or not losses.all_finite(o.value for o in others):
            return []
        head = self.last[bad[0].blob]
        return [self._finding(head, bad[0].mean_abs, group.iteration, others, "turned non-finite")]

    def on_iteration(self, end):
        outs = losses.loss_outputs(self.context.net(TRAIN), end.outputs)
        if len(outs) < 2:
            return []
        for out in outs:
            if math.isfinite(out.value) and out.value > 0:
                self.first.setdefault(out.name, out.value)
        self.last = {out.name: out for out in outs}
        for out in outs:
            others = [o for o in outs if o is not out]
            if not losses.all_finite(o.value for o in others):
                continue
            if not math.isfinite(out.value):
                return [self._finding(out, out.value, end.iteration, others, "turned non-finite")]
            if self._exploded(out) and not any(self._exploded(o) for o in others):
                return [self._finding(out, out.value, end.iteration, others,
                                      f"grew {out.value / self.first[out.name]:.3g} times its first value "
                                      f"{self.first[out.name]:.4g}")]
        return []

    def _exploded(self, out) -> bool:
        first = self.first.get(out.name)
        return first is not None and out.value >= self.settings.growth_factor * first

    def _finding(self, head, value, iteration, others, what):
        rest = ", ".join(f"{o.name} = {o.value:.4g} (loss_weight {o.weight:g})" for o in others)
        message = (f"Of the {len(others) + 1} losses, {head.name} (layer {head.layer.name}, {head.layer.type}, "
                   f"loss_weight {head.weight:g}) {what} at iteration {iteration} while the others stayed "
                   f"finite: {rest}. That head's targets or weight are out of scale with the rest of the net.")
        solver = self.context.solver
        fixes = [suggest.normalise_targets(head.layer)]
        if head.weight > 1:
            fixes.insert(0, suggest.lower_loss_weight(head.layer, head.weight, solver, TRAIN))
        return self.finding(
            kind="loss_head", iteration=iteration, phase=FORWARD, layer=head.layer.name, blob=head.name,
            value=value, message=message, suggestions=tuple(fixes),
            evidence=dict(cause="loss_head", loss_weight=head.weight, first_value=self.first.get(head.name),
                          other_losses={o.name: o.value for o in others}, source=self.context.source))
