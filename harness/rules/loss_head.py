"""loss_head: with several loss outputs, the one that exploded first while the others stayed in scale,
named with its loss_weight.

It speaks before anything goes non-finite: when one loss has grown `growth_factor` times its first
observed value while every other loss stayed below that growth (e.g. a regression head with
unnormalised targets). A loss that turned non-finite is nonfinite's: that finding names the head.
Live every iteration; from a log at display iterations, from the losses the log prints ("(* w = x
loss)") when it does not echo the net. Large losses that fluctuate without growing are not flagged:
magnitude alone says nothing (a summed loss of 1e5 over a big output map is normal).
"""
from __future__ import annotations

from ..core.records import FORWARD, TRAIN
from . import losses, suggest
from .base import Rule


class LossHead(Rule):
    name = "loss_head"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.first: dict = {}      # output name -> first positive value observed

    def on_iteration(self, end):
        outs = losses.loss_outputs(self.context.net(TRAIN), end.outputs, end.loss_weights)
        if len(outs) < 2 or not losses.all_finite(o.value for o in outs):
            return []
        for out in outs:
            if out.value > 0:
                self.first.setdefault(out.name, out.value)
        for out in outs:
            others = [o for o in outs if o is not out]
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
        message = (f"Of the {len(others) + 1} losses, {head.where} (loss_weight {head.weight:g}) {what} at "
                   f"iteration {iteration} while the others stayed in scale: {rest}. That head's targets or weight "
                   f"are out of scale with the rest of the net.")
        solver = self.context.solver
        fixes = [suggest.normalise_targets(head.layer, head.name)]
        if head.weight > 1 and head.layer is not None:
            fixes.insert(0, suggest.lower_loss_weight(head.layer, head.weight, solver, TRAIN))
        return self.finding(
            kind="loss_head", iteration=iteration, phase=FORWARD, layer=head.layer.name if head.layer else "(outputs)",
            blob=head.name, value=value, message=message, suggestions=tuple(fixes), output=head.name,
            evidence=dict(cause="loss_head", loss_weight=head.weight, first_value=self.first.get(head.name),
                          other_losses={o.name: o.value for o in others}, source=self.context.source))
