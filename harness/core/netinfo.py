"""What the harness knows about a net's structure: layers, their blobs, learning-rate multipliers, and
which debug lines Caffe prints for them (Caffe's `Net::Init` backward bookkeeping, mirrored in Python
because pycaffe does not expose it).

Built from pycaffe's view of the net live (exact: splits, parameter counts, loss weights), or from a
NetParameter alone (a log's echoed net: parameter counts then come from the layer type).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

# Layers whose bottom K is a label that Caffe never back-propagates into, even with force_backward
# (Layer::AllowForceBackward overrides in BVLC Caffe).
_NO_FORCE_BACKWARD_BOTTOM = {
    "SoftmaxWithLoss": 1, "SigmoidCrossEntropyLoss": 1, "HingeLoss": 1, "InfogainLoss": 1,
    "MultinomialLogisticLoss": 1, "Accuracy": 1, "ContrastiveLoss": 2,
}
# Loss layers get loss_weight 1 on their first top when the prototxt gives none (LossLayer::LayerSetUp).
LOSS_TYPES = {"SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss",
              "MultinomialLogisticLoss", "ContrastiveLoss"}
RECTIFIER_TYPES = {"ReLU", "PReLU", "ELU"}
# Parameter blobs per layer type when only the prototxt is known (the bias blob is conditional).
_PARAM_COUNTS = {"Convolution": 2, "Deconvolution": 2, "InnerProduct": 2, "Embed": 2, "BatchNorm": 3,
                 "Scale": 1, "Bias": 1, "PReLU": 1}


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    bottoms: tuple = ()
    tops: tuple = ()
    lr_mults: tuple = ()              # one per parameter blob
    param_names: tuple = ()           # "" where the param has no name
    loss_weights: tuple = ()          # one per top
    num_output: Optional[int] = None
    source: Optional[str] = None      # a data layer's source file
    need_backward: bool = False
    bottom_need_backward: tuple = ()
    param_need_backward: tuple = ()   # Caffe's param_propagate_down: lr_mult != 0 (or force_backward)

    def param_display(self, index: int) -> str:
        """How `[Forward]` lines spell parameter `index`: its name if it has one, else the index."""
        name = self.param_names[index] if index < len(self.param_names) else ""
        return f"param blob {name or index}"


@dataclass(frozen=True)
class NetInfo:
    name: str
    layers: tuple = ()
    force_backward: bool = False
    _by_name: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self._by_name.update({layer.name: layer for layer in self.layers})

    def layer(self, name: str) -> Optional[LayerInfo]:
        return self._by_name.get(name)

    def producers(self, blob: str) -> list:
        """Layers that write `blob`, in execution order (several when layers work in place)."""
        return [layer for layer in self.layers if blob in layer.tops]


def _spec_list(layer_param, num_params: int):
    lr_mults, names = [], []
    for k in range(num_params):
        spec = layer_param.param[k] if layer_param is not None and k < len(layer_param.param) else None
        lr_mults.append(spec.lr_mult if spec is not None else 1.0)
        names.append(spec.name if spec is not None else "")
    return tuple(lr_mults), tuple(names)


def _num_output(layer_param) -> Optional[int]:
    if layer_param is None:
        return None
    for sub in ("inner_product_param", "convolution_param", "embed_param"):
        if layer_param.HasField(sub):
            return getattr(layer_param, sub).num_output
    return None


def _source(layer_param) -> Optional[str]:
    if layer_param is None:
        return None
    for sub in ("hdf5_data_param", "data_param", "image_data_param", "window_data_param"):
        if layer_param.HasField(sub) and getattr(layer_param, sub).source:
            return getattr(layer_param, sub).source
    return None


def build(name: str, layers: Sequence[dict], layer_params: dict, force_backward: bool) -> NetInfo:
    """Mirror of Net::Init's backward flags.

    `layers`: in execution order, dicts with name, type, bottoms, tops, num_params, loss_weights (per top).
    `layer_params`: layer name -> LayerParameter from the prototxt (auto-inserted Split layers have none).
    """
    blob_need_backward: dict = {}
    staged = []
    for spec in layers:
        lp = layer_params.get(spec["name"])
        need = False
        bottom_need = []
        for k, blob in enumerate(spec["bottoms"]):
            blob_need = blob_need_backward.get(blob, False)
            need |= blob_need
            if lp is not None and len(lp.propagate_down) > 0:
                blob_need = bool(lp.propagate_down[k])
            bottom_need.append(blob_need)
        lr_mults, names = _spec_list(lp, spec["num_params"])
        param_need = [m != 0 for m in lr_mults]
        need |= any(param_need)
        if need:
            for blob in spec["tops"]:
                blob_need_backward[blob] = True
        staged.append(dict(spec, lr_mults=lr_mults, names=names, need=need,
                           bottom_need=bottom_need, param_need=param_need, lp=lp))

    # Backwards: layers that reach no loss, or all of whose tops were cut, need no backward.
    under_loss, skip_backprop = set(), set()
    for st in reversed(staged):
        contributes = any(w != 0 for w in st["loss_weights"]) or any(t in under_loss for t in st["tops"])
        all_tops_skipped = all(t in skip_backprop for t in st["tops"])
        if st["need"] and all_tops_skipped:
            st["need"] = False
            st["bottom_need"] = [False] * len(st["bottom_need"])
        if not contributes:
            st["need"] = False
        for k, blob in enumerate(st["bottoms"]):
            if contributes:
                under_loss.add(blob)
            else:
                st["bottom_need"][k] = False
            if not st["bottom_need"][k]:
                skip_backprop.add(blob)

    if force_backward:
        for st in staged:
            st["need"] = True
            no_force = _NO_FORCE_BACKWARD_BOTTOM.get(st["type"])
            st["bottom_need"] = [need or k != no_force for k, need in enumerate(st["bottom_need"])]
            st["param_need"] = [True] * len(st["param_need"])

    return NetInfo(name=name, force_backward=force_backward, layers=tuple(
        LayerInfo(name=st["name"], type=st["type"], bottoms=tuple(st["bottoms"]), tops=tuple(st["tops"]),
                  lr_mults=st["lr_mults"], param_names=st["names"], loss_weights=tuple(st["loss_weights"]),
                  num_output=_num_output(st["lp"]), source=_source(st["lp"]), need_backward=st["need"],
                  bottom_need_backward=tuple(st["bottom_need"]), param_need_backward=tuple(st["param_need"]))
        for st in staged))


def from_net_parameter(net_param) -> NetInfo:
    """Best effort from a prototxt alone (no auto-inserted splits; parameter counts from the type)."""
    layers, params = [], {}
    for lp in net_param.layer:
        count = _PARAM_COUNTS.get(lp.type, 0)
        if lp.type in ("Convolution", "Deconvolution") and not lp.convolution_param.bias_term:
            count = 1
        if lp.type == "InnerProduct" and not lp.inner_product_param.bias_term:
            count = 1
        if lp.type == "Scale" and lp.scale_param.bias_term:
            count = 2
        count = max(count, len(lp.param))
        weights = list(lp.loss_weight) or ([1.0] if lp.type in LOSS_TYPES else [])
        weights += [0.0] * (len(lp.top) - len(weights))
        layers.append(dict(name=lp.name, type=lp.type, bottoms=list(lp.bottom), tops=list(lp.top),
                           num_params=count, loss_weights=weights))
        params[lp.name] = lp
    return build(net_param.name, layers, params, net_param.force_backward)


@dataclass(frozen=True)
class SolverInfo:
    """The solver settings that rules and suggestions quote (from the effective solver, or a log's echo)."""
    solver_path: str = ""
    net_paths: dict = field(default_factory=dict)   # "train" / "test0" ... -> net prototxt path
    type: str = "SGD"
    base_lr: Optional[float] = None
    lr_policy: str = "fixed"
    gamma: Optional[float] = None
    power: Optional[float] = None
    stepsize: Optional[int] = None
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    clip_gradients: Optional[float] = None          # None: not set (Caffe's -1)
    iter_size: int = 1
    max_iter: Optional[int] = None
    display: Optional[int] = None
    test_interval: Optional[int] = None
    random_seed: Optional[int] = None


def to_dict(info: NetInfo) -> dict:
    return {"name": info.name, "force_backward": info.force_backward,
            "layers": [{f: getattr(layer, f) for f in LayerInfo.__dataclass_fields__} for layer in info.layers]}


def from_dict(data: dict) -> NetInfo:
    layers = tuple(LayerInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()})
                   for layer in data["layers"])
    return NetInfo(name=data["name"], layers=layers, force_backward=data["force_backward"])
