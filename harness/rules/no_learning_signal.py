"""no_learning_signal: every loss output exactly 0 and the L1 and L2 norms of all parameter diffs exactly 0,
for `patience_iters` consecutive iterations: there is nothing to learn from, whatever the learning rate.

Typical: every label equals `ignore_label` (or the labels are empty), so the loss and its gradient are 0.
Evaluated at IterationEnd from the train outputs and the `All net params` L1/L2 line(s) of that
iteration (every pass: iter_size). Its patience is below no_gradient's and it runs before it, so it halts
first, naming the cause instead of one starved parameter (zero losses as well as zero diffs are stronger
evidence than one zero diff).

A log without debug lines has no norms: there the printed losses alone are the evidence. A loss Caffe prints
as exactly 0 (six significant digits) is no rounding: a MultiBoxLoss with no prior matched, a loss over
labels that are all ignored. When every loss is exactly 0 at half or more of the displayed iterations, the
log ends with the finding, at the first such display (one display may be all the log has).
"""
from __future__ import annotations

from typing import Optional

from ..core.records import BACKWARD, TRAIN
from . import losses
from .base import LOG, Rule


class NoLearningSignal(Rule):
    name = "no_learning_signal"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.norms: dict = {}                  # iteration -> all passes' diff norms exactly 0 so far
        self.since: Optional[int] = None
        self.streak = 0
        self.displays = self.zero_displays = 0      # a log without norms: displays with losses, all exactly 0
        self.first_zero = None                       # (iteration, loss outputs, the display before it)
        self.moved: set = set()                      # losses seen non-zero before the first all-zero display
        self.last_display: Optional[int] = None

    def on_norms(self, norms):
        if norms.net == TRAIN:
            zero = norms.l1_diff == 0 and norms.l2_diff == 0
            self.norms = {norms.iteration: self.norms.get(norms.iteration, True) and zero}
        return []

    def on_iteration(self, end):
        outs = losses.loss_outputs(self.context.net(TRAIN), end.outputs, end.loss_weights)
        if outs and end.iteration not in self.norms and self.context.source == LOG:
            self._printed(end.iteration, outs)
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
        names = ", ".join(o.where for o in outs)
        message = (f"Every loss output ({names}) is exactly 0 and so is every parameter gradient (L1 and L2 of all "
                   f"param diffs = 0) since iteration {self.since}: nothing is learnt, whatever the learning rate. "
                   f"Usually every label equals the loss's `ignore_label`, or the labels are empty or not the "
                   f"ones the loss expects.")
        return [self._finding(outs[0], outs, self.since, end.iteration, message)]

    def _printed(self, iteration: int, outs: list) -> None:
        self.displays += 1
        if all(o.value == 0 for o in outs):
            self.zero_displays += 1
            if self.first_zero is None:
                self.first_zero = (iteration, outs, self.last_display)
        elif self.first_zero is None:
            self.moved |= {o.name for o in outs if o.value != 0}
        self.last_display = iteration

    def finish(self):
        if self.first_zero is None or 2 * self.zero_displays < self.displays:
            return []
        iteration, outs, before = self.first_zero
        # Name the loss that dropped to 0 (the others may have been 0 all along).
        head = next((o for o in outs if o.name in self.moved), outs[0])
        names = ", ".join(o.where for o in outs)
        message = (f"Every loss the log prints ({names}) is exactly 0 at {self.zero_displays} of its "
                   f"{self.displays} displayed iterations, first at iteration {iteration}"
                   + (f" ({head.name} was not 0 at iteration {before})" if head.name in self.moved else "")
                   + ": a printed 0 is no rounding, the batch gave the loss nothing to learn from and no gradient, "
                   f"whatever the learning rate. Usually the labels do not reach the loss: all equal to its "
                   f"`ignore_label`, empty, or (for a MultiBoxLoss) boxes that no prior matches.")
        span = (before + 1, iteration) if before is not None and iteration - before > 1 else None
        return [self._finding(head, outs, iteration, iteration, message, span)]

    def _finding(self, head, outs, since, confirmed, message, span=None):
        where = f"loss layer {head.layer.name}" if head.layer else f"the loss that computes {head.name}"
        return self.finding(
            kind="no_learning_signal", iteration=since, phase=BACKWARD,
            layer=head.layer.name if head.layer else "(outputs)", blob=head.name, value=head.value,
            message=message, output=head.name, iteration_range=span,
            suggestions=(f"check the labels fed to {where}: not all equal to its `loss_param {{ ignore_label }}`, "
                         f"within 0..K-1, from the right dataset/column; for a detection loss, that the boxes "
                         f"are in the layout and coordinates the loss expects",
                         "do not raise the learning rate: there is no gradient to scale"),
            evidence=dict(cause="no_learning_signal", confirmed_at=confirmed,
                          losses={o.name: o.value for o in outs}, source=self.context.source))
