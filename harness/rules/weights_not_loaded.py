"""weights_not_loaded: weights were given (--weights / -weights), Caffe ignored source layers of the file,
and net layers with parameters started from their fillers' values.

Caffe copies weights by layer name and says only one side of a mismatch: `Ignoring source layer X` for
each layer of the file that the net lacks (an Event of kind "ignored_source_layer", live and from logs).
The other side is read from the first train forward pass: a parameter blob that is exactly 0 there is
still at a constant-0 filler (the default bias filler, BatchNorm statistics), which no trained weight
is. Both lists are reported side by side; without ignored source layers (all names matched, or no
weights given) the rule says nothing.
"""
from __future__ import annotations

from typing import Optional

from ..core.records import FORWARD, TRAIN
from .base import Rule


class WeightsNotLoaded(Rule):
    name = "weights_not_loaded"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.ignored: list = []           # source layer names, in log order, once (each net logs them)
        self.unloaded: list = []          # (layer, first all-zero param BlobStat) in the first train forward
        self.first: Optional[int] = None  # the first train iteration seen
        self.judged = False

    def on_event(self, event):
        if event.kind == "ignored_source_layer" and event.text not in self.ignored:
            self.ignored.append(event.text)
        return []

    def on_layer(self, group):
        if self.judged or group.net != TRAIN or group.phase != FORWARD:
            return []
        if self.first is None:
            self.first = group.iteration
        if (group.iteration, group.pass_index) != (self.first, 0):
            return []
        zero = [p for p in group.params() if p.mean_abs == 0]
        if zero:
            self.unloaded.append((group.layer, zero[0]))
        return []

    def on_iteration(self, end):
        if self.judged:
            return []
        self.judged = True
        if not self.ignored or not self.unloaded:
            return []
        layer, stat = self.unloaded[0]
        net_layers = [name for name, _ in self.unloaded]
        rows = max(len(self.ignored), len(net_layers))
        side_by_side = [[self.ignored[i] if i < len(self.ignored) else "",
                         net_layers[i] if i < len(net_layers) else ""] for i in range(rows)]
        message = (f"Weights were given but did not reach every layer: Caffe ignored source layer(s) "
                   f"{', '.join(self.ignored)} of the weights file (the net has no layers of those names), and "
                   f"net layer(s) {', '.join(net_layers)} started from their fillers' values (a parameter blob "
                   f"exactly 0 at iteration {self.first}). Caffe copies weights by layer name: these layers "
                   f"train from scratch.")
        return [self.finding(
            kind="weights_not_loaded", iteration=self.first, phase=FORWARD, layer=layer, blob=stat.blob,
            value=stat.mean_abs, message=message,
            suggestions=("rename the net's layers to the names the weights file uses (left column), or the "
                         "reverse, so that Caffe copies them",
                         "if re-initialising those layers is intended (a new head for fine-tuning), ignore this"),
            evidence=dict(cause="weights_not_loaded", ignored_source_layers=list(self.ignored),
                          net_layers_without_weights=net_layers,
                          side_by_side={"columns": ["source layer ignored", "net layer without weights"],
                                        "rows": side_by_side},
                          source=self.context.source))]
