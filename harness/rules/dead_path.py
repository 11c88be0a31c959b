"""dead_path: from a log, the first layer of the train net whose forward output prints exactly 0 while the
signal should go on, judged within one pass (people paste one forward/backward pass).

Caffe's mean |x| is exactly 0 only when every element is 0. Two signs make such a top a dead path rather than
a legitimately empty blob (a label of all zeros, an accuracy of 0):
- a chain: it and the next `chain_layers` - 1 layers that print a top all print 0, while the layers among
  them that have weights have non-zero ones (zero weights would explain zeros; dead inputs do not
  revive);
- its backward: the layer passes back exactly 0 (its bottom diff) while the diff that reaches it from above
  is not 0, the signature of a dead rectifier, and everything below it gets no gradient.
The net definition is not needed. Live runs and logs with the net have the `dead` rule (rectifiers, zero
shares, several iterations); this one speaks for logs only.
"""
from __future__ import annotations

from ..core.records import BACKWARD, FORWARD, TRAIN
from . import suggest
from .base import LOG, Rule


def _all_zero(group) -> bool:
    blobs = group.blobs()
    return bool(blobs) and all(s.mean_abs == 0 for s in blobs)


def _zero_weights(group) -> bool:
    params = group.params()
    return bool(params) and all(p.mean_abs == 0 for p in params[:1])   # the weights: param blob 0


class DeadPath(Rule):
    name = "dead_path"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.reported = False

    def on_layer(self, group):
        if self.reported or self.context.source != LOG or group.net != TRAIN:
            return []
        view = self.context.view(TRAIN)
        groups = view.groups if view is not None else [group]
        if group.phase == FORWARD:
            return self._chain([g for g in groups if g.phase == FORWARD and g.blobs()])
        return self._backward(group, groups)

    def _chain(self, forward: list) -> list:
        """Fires on the forward group that completes the chain."""
        chain = self.settings.chain_layers
        if len(forward) < chain or not all(_all_zero(g) and not _zero_weights(g) for g in forward[-chain:]):
            return []
        first = len(forward) - chain
        while first > 0 and _all_zero(forward[first - 1]) and not _zero_weights(forward[first - 1]):
            first -= 1
        start, rest = forward[first], forward[first + 1:]
        weighted = [g for g in rest if g.params()]
        evidence = (f"and so do the {len(rest)} layers after it ({', '.join(g.layer for g in rest)})"
                    + (f", although {', '.join(g.layer for g in weighted)} "
                       f"{'has' if len(weighted) == 1 else 'have'} non-zero weights" if weighted else ""))
        return [self._finding(start, evidence, FORWARD)]

    def _backward(self, group, groups) -> list:
        """A layer that prints a zero top and passes back 0 although a non-zero diff reaches its top."""
        forward = {g.layer: g for g in groups if g.phase == FORWARD}
        start = forward.get(group.layer)
        bottoms = group.blobs()
        if start is None or not _all_zero(start) or not bottoms or any(s.mean_abs != 0 for s in bottoms):
            return []
        tops = {s.blob for s in start.blobs()}
        arriving = [s for g in groups if g.phase == BACKWARD and g is not group for s in g.blobs()
                    if s.blob in tops and s.mean_abs != 0]
        if not arriving:
            return []
        evidence = (f"and in backward it passes back exactly 0 ({bottoms[0].blob} diff) although the diff reaching "
                    f"it is not 0 ({arriving[0].blob} diff {arriving[0].mean_abs:.3g} from layer "
                    f"{self._layer_of(groups, arriving[0])}): nothing below it gets a gradient")
        return [self._finding(start, evidence, BACKWARD)]

    @staticmethod
    def _layer_of(groups, stat) -> str:
        return next(g.layer for g in groups if stat in g.stats)

    def _finding(self, start, evidence: str, seen_in: str):
        self.reported = True
        top = start.blobs()[0]
        before = self._input(start)
        fed = f" Its input printed mean |x| = {before.mean_abs:.4g} ({before.blob})." if before is not None else ""
        message = (f"The path is dead from layer {start.layer}: its top {top.blob} prints mean |x| = 0 (every element "
                   f"0) at iteration {start.iteration}, {evidence}.{fed} Nothing passes forward from there and no "
                   f"gradient flows back below it, whatever the learning rate.")
        info = self.context.layer(TRAIN, start.layer)
        return self.finding(
            kind="dead", iteration=start.iteration, phase=FORWARD, layer=start.layer, blob=top.blob, value=0.0,
            message=message, net=TRAIN, suggestions=tuple(suggest.dead_path(start.layer, before, info,
                                                                              self.context.solver)),
            evidence=dict(cause="dead_path", seen_in=seen_in, input=before.mean_abs if before is not None else None,
                          source=self.context.source))

    def _input(self, start):
        """The last top printed before the layer in its forward pass (its input, in a chain)."""
        view = self.context.view(TRAIN)
        previous = None
        for group in view.groups if view is not None else ():
            if group is start or (group.phase, group.layer) == (FORWARD, start.layer):
                break
            if group.phase == FORWARD and group.blobs():
                previous = group.blobs()[-1]
        return previous
