"""no_learning_signal: every loss output exactly 0 and the L1 and L2 norms of all parameter diffs exactly 0,
for `patience_iters` consecutive iterations: there is nothing to learn from, whatever the learning rate.

Typical: every label equals `ignore_label` (or the labels are empty), so the loss and its gradient are 0.
Evaluated at IterationEnd from the train outputs and the `All net params` L1/L2 line(s) of that
iteration (every pass: iter_size); from a log only iterations with both are observed. Its patience is
below no_gradient's and it runs before it, so it halts first, naming the cause instead of one starved
parameter (zero losses as well as zero diffs are stronger evidence than one zero diff).
"""
from __future__ import annotations

from typing import Optional

from ..core.records import BACKWARD, TRAIN
from . import losses
from .base import Rule


class NoLearningSignal(Rule):
    name = "no_learning_signal"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.norms: dict = {}                  # iteration -> all passes' diff norms exactly 0 so far
        self.since: Optional[int] = None
        self.streak = 0

    def on_norms(self, norms):
        if norms.net == TRAIN:
            zero = norms.l1_diff == 0 and norms.l2_diff == 0
            self.norms = {norms.iteration: self.norms.get(norms.iteration, True) and zero}
        return []

    def on_iteration(self, end):
        outs = losses.loss_outputs(self.context.net(TRAIN), end.outputs)
        if not outs or end.iteration not in self.norms:
            return []          # not observed (a log between displays): the streak counts observed iterations
        if not (self.norms[end.iteration] and all(o.value == 0 for o in outs)):
            self.since, self.streak = None, 0
            return []
        if self.since is None:
            self.since = end.iteration
        self.streak += 1
        if self.streak < self.settings.patience_iters:
            return []
        names = ", ".join(f"{o.name} ({o.layer.type})" for o in outs)
        message = (f"Every loss output ({names}) is exactly 0 and so is every parameter gradient (L1 and L2 of all "
                   f"param diffs = 0) since iteration {self.since}: nothing is learnt, whatever the learning rate. "
                   f"Usually every label equals the loss's `ignore_label`, or the labels are empty or not the "
                   f"ones the loss expects.")
        first = outs[0]
        return [self.finding(
            kind="no_learning_signal", iteration=self.since, phase=BACKWARD, layer=first.layer.name,
            blob=first.name, value=first.value, message=message,
            suggestions=(f"check the labels fed to loss layer {first.layer.name}: not all equal to its "
                         f"`loss_param {{ ignore_label }}`, within 0..K-1, from the right dataset/column",
                         "do not raise the learning rate: there is no gradient to scale"),
            evidence=dict(cause="no_learning_signal", confirmed_at=end.iteration,
                          losses={o.name: o.value for o in outs}, source=self.context.source))]
