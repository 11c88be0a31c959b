"""saturated_softmax_loss: a SoftmaxWithLoss output pinned at 87.3365 = -log(FLT_MIN).

Caffe's SoftmaxWithLoss computes -log(max(p, FLT_MIN)) for the true class's probability p; the mean over
the batch equals that clamp only when every sample's p underflowed below 1.2e-38: the scores are so large
and so wrong that the softmax puts no mass at all on the right class (on the GPU a NaN probability is
clamped the same way, so NaN scores read 87.3365 too). Read from the train net's outputs (IterationEnd,
live every iteration; from a log at display iterations) and from a log's test outputs, `patience_iters`
observations in a row, or fewer when a log ends pinned. Without the net definition, any output the log
prints as a loss counts: nothing else is pinned at exactly that value.
"""
from __future__ import annotations

from ..core.records import FORWARD, TRAIN
from . import losses, suggest
from .base import LOG, Rule


class _Streak:
    """One output's observations pinned at the clamp, and the observation before them."""

    def __init__(self, out, since: int, before):
        self.out, self.since, self.before, self.count, self.last = out, since, before, 0, since


class SaturatedSoftmaxLoss(Rule):
    name = "saturated_softmax_loss"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.streaks: dict = {}    # (net, output name) -> _Streak
        self.seen: dict = {}       # (net, output name) -> the last iteration observed

    def _pinned(self, out) -> bool:
        target = self.settings.saturated_loss
        softmax = out.layer is None or out.layer.type == "SoftmaxWithLoss"
        return softmax and abs(out.value - target) <= self.settings.max_rel_error * target

    def on_iteration(self, end):
        return self._observe(TRAIN, end.iteration, end.outputs, end.loss_weights)

    def on_test(self, result):
        return self._observe(result.net, result.iteration, result.outputs, result.loss_weights) \
            if self.context.source == LOG else []

    def _observe(self, net_name, iteration, outputs, printed) -> list:
        found = []
        for out in losses.loss_outputs(self.context.net(net_name), outputs, printed):
            key = (net_name, out.name)
            before, self.seen[key] = self.seen.get(key), iteration
            if not self._pinned(out):
                self.streaks.pop(key, None)
                continue
            streak = self.streaks.setdefault(key, _Streak(out, iteration, before))
            streak.count, streak.last = streak.count + 1, iteration
            if streak.count == self.settings.patience_iters:
                found.append(self._finding(net_name, streak))
        return found

    def finish(self):
        # A log that ends pinned: it never came back, however few displays the excerpt holds.
        if self.context.source != LOG:
            return []
        return [self._finding(net, streak) for (net, _), streak in self.streaks.items()
                if streak.count < self.settings.patience_iters]

    def _finding(self, net_name, streak):
        out = streak.out
        scores = f" ({out.layer.bottoms[0]})" if out.layer is not None and out.layer.bottoms else ""
        message = (f"Loss {out.where} of the {net_name} net is pinned at {out.value:g} = -log(FLT_MIN) since "
                   f"iteration {streak.since}: for every sample of the batch the probability of the true class "
                   f"underflowed below 1.2e-38 (or was NaN: on the GPU Caffe clamps a NaN the same way), so Caffe "
                   f"clamps it. The scores{scores} are huge and wrong: the net diverged, or its initial weights or "
                   f"inputs are far too large. An accuracy output of 1 beside it is no sign of health (NaN scores "
                   f"count as correct).")
        span = (streak.before + 1, streak.since) \
            if streak.before is not None and streak.since - streak.before > 1 else None
        solver = self.context.solver
        return self.finding(
            kind="saturated_softmax_loss", iteration=streak.since, phase=FORWARD,
            layer=out.layer.name if out.layer else "(outputs)", blob=out.name, value=out.value, message=message,
            net=net_name, output=out.name, iteration_range=span,
            suggestions=(suggest.lower_lr(solver),
                         suggest.clip_gradients(solver),
                         "scale the inputs to a small range (e.g. mean 0, std 1) and use a scaled weight filler "
                         "(`msra` / `xavier`) for the layers that produce the scores; restart from a snapshot "
                         "taken before it saturated"),
            evidence=dict(cause="saturated_softmax", confirmed_at=streak.last, source=self.context.source))
