"""saturated_softmax_loss: a SoftmaxWithLoss output pinned at 87.3365 = -log(FLT_MIN).

Caffe's SoftmaxWithLoss computes -log(max(p, FLT_MIN)) for the true class's probability p; the mean over
the batch equals that clamp only when every sample's p underflowed below 1.2e-38: the scores are so large
and so wrong that the softmax puts no mass at all on the right class. Read from the train net's outputs
(IterationEnd, live every iteration; from a log at display iterations), `patience_iters` observations in
a row.
"""
from __future__ import annotations

from ..core.records import FORWARD, TRAIN
from . import losses, suggest
from .base import Rule


class SaturatedSoftmaxLoss(Rule):
    name = "saturated_softmax_loss"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.since: dict = {}      # output name -> first iteration of the current pinned streak
        self.streak: dict = {}     # output name -> observations in it

    def _pinned(self, value: float) -> bool:
        target = self.settings.saturated_loss
        return abs(value - target) <= self.settings.max_rel_error * target

    def on_iteration(self, end):
        found = []
        for out in losses.loss_outputs(self.context.net(TRAIN), end.outputs):
            if out.layer.type != "SoftmaxWithLoss" or not self._pinned(out.value):
                self.streak.pop(out.name, None)
                continue
            if out.name not in self.streak:
                self.since[out.name] = end.iteration
            self.streak[out.name] = self.streak.get(out.name, 0) + 1
            if self.streak[out.name] >= self.settings.patience_iters:
                found.append(self._finding(out, self.since[out.name], end.iteration))
        return found

    def _finding(self, out, since: int, confirmed: int):
        scores = f" ({out.layer.bottoms[0]})" if out.layer.bottoms else ""
        message = (f"Loss {out.name} of layer {out.layer.name} (SoftmaxWithLoss) is pinned at {out.value:g} = "
                   f"-log(FLT_MIN) since iteration {since}: for every sample of the batch the probability of "
                   f"the true class underflowed below 1.2e-38, so Caffe clamps it. The scores{scores} are huge "
                   f"and wrong: the net diverged, or its initial weights or inputs are far too large.")
        solver = self.context.solver
        return self.finding(
            kind="saturated_softmax_loss", iteration=since, phase=FORWARD, layer=out.layer.name, blob=out.name,
            value=out.value, message=message,
            suggestions=(suggest.lower_lr(solver),
                         "scale the inputs to a small range (e.g. mean 0, std 1) and use a scaled weight filler "
                         "(`msra` / `xavier`) for the layers that produce the scores",
                         suggest.clip_gradients(solver)),
            evidence=dict(cause="saturated_softmax", confirmed_at=confirmed,
                          source=self.context.source))
