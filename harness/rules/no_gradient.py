"""no_gradient: a learnable parameter (lr_mult != 0) whose diff stays exactly 0.

Caffe prints no backward line at all for a parameter that needs no gradient, so a missing record in an
iteration that has backward records counts as zero too. Parameters with lr_mult 0 are frozen on purpose
and never flagged. Evaluated at IterationEnd (gradients ready, before the update), over all iter_size
passes and over all layers sharing a named parameter (Caffe accumulates their diffs into one).
"""
from __future__ import annotations

from ..core.netinfo import RECTIFIER_TYPES
from ..core.records import BACKWARD, FORWARD, TRAIN
from . import structure, suggest
from .base import Rule, lr_mult


def _identity(info, k, layer: str, blob: str):
    """Layers sharing a named parameter share one diff; anything the net definition lacks is its line."""
    if info is None or k is None:
        return ("blob", layer, blob)
    name = info.param_names[k] if k < len(info.param_names) else ""
    return ("name", name) if name else ("index", layer, k)


_SATURATING = ("TanH", "Sigmoid")
_SATURATED_TANH = 0.9999      # mean |tanh(x)| this close to 1: |x| > 5 nearly everywhere, tanh' ~ 0 (exactly 0 at 1)
_SATURATED_SHARE = 0.99


class NoGradient(Rule):
    name = "no_gradient"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.streaks: dict = {}          # identity -> (first zero iteration, consecutive count)

    def _learnable(self) -> list:
        """(identity, layer, k, lr_mult) for every parameter the net definition says should learn."""
        net = self.context.net(TRAIN)
        found, seen = [], set()
        for info in net.layers if net is not None else ():
            for k in range(len(info.lr_mults)):
                identity, mult = _identity(info, k, info.name, ""), lr_mult(info, k)
                if mult and identity not in seen:
                    seen.add(identity)
                    found.append((identity, info, k, mult))
        return found

    def on_iteration(self, end):
        records = self.context.param_diffs(TRAIN, end.iteration)
        if records is None:
            return []
        diffs, where = {}, {}
        for layer, info, k, stat in records:
            identity = _identity(info, k, layer, stat.blob)
            where.setdefault(identity, (layer, stat.blob))
            diffs[identity] = diffs.get(identity, 0.0) or stat.mean_abs
        known = self._learnable()
        known_ids = {identity for identity, *_ in known}
        # Records the net definition does not describe (a log without its net echo): lr_mult unknown.
        unknown = [(identity, None, None, None) for identity in diffs
                   if identity not in known_ids and identity[0] == "blob"]
        found = []
        for identity, info, k, mult in known + unknown:
            if diffs.get(identity, 0.0) != 0:
                self.streaks.pop(identity, None)
                continue
            since, count = self.streaks.get(identity, (end.iteration, 0))
            self.streaks[identity] = (since, count + 1)
            if count + 1 == self.settings.patience_iters:
                place = where.get(identity, (info.name if info else "", f"param blob {k}"))
                found.append(self._finding(place, info, k, mult, since, end.iteration, count + 1))
        return found

    def _finding(self, place, info, k, mult, since, now, count):
        if info is None:
            layer, blob = place
            message = (f"{blob} of layer {layer} gets no gradient: its diff has been exactly 0 for {count} "
                       f"consecutive iterations since iteration {since}. Its lr_mult is unknown (the log does "
                       f"not echo the net definition): if it is 0 the layer is frozen on purpose; otherwise "
                       f"the layer is not connected to a loss or its gradient is cut above it.")
            return self.finding(kind="no_gradient", iteration=since, phase=BACKWARD, layer=layer, blob=blob,
                                value=0.0, message=message, net=TRAIN,
                                suggestions=(f"check `lr_mult` of layer {layer} in the net prototxt: 0 freezes "
                                             f"it on purpose",),
                                evidence=dict(since_iteration=since, confirmed_at=now, consecutive_iters=count,
                                              lr_mult=None, cause="lr_mult_unknown"))
        cause, reason, cut_by, suggestions = self._why(info, since)
        blob = f"param blob {k}"
        message = (f"{blob} of layer {info.name} ({info.type}, lr_mult {mult:g}) gets no gradient: its diff "
                   f"has been exactly 0 (or not computed) for {count} consecutive iterations since iteration "
                   f"{since}: {reason}.")
        return self.finding(kind="no_gradient", iteration=since, phase=BACKWARD, layer=info.name, blob=blob,
                            value=0.0, message=message, net=TRAIN, suggestions=tuple(suggestions),
                            evidence=dict(since_iteration=since, confirmed_at=now, consecutive_iters=count,
                                          lr_mult=mult, cause=cause, cut_by=cut_by))

    def _why(self, info, since: int):
        """(cause, reason, the layer that cuts the gradient, suggestions)."""
        net = self.context.net(TRAIN)
        solver = self.context.solver
        reaches, blocker = _trace(net, info)
        if not reaches:
            return ("not_connected", "it is not connected to any loss (no loss above it, or `loss_weight: 0`)",
                    None, [suggest.connect_or_freeze(info, solver, TRAIN)])
        if blocker is not None and not net.force_backward:
            return ("propagate_down", f"`propagate_down: false` in layer {blocker.name} blocks it", blocker.name,
                    [suggest.remove_propagate_down(blocker, solver, TRAIN), suggest.connect_or_freeze(info, solver, TRAIN)])
        cut = self._cut(net, info)
        if cut is None or structure.is_loss_layer(cut):
            where = f"the loss layer {cut.name} sends back exactly 0" if cut is not None else \
                "every gradient reaching it is exactly 0"
            return ("zero_gradient", f"it is connected to a loss, yet {where}", cut.name if cut else None,
                    [suggest.zero_loss_gradient(net), suggest.connect_or_freeze(info, solver, TRAIN)])
        if cut.type in RECTIFIER_TYPES:
            zeros = self._zero_fraction(cut)
            return ("starved", f"the dead layer {cut.name} ({cut.type}{zeros}) above it passes no gradient",
                    cut.name, [suggest.leaky_relu(cut), suggest.lower_lr(solver)])
        if cut.type == "Python":
            return ("python_backward", f"the Python layer {cut.name} above it leaves its bottom diffs at 0 "
                    f"(its backward() does nothing)", cut.name, [suggest.fix_python_layer(cut, "backward")])
        saturated = self._saturated(cut)
        if saturated:
            # A TanH at +-1 (a Sigmoid at 0 or 1) has a derivative of exactly 0 in float: its input grew far
            # out of range, which is the step size or the data's scale, not the wiring.
            return ("saturated", f"layer {cut.name} ({cut.type}) above it is saturated ({saturated}), so its "
                    f"derivative is exactly 0: its input grew far out of range", cut.name,
                    suggest.desaturate(cut, solver, from_start=since == 0))
        return ("starved", f"layer {cut.name} ({cut.type}) above it passes exactly 0 gradient", cut.name,
                [suggest.check_backward_of(cut), suggest.connect_or_freeze(info, solver, TRAIN)])

    def _saturated(self, layer) -> str:
        """How a TanH or Sigmoid above shows saturation in its forward line ("" when it does not)."""
        view = self.context.view(TRAIN)
        stat = view.stat(FORWARD, layer.name, layer.tops[0]) if view and layer.tops else None
        if stat is None or layer.type not in _SATURATING:
            return ""
        if layer.type == "TanH" and stat.mean_abs >= _SATURATED_TANH:
            return f"mean |top| = {stat.mean_abs:.6g}: every output at +-1"
        if layer.type == "Sigmoid" and (stat.zero_fraction or 0) >= _SATURATED_SHARE:
            return f"{stat.zero_fraction:.1%} of its outputs exactly 0"
        return ""

    def _zero_fraction(self, layer) -> str:
        view = self.context.view(TRAIN)
        stat = view.stat(FORWARD, layer.name, layer.tops[0]) if view and layer.tops else None
        if stat is None or stat.zero_fraction is None:
            return ""
        return f", {stat.zero_fraction:.1%} zeros"

    def _nonzero_top_diff(self, net, view, layer) -> bool:
        if any(w != 0 for w in layer.loss_weights):
            return True
        for top in layer.tops:
            for consumer, _ in structure.consumers(net, layer.name, top):
                stat = view.stat(BACKWARD, consumer.name, top)
                if stat is not None and stat.mean_abs != 0:
                    return True
        return False

    def _cut(self, net, info):
        """The lowest layer above `info` whose top diff is non-zero but whose bottom diff is 0."""
        view = self.context.view(TRAIN)
        if view is None:
            return None
        pending, visited = [info], set()
        while pending:
            layer = pending.pop(0)
            for top in layer.tops:
                for consumer, _ in structure.consumers(net, layer.name, top):
                    if consumer.name in visited:
                        continue
                    visited.add(consumer.name)
                    if self._nonzero_top_diff(net, view, consumer):
                        return consumer
                    pending.append(consumer)
        return None


def _reaching_loss(net) -> set:
    """Names of the layers from which some loss (a top with loss_weight != 0) can be reached."""
    reaching: set = set()
    for layer in reversed(net.layers):      # consumers run later, so they are decided first
        if any(w != 0 for w in layer.loss_weights) or any(
                consumer.name in reaching
                for top in layer.tops for consumer, _ in structure.consumers(net, layer.name, top)):
            reaching.add(layer.name)
    return reaching


def _trace(net, info):
    """(whether a loss is reachable from `info`, the first layer above it on a path to a loss that refuses
    the gradient for that bottom although it back-propagates otherwise: `propagate_down: false`)."""
    reaching = _reaching_loss(net)
    pending, visited = [info], {info.name}
    while pending:
        layer = pending.pop(0)
        for top in layer.tops:
            for consumer, k in structure.consumers(net, layer.name, top):
                flags = consumer.bottom_need_backward
                if consumer.name in reaching and consumer.need_backward and k < len(flags) and not flags[k]:
                    return info.name in reaching, consumer
                if consumer.name not in visited:
                    visited.add(consumer.name)
                    pending.append(consumer)
    return info.name in reaching, None
