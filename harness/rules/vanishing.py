"""vanishing: gradients too small to learn from, from the per-parameter diff magnitudes.

Two signs, each held for `patience_iters` consecutive iterations (with backward records):
- a learnable parameter's mean |diff| below `min_mean_abs` but not 0 (0 is no_gradient's case), except
  the bias of a layer feeding a BatchNorm, whose gradient is ~0 by design;
- the bottom-most learnable weight's mean |diff| below `min_depth_ratio` times the top-most one's.
"""
from __future__ import annotations

from ..core.records import BACKWARD, TRAIN
from . import structure, suggest
from .base import Rule, lr_mult

_RATIO = "depth ratio"


class Vanishing(Rule):
    name = "vanishing"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.streaks: dict = {}          # (layer, blob) or _RATIO -> (first iteration, consecutive count)

    def _streak(self, key, holds: bool, iteration: int) -> tuple:
        if not holds:
            self.streaks.pop(key, None)
            return iteration, 0
        since, count = self.streaks.get(key, (iteration, 0))
        self.streaks[key] = (since, count + 1)
        return since, count + 1

    def on_iteration(self, end):
        records = self.context.param_diffs(TRAIN, end.iteration)
        if records is None:
            return []
        learnable = [(layer, info, k, stat) for layer, info, k, stat in records if lr_mult(info, k) != 0]
        found = []
        for layer, info, k, stat in learnable:
            if self._bias_before_batchnorm(info, k):
                continue
            small = 0 < stat.mean_abs < self.settings.min_mean_abs
            since, count = self._streak((layer, stat.blob), small, end.iteration)
            if count == self.settings.patience_iters:
                found.append(self._small(layer, stat, since, end.iteration))
        found += self._depth_ratio(learnable, end.iteration)
        return found

    def _bias_before_batchnorm(self, info, k) -> bool:
        """BatchNorm subtracts the batch mean, so a bias right below it gets a gradient of ~0 by design."""
        net = self.context.net(TRAIN)
        if info is None or net is None or k == 0:
            return False
        return any(consumer.type == "BatchNorm"
                   for top in info.tops for consumer, _ in structure.consumers(net, info.name, top))

    def _small(self, layer, stat, since, now):
        message = (f"{stat.blob} of layer {layer} has vanishing gradients: mean |diff| = {stat.mean_abs:.3g} "
                   f"< {self.settings.min_mean_abs:g} for {self.settings.patience_iters} consecutive "
                   f"iterations since iteration {since}.")
        return self._finding(layer, stat.blob, stat.mean_abs, message, since, now)

    def _depth_ratio(self, learnable, iteration) -> list:
        # Weights only (param 0): biases have another scale. Backward records run top to bottom.
        weights = [(layer, stat) for layer, _, k, stat in learnable if k == 0 and stat.mean_abs > 0]
        if len(weights) < 2:
            return []
        (top_layer, top), (bottom_layer, bottom) = weights[0], weights[-1]
        ratio = bottom.mean_abs / top.mean_abs
        since, count = self._streak(_RATIO, ratio < self.settings.min_depth_ratio, iteration)
        if count != self.settings.patience_iters:
            return []
        message = (f"gradients vanish towards the bottom of the net: mean |diff| of {bottom.blob} of layer "
                   f"{bottom_layer} ({bottom.mean_abs:.3g}) is {ratio:.2g} times that of layer {top_layer} "
                   f"({top.mean_abs:.3g}), below {self.settings.min_depth_ratio:g}, for {count} consecutive "
                   f"iterations since iteration {since}.")
        return [self._finding(bottom_layer, bottom.blob, ratio, message, since, iteration, top_layer=top_layer)]

    def _finding(self, layer, blob, value, message, since, now, **evidence):
        info = self.context.layer(TRAIN, layer)
        suggestions = [suggest.change_init(info), suggest.add_batchnorm(info)] if info else []
        return self.finding(kind="vanishing", iteration=since, phase=BACKWARD, layer=layer, blob=blob,
                            value=value, message=message, net=TRAIN, suggestions=tuple(suggestions),
                            evidence=dict(since_iteration=since, confirmed_at=now, cause="vanishing", **evidence))
