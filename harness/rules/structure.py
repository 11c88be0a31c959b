"""Questions about a net's wiring that rules and the report both ask (pure functions over NetInfo)."""
from __future__ import annotations

from typing import Optional

from ..core.netinfo import LOSS_TYPES, LayerInfo, NetInfo


def index_of(net: NetInfo, layer: str) -> int:
    return next((i for i, info in enumerate(net.layers) if info.name == layer), -1)


def is_data_layer(info: LayerInfo) -> bool:
    """Data, HDF5Data, Input, DummyData, ImageData, a Python layer without bottoms...: anything that
    produces tops from nothing, so a non-finite top means the input itself holds it."""
    return not info.bottoms and bool(info.tops)


def is_loss_layer(info: LayerInfo) -> bool:
    return info.type in LOSS_TYPES or any(w != 0 for w in info.loss_weights)


def feeder(net: NetInfo, layer: str, blob: str) -> Optional[LayerInfo]:
    """The layer that last wrote `blob` before `layer` runs (in-place layers rewrite the same name)."""
    before = net.layers[:max(index_of(net, layer), 0)]
    return next((info for info in reversed(before) if blob in info.tops), None)


def feeders(net: NetInfo, layer: str) -> list:
    """The layers whose outputs `layer` reads, one per bottom, without repeats."""
    info = net.layer(layer)
    found = []
    for blob in info.bottoms if info is not None else ():
        source = feeder(net, layer, blob)
        if source is not None and source not in found:
            found.append(source)
    return found


def consumers(net: NetInfo, layer: str, blob: str) -> list:
    """(layer, bottom index) pairs that read the version of `blob` that `layer` wrote: later readers
    up to and including the next layer that rewrites it in place."""
    found = []
    for info in net.layers[index_of(net, layer) + 1:]:
        found += [(info, k) for k, bottom in enumerate(info.bottoms) if bottom == blob]
        if blob in info.tops:
            break
    return found


def loss_weight(info: LayerInfo) -> float:
    return max((w for w in info.loss_weights), default=0.0)


def loss_layers(net: NetInfo) -> list:
    return [info for info in net.layers if any(w != 0 for w in info.loss_weights)]
