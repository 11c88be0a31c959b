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
shares, several iterations); this one speaks for logs only. Its state is per pass and constant per layer.
"""
from __future__ import annotations

from typing import Optional

from ..core.records import FORWARD, TRAIN
from . import suggest
from .base import LOG, Rule


def _all_zero(group) -> bool:
    blobs = group.blobs()
    return bool(blobs) and all(s.mean_abs == 0 for s in blobs)


def _zero_weights(group) -> bool:
    params = group.params()
    return bool(params) and params[0].mean_abs == 0   # the weights: param blob 0


class DeadPath(Rule):
    name = "dead_path"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.reported = False
        self.pass_key = None
        self.chain: list = []              # the current run of forward groups with tops of exact zeros
        self.last_top = None               # the last top printed before that run (its input)
        self.zero_tops: dict = {}          # layer -> (its forward group, the top printed before it)
        self.diffs: dict = {}              # blob -> (layer, bottom diff stat) printed in this backward pass

    def on_layer(self, group):
        if self.reported or self.context.source != LOG or group.net != TRAIN:
            return []
        key = (group.iteration, group.pass_index)
        if key != self.pass_key:
            self.pass_key, self.chain, self.last_top, self.zero_tops, self.diffs = key, [], None, {}, {}
        if group.phase == FORWARD:
            return self._forward(group)
        found = self._backward(group)
        for stat in group.blobs():
            self.diffs[stat.blob] = (group.layer, stat)
        return found

    def _forward(self, group) -> list:
        if not group.blobs():
            return []
        if not _all_zero(group) or _zero_weights(group):
            self.chain, self.last_top = [], group.blobs()[-1]
            return []
        if not self.chain:
            self.zero_tops[group.layer] = (group, self.last_top)
        self.chain.append(group)
        if len(self.chain) < self.settings.chain_layers:
            return []
        start, rest = self.chain[0], self.chain[1:]
        weighted = [g.layer for g in rest if g.params()]
        evidence = (f"and so do the {len(rest)} layers after it ({', '.join(g.layer for g in rest)})"
                    + (f", although {', '.join(weighted)} {'has' if len(weighted) == 1 else 'have'} non-zero "
                       f"weights" if weighted else ""))
        return [self._finding(start, self.zero_tops[start.layer][1], evidence, FORWARD)]

    def _backward(self, group) -> list:
        """A layer that printed a zero top and passes back 0 although a non-zero diff reaches its top."""
        start, before = self.zero_tops.get(group.layer, (None, None))
        bottoms = group.blobs()
        if start is None or not bottoms or any(s.mean_abs != 0 for s in bottoms):
            return []
        arriving = [self.diffs[s.blob] for s in start.blobs() if s.blob in self.diffs]
        arriving = [(layer, stat) for layer, stat in arriving if stat.mean_abs != 0]
        if not arriving:
            return []
        layer, stat = arriving[0]
        evidence = (f"and in backward it passes back exactly 0 ({bottoms[0].blob} diff) although the diff reaching "
                    f"it is not 0 ({stat.blob} diff {stat.mean_abs:.3g} from layer {layer}): nothing below it gets "
                    f"a gradient")
        return [self._finding(start, before, evidence, "backward")]

    def _finding(self, start, before: Optional[object], evidence: str, seen_in: str):
        self.reported = True
        top = start.blobs()[0]
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
