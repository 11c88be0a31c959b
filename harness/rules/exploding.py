"""exploding: gradients growing towards overflow, flagged while they are still finite.

Signs, from the earliest to the latest on a slowly diverging net:
- the L2 norm of all param diffs (Caffe's `All net params` line) at a new high, `growth_factor` times
  its minimum over the last `window_iters` iterations;
- a learnable parameter's mean |diff| above `max_mean_abs`;
- a float overflow: Caffe's float sums overflow to inf while every element is still finite (a live
  BlobStat flags it; the `All net params` L2 norm, a sum of squares, overflows first). Only the first
  place that overflowed is reported.
- from a log (most have no debug lines): a loss at `loss_growth_factor` times its first observed value (the
  losses the log prints, or its displayed loss when it prints none), and still there at the next display
  (or non-finite, or the log ends): a batch that spikes once is not a divergence. Relative to the start,
  never the magnitude alone: a loss summed over a big output map sits at 1e5 from the first iteration and
  is fine.
"""
from __future__ import annotations

import math

from ..core.records import FORWARD, TRAIN
from . import losses, suggest
from .base import LOG, Rule, lr_mult

ALL_PARAMS = "All net params"


class Exploding(Rule):
    name = "exploding"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.overflow_reported = False
        self.norms: dict = {}            # iteration -> L2 norm of all param diffs (last pass)
        self.peak = 0.0                  # highest finite norm before the current iteration
        self.first_loss: dict = {}       # a log's loss name -> (iteration, its first observed positive value)
        self.grown = None                # (finding, loss name): grown, waiting for the next display to confirm
        self.loss_reported = False
        self.last_display = None

    def _suggestions(self) -> tuple:
        solver = self.context.solver
        return (suggest.lower_lr(solver), suggest.clip_gradients(solver))

    def _finding(self, **kwargs):
        return self.finding(kind="exploding", suggestions=self._suggestions(), **kwargs)

    def on_layer(self, group):
        overflowed = [s for s in group.stats if s.overflow]
        if self.overflow_reported or not overflowed:
            return []
        self.overflow_reported = True
        stat = overflowed[0]
        largest = f" (max |x| = {stat.max_abs:.3g})" if stat.max_abs is not None else ""
        message = (f"{stat.blob} of layer {group.layer} overflows in {group.phase} at iteration "
                   f"{group.iteration}: Caffe's float sum of |x| is inf although every element is finite"
                   f"{largest}. Values this large turn into inf/NaN soon.")
        return [self._finding(iteration=group.iteration, phase=group.phase, layer=group.layer, blob=stat.blob,
                              value=stat.mean_abs, message=message, net=group.net,
                              evidence=dict(cause="overflow", max_abs=stat.max_abs, pass_index=group.pass_index))]

    def on_norms(self, norms):
        if norms.net != TRAIN:
            return []
        self.norms[norms.iteration] = norms.l2_diff
        view = self.context.view(TRAIN)
        overflowed = math.isinf(norms.l2_diff) or math.isinf(norms.l2_data)   # nan is no overflow: nonfinite's
        if self.overflow_reported or not overflowed or (view is not None and view.has_nonfinite()):
            return []
        self.overflow_reported = True
        blob = "L2 norm (diff)" if math.isinf(norms.l2_diff) else "L2 norm (data)"
        message = (f"Caffe's `All net params` {blob} overflows to inf at iteration {norms.iteration} although "
                   f"every per-layer value is finite: the float sum of squares overflowed, a sign of exploding "
                   f"{'gradients' if 'diff' in blob else 'weights'}.")
        return [self._finding(iteration=norms.iteration, phase="backward", layer=ALL_PARAMS, blob=blob,
                              value=norms.l2_diff if "diff" in blob else norms.l2_data, message=message,
                              net=TRAIN, evidence=dict(cause="overflow", l1_diff=norms.l1_diff,
                                                       l1_data=norms.l1_data, pass_index=norms.pass_index))]

    def on_iteration(self, end):
        found = self._large_diffs(end.iteration) + self._growth(end.iteration)
        if self.context.source == LOG:
            found += self._loss_growth(end)
        norm = self.norms.get(end.iteration)
        if norm is not None and math.isfinite(norm):
            self.peak = max(self.peak, norm)
        self.norms = {it: v for it, v in self.norms.items() if it > end.iteration - self.settings.window_iters}
        return found

    def _large_diffs(self, iteration) -> list:
        found = []
        for layer, info, k, stat in self.context.param_diffs(TRAIN, iteration) or ():
            if lr_mult(info, k) != 0 and math.isfinite(stat.mean_abs) and stat.mean_abs > self.settings.max_mean_abs:
                message = (f"{stat.blob} of layer {layer} has exploding gradients: mean |diff| = "
                           f"{stat.mean_abs:.3g} > {self.settings.max_mean_abs:g} at iteration {iteration}.")
                found.append(self._finding(iteration=iteration, phase="backward", layer=layer, blob=stat.blob,
                                           value=stat.mean_abs, message=message, net=TRAIN,
                                           evidence=dict(cause="exploding")))
        return found

    def _growth(self, iteration) -> list:
        norm = self.norms.get(iteration)
        window = [v for it, v in self.norms.items()
                  if iteration - self.settings.window_iters <= it < iteration and math.isfinite(v) and v > 0]
        if norm is None or not math.isfinite(norm) or not window or norm <= self.peak:
            return []
        low = min(window)
        if norm < self.settings.growth_factor * low:
            return []
        message = (f"the L2 norm of all parameter gradients grew {norm / low:.3g}x within "
                   f"{self.settings.window_iters} iterations to {norm:.3g} at iteration {iteration} "
                   f"(a new high): training is diverging.")
        return [self._finding(iteration=iteration, phase="backward", layer=ALL_PARAMS, blob="L2 norm (diff)",
                              value=norm, message=message, net=TRAIN,
                              evidence=dict(cause="exploding", window_min=low, growth=norm / low))]

    def _loss_growth(self, end) -> list:
        before, self.last_display = self.last_display, end.iteration
        outs = losses.loss_outputs(self.context.net(TRAIN), end.outputs, end.loss_weights)
        named = [(o.name, o.value) for o in outs] or [("loss", end.smoothed_loss)]
        named = [(name, value) for name, value in named if value is not None]
        if self.loss_reported:
            return []
        if self.grown is not None:
            finding, name = self.grown
            self.grown = None
            now = dict(named).get(name)
            if now is None or not math.isfinite(now) or now >= self.settings.loss_growth_factor * \
                    self.first_loss[name][1]:
                self.loss_reported = True
                return [finding]
        for name, value in named:
            if math.isfinite(value) and value > 0:
                self.first_loss.setdefault(name, (end.iteration, value))
        for name, value in named:
            start, first = self.first_loss.get(name, (None, None))
            if first is not None and math.isfinite(value) and value >= self.settings.loss_growth_factor * first:
                self.grown = (self._loss_finding(name, value, start, first, before, end.iteration), name)
                break
        return []

    def finish(self):
        # A log that ends on the grown value: nothing came back down.
        if self.grown is None or self.loss_reported:
            return []
        self.loss_reported = True
        return [self.grown[0]]

    def _loss_finding(self, name, value, start, first, before, iteration):
        span = (before + 1, iteration) if before is not None and iteration - before > 1 else None
        message = (f"Loss {name} grew {value / first:.3g} times, from {first:.4g} at iteration {start} to {value:.4g} "
                   f"at iteration {iteration}, and did not come back: training is diverging (a loss summed over "
                   f"many outputs may be large from the start; it should still fall, not grow).")
        return self.finding(
            kind="exploding", iteration=iteration, phase=FORWARD, layer="(outputs)", blob=name, value=value,
            message=message, net=TRAIN, output=name, iteration_range=span,
            suggestions=self._suggestions() + (
                "if the loss is summed over pixels or boxes (no normalisation), normalise it "
                "(`loss_param { normalize: true }`) or scale base_lr down by that many outputs",),
            evidence=dict(cause="exploding", first_value=first, first_iteration=start, growth=value / first,
                          source=self.context.source))
