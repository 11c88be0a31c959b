"""Which train-net outputs are losses, and of which layer: what the loss-level rules (saturated softmax,
chance level, loss head, no learning signal) read from IterationEnd.outputs, live and from logs alike."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..core.netinfo import LayerInfo, NetInfo
from . import structure


@dataclass(frozen=True)
class LossOutput:
    name: str                  # the output (top blob) name, as in `Train net output #k: name = value`
    layer: Optional[LayerInfo]  # None: the net is unknown, the log printed the output as a loss
    weight: float              # its loss_weight
    value: float

    @property
    def where(self) -> str:
        """How a message names it: `loss (layer loss, SoftmaxWithLoss)`, or the output alone."""
        return f"{self.name} (layer {self.layer.name}, {self.layer.type})" if self.layer else self.name


def loss_outputs(net: Optional[NetInfo], outputs: dict, printed: Optional[dict] = None) -> list:
    """The outputs written by a top with a non-zero loss_weight, in the net's order. Without the net, and
    when `printed` is given (IterationEnd.loss_weights), the outputs the log printed as losses."""
    if net is None:
        return [LossOutput(name, None, weight, float(outputs[name])) for name, weight in (printed or {}).items()
                if weight != 0 and isinstance(outputs.get(name), (int, float))]
    found = []
    for info in net.layers:
        for top, weight in zip(info.tops, info.loss_weights):
            value = outputs.get(top)
            if weight != 0 and isinstance(value, (int, float)):
                found.append(LossOutput(top, info, weight, float(value)))
    return found


def num_classes(net: NetInfo, layer: LayerInfo) -> Optional[int]:
    """K of a SoftmaxWithLoss: num_output of the layer that feeds its scores (None when the net does not say)."""
    if layer.type != "SoftmaxWithLoss" or not layer.bottoms:
        return None
    feeding = structure.feeder(net, layer.name, layer.bottoms[0])
    return feeding.num_output if feeding is not None and feeding.num_output and feeding.num_output > 1 else None


def flat_values(outputs: dict) -> list:
    """Every number among the outputs (vector outputs flattened)."""
    values = []
    for value in outputs.values():
        values += value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, (int, float))]


def all_finite(values) -> bool:
    return all(math.isfinite(v) for v in values)
