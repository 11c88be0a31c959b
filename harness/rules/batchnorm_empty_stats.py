"""batchnorm_empty_stats: a BatchNorm layer whose three blobs (mean, variance, moving-average factor) are
all exactly 0 after its forward.

Caffe's BatchNorm updates its statistics in forward unless it uses the stored ones (use_global_stats,
the default in the TEST phase), so all-zero statistics after forward mean that the stored ones are used
and were never filled: with a factor of 0 Caffe takes mean 0 and variance 0 and divides by
sqrt(0 + eps), about 316 with the default eps, in every BatchNorm, so activations overflow within a
few layers, at iteration 0. Typical when fine-tuning from a .caffemodel whose layer names do not match.
From a log without the net definition, a layer with three parameter blobs printing 0 whose top is about
316 times its input (the top printed before it) is taken for such a BatchNorm.
"""
from __future__ import annotations

from ..core.records import FORWARD, TRAIN
from .base import Rule

_STATS_BLOBS = 3
_DEFAULT_EPS = 1e-5
# Without the net definition: a gain within a factor 3 of 1/sqrt(eps) = 316 (the input's spread moves it).
_GAIN_RANGE = (100.0, 1000.0)


class BatchnormEmptyStats(Rule):
    name = "batchnorm_empty_stats"

    def on_layer(self, group):
        # A test pass at iteration 0 runs before the train net filled the shared statistics: expected.
        if group.phase != FORWARD or (group.net != TRAIN and group.iteration == 0):
            return []
        info = self.context.layer(group.net, group.layer)
        params = group.params()
        if len(params) != _STATS_BLOBS or any(p.mean_abs != 0 for p in params):
            return []
        gain = None
        if info is None:
            gain = self._gain(group)
            if gain is None or not _GAIN_RANGE[0] <= gain <= _GAIN_RANGE[1]:
                return []   # three zero blobs alone: a BatchNorm only if it amplifies like one
        elif info.type != "BatchNorm":
            return []
        eps_gain = _DEFAULT_EPS ** -0.5
        top = group.blobs()[0] if group.blobs() else params[0]
        what = f"BatchNorm layer {group.layer}" if info is not None else \
            f"Layer {group.layer} (three parameter blobs and a x{gain:.0f} gain: a BatchNorm)"
        seen = f", and it does: its output is {gain:.0f} times its input" if gain is not None else ""
        message = (f"{what} has empty statistics: mean, variance and moving-average factor are all 0 at iteration "
                   f"{group.iteration}, so it divides its input by sqrt(eps) (x{eps_gain:.0f} with the default "
                   f"eps){seen} instead of normalising it; every such BatchNorm multiplies again, until "
                   f"activations overflow. It uses stored statistics (use_global_stats) that were never filled: "
                   f"the weights were probably not loaded (a .caffemodel whose layer names do not match), or "
                   f"`use_global_stats: true` on weights that never had statistics. A lower learning rate will not "
                   f"help: this happens in the forward pass, whatever the step.")
        return [self.finding(
            kind="batchnorm_empty_stats", iteration=group.iteration, phase=FORWARD, layer=group.layer,
            blob=top.blob, value=top.mean_abs, message=message, net=group.net,
            suggestions=(f"check that --weights names a .caffemodel with a layer named {group.layer} "
                         f"(Caffe copies weights by layer name; look for `Ignoring source layer` in the log)",
                         f"when training from scratch or for new BatchNorm layers, remove `use_global_stats: true` "
                         f"from layer {group.layer} (the train phase must compute batch statistics)",
                         "do not lower the learning rate for this: the statistics, not the step, are wrong"),
            evidence=dict(cause="empty_bn_stats", gain_per_layer=round(eps_gain, 1),
                          gain_seen=round(gain, 1) if gain is not None else None, source=self.context.source))]

    def _gain(self, group):
        """Its top over its input: the top printed last before it in the pass (no net: the layer before)."""
        view = self.context.view(group.net)
        tops = [g.blobs()[-1] for g in (view.groups if view is not None else ())
                if g.phase == FORWARD and g is not group and g.blobs()]
        if not tops or not group.blobs() or tops[-1].mean_abs == 0:
            return None
        return group.blobs()[0].mean_abs / tops[-1].mean_abs
