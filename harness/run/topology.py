"""Each layer's bottom and top blob names as Caffe built the net, for pycaffe builds that do not expose them.

BVLC's pycaffe has `Net._top_ids(i)` / `_bottom_ids(i)` (since 2015); older forks (py-faster-rcnn's
caffe-fast-rcnn, for one) have only the layer and blob names. Caffe rewrites the prototxt before it builds
the net: a blob read by more than one layer gets a Split layer (`<blob>_<layer>_<k>_split`, tops
`..._split_0`, `..._split_1`, ...), and a top with a loss weight that is also read counts as one more
reader (src/caffe/util/insert_splits.cpp). This mirrors that rewrite and checks the result against the
layer names the build reports, so a net it cannot mirror is refused instead of being measured wrongly.
"""
from __future__ import annotations

from typing import Sequence

from ..core.errors import HarnessError


def _split_name(layer: str, blob: str, index: int) -> str:
    return f"{blob}_{layer}_{index}_split"


def blob_names(layer_params: Sequence, inputs: Sequence[str], built_layers: Sequence[str], source: str) -> tuple:
    """([bottom names], [top names]) per layer of the built net, in its order, Split layers included.

    `layer_params`: the LayerParameters the net kept for its phase, in prototxt order; `inputs`: the
    net's legacy `input:` blobs; `built_layers`: the layer names pycaffe reports (`net._layer_names`).
    """
    last_top: dict = {name: (-1, k) for k, name in enumerate(inputs)}   # blob -> (layer, top index) that wrote it last
    source_of: dict = {}                                                 # (layer, bottom index) -> (layer, top index)
    readers: dict = {}                                                   # (layer, top index) -> how many read it
    has_loss: set = set()
    for i, layer in enumerate(layer_params):
        for j, blob in enumerate(layer.bottom):
            if blob not in last_top:
                raise HarnessError(f"{source}: layer '{layer.name}' reads blob '{blob}', which no layer before "
                                   "it writes.")
            source_of[i, j] = last_top[blob]
            readers[last_top[blob]] = readers.get(last_top[blob], 0) + 1
        for j, blob in enumerate(layer.top):
            last_top[blob] = (i, j)
        for j in range(min(len(layer.loss_weight), len(layer.top))):
            if layer.loss_weight[j]:
                has_loss.add((i, j))
                readers[i, j] = readers.get((i, j), 0) + 1

    names = ["input"] + [layer.name for layer in layer_params]   # names[i + 1] is layer i's, names[0] the inputs'
    built_bottoms, built_tops, built_names = [], [], []
    next_split: dict = {}

    def add_splits(i: int, tops: Sequence[str]) -> None:
        for j, blob in enumerate(tops):
            count = readers.get((i, j), 0)
            if count > 1:
                base = _split_name(names[i + 1], blob, j)
                built_names.append(base)
                built_bottoms.append([blob])
                built_tops.append([f"{base}_{k}" for k in range(count)])
                if (i, j) in has_loss:
                    next_split[i, j] = 1   # split output 0 carries the loss
    add_splits(-1, inputs)
    for i, layer in enumerate(layer_params):
        bottoms = list(layer.bottom)
        for j, blob in enumerate(bottoms):
            origin = source_of[i, j]
            if readers.get(origin, 0) > 1:
                k = next_split.get(origin, 0)
                next_split[origin] = k + 1
                bottoms[j] = f"{_split_name(names[origin[0] + 1], blob, origin[1])}_{k}"
        built_names.append(layer.name)
        built_bottoms.append(bottoms)
        built_tops.append(list(layer.top))
        add_splits(i, layer.top)

    if built_names != list(built_layers):
        raise HarnessError(
            f"{source}: this Caffe build does not expose each layer's blobs to Python, and the net it built "
            f"({len(built_layers)} layers) differs from the one rebuilt from the prototxt ({len(built_names)} "
            "layers), so the harness cannot tell which blob is which. Use a build whose pycaffe has "
            "Net._top_ids (BVLC Caffe since 2015).")
    return built_bottoms, built_tops
