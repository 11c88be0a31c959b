"""batchnorm_empty_stats: a BatchNorm layer whose three blobs (mean, variance, moving-average factor) are
all exactly 0 after its forward.

Caffe's BatchNorm updates its statistics in forward unless it uses the stored ones (use_global_stats,
the default in the TEST phase), so all-zero statistics after forward mean that the stored ones are used
and were never filled: with a factor of 0 Caffe takes mean 0 and variance 0 and divides by
sqrt(0 + eps), about 316 with the default eps, in every BatchNorm, so activations overflow within a
few layers, at iteration 0. Typical when fine-tuning from a .caffemodel whose layer names do not match.
"""
from __future__ import annotations

from ..core.records import FORWARD, TRAIN
from .base import Rule

_STATS_BLOBS = 3
_DEFAULT_EPS = 1e-5


class BatchnormEmptyStats(Rule):
    name = "batchnorm_empty_stats"

    def on_layer(self, group):
        # A test pass at iteration 0 runs before the train net filled the shared statistics: expected.
        if group.phase != FORWARD or (group.net != TRAIN and group.iteration == 0):
            return []
        info = self.context.layer(group.net, group.layer)
        params = group.params()
        if info is None or info.type != "BatchNorm" or len(params) != _STATS_BLOBS:
            return []
        if any(p.mean_abs != 0 for p in params):
            return []
        gain = _DEFAULT_EPS ** -0.5
        top = group.blobs()[0] if group.blobs() else params[0]
        message = (f"BatchNorm layer {group.layer} has empty statistics: mean, variance and moving-average "
                   f"factor are all 0 at iteration {group.iteration}, so it divides its input by sqrt(eps) "
                   f"(x{gain:.0f} with the default eps) instead of normalising it; every such BatchNorm "
                   f"multiplies again, until activations overflow. It uses stored statistics "
                   f"(use_global_stats) that were never filled: the weights were probably not loaded "
                   f"(a .caffemodel whose layer names do not match the net's).")
        return [self.finding(
            kind="batchnorm_empty_stats", iteration=group.iteration, phase=FORWARD, layer=group.layer,
            blob=top.blob, value=top.mean_abs, message=message, net=group.net,
            suggestions=(f"check that --weights names a .caffemodel with a layer named {group.layer} "
                         f"(Caffe copies weights by layer name; look for `Ignoring source layer` in the log)",
                         f"when training from scratch, remove `use_global_stats: true` from layer "
                         f"{group.layer} (the train phase must compute batch statistics)"),
            evidence=dict(cause="empty_bn_stats", gain_per_layer=round(gain, 1),
                          source=self.context.source))]
