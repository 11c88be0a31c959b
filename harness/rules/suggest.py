"""Concrete changes to try, written against the user's own solver and net files.

Rules pick the suggestions (they know the cause); these functions only spell them with the user's
values and paths, so every rule words the same fix the same way.
"""
from __future__ import annotations

from typing import Optional

from ..core.netinfo import LayerInfo, SolverInfo


def _num(value: float) -> str:
    return f"{value:g}"


def solver_file(solver: Optional[SolverInfo]) -> str:
    return solver.solver_path if solver is not None and solver.solver_path else "the solver prototxt"


def net_file(solver: Optional[SolverInfo], net: str) -> str:
    path = solver.net_paths.get(net) if solver is not None else None
    return path or "the net prototxt"


def lower_lr(solver: Optional[SolverInfo]) -> str:
    if solver is None or not solver.base_lr:
        return f"lower `base_lr` tenfold in {solver_file(solver)}"
    return f"`base_lr: {_num(solver.base_lr)} -> {_num(solver.base_lr / 10)}` in {solver_file(solver)}"


def clip_gradients(solver: Optional[SolverInfo]) -> str:
    if solver is not None and solver.clip_gradients is not None:
        return (f"`clip_gradients: {_num(solver.clip_gradients)} -> {_num(solver.clip_gradients / 10)}` "
                f"in {solver_file(solver)}")
    return f"add `clip_gradients: 10` to {solver_file(solver)}"


def lower_loss_weight(layer: LayerInfo, weight: float, solver: Optional[SolverInfo], net: str) -> str:
    return (f"`loss_weight` of loss layer {layer.name}: `{_num(weight)} -> 1` in {net_file(solver, net)} "
            f"(or lower it further until the losses have similar magnitudes)")


def fix_input(layer: LayerInfo, problem: str = "non-finite values") -> str:
    source = f" {layer.source}" if layer.source else ""
    return (f"the input holds {problem}: clean or drop the samples in the data source{source} "
            f"of layer {layer.name} ({layer.type})")


def fix_python_layer(layer: LayerInfo, method: str) -> str:
    return (f"fix the `{method}()` of Python layer {layer.name}: it produces non-finite values from finite "
            f"inputs (guard divisions and logarithms, e.g. add a small epsilon)")


def fix_domain(layer: LayerInfo, domain: str) -> str:
    return (f"keep the inputs of layer {layer.name} ({layer.type}) inside its domain ({domain} is not "
            f"finite): shift or clamp them before it, or fix the data that feeds it")


def normalise_targets(layer: Optional[LayerInfo], output: str = "") -> str:
    what = f"loss layer {layer.name} ({layer.type})" if layer is not None else f"the loss that computes {output}"
    return f"scale the inputs or targets of {what} to a small range (e.g. mean 0, std 1), or lower its `loss_weight`"


def at_start(solver: Optional[SolverInfo], layer: Optional[LayerInfo] = None) -> list:
    """Non-finite before any update: the data or the initial weights, whatever the learning rate."""
    fixes = ["check the input data for NaN/Inf and its scale (e.g. `transform_param { scale: 0.00390625 }` for "
             "8-bit images), and that every label lies in 0..K-1 for K outputs of the classifier"]
    if layer is not None:
        fixes.append(normalise_targets(layer))
    return fixes + ["give the layers a scaled initialisation (`weight_filler { type: \"msra\" }` or \"xavier\") "
                    f"instead of a fixed-std gaussian; a lower `base_lr` in {solver_file(solver)} will not help: "
                    "iteration 0 runs before any update"]


def dead_path(layer: str, before, info: Optional[LayerInfo], solver: Optional[SolverInfo]) -> list:
    """A top of exact zeros: a rectifier fed only negatives, or an input that is already all zeros."""
    rectifier = info.type in ("ReLU", "PReLU", "ELU") if info is not None else "relu" in layer.lower()
    if rectifier and before is not None and before.mean_abs != 0:
        return [f"scale the input data (e.g. `transform_param {{ scale: 0.00390625 }}` or mean subtraction) and give "
                f"the layer before {layer} a scaled `weight_filler` (\"msra\" / \"xavier\") and a small positive "
                f"`bias_filler`: its outputs are all negative, so {layer} passes nothing",
                f"let layer {layer} pass a little gradient for negative inputs: `relu_param {{ negative_slope: 0.01 }}`",
                f"a lower `base_lr` in {solver_file(solver)} alone does not revive a dead rectifier"]
    return [f"check what reaches layer {layer}: the input images (readable, not blank: the paths of the image list), "
            f"a `transform_param` mean/scale that zeros them, and that the weights of the layers before it were "
            f"loaded (not all 0)",
            f"the learning rate does not help a pass that is dead before any update; once the input is fixed, a "
            f"leaky ReLU (`relu_param {{ negative_slope: 0.01 }}`) keeps rectifiers from dying"]


def fix_backward(layer: str) -> str:
    return (f"check the Backward of layer {layer} against the values that reach it (a known bug of that layer type "
            f"in your Caffe version, a custom layer's backward(), an input at a point where the derivative is "
            f"undefined); update Caffe if the layer is one of its own")


def check_schedule(solver: Optional[SolverInfo]) -> str:
    return (f"check `base_lr`, `lr_policy` and its `gamma` / `power` / `stepsize` / `max_iter` in "
            f"{solver_file(solver)}: a step schedule multiplies by gamma at every step (0.1 lowers, 10 raises), "
            f"`poly` divides by max_iter")


def add_batchnorm(layer: LayerInfo) -> str:
    return f"add a `BatchNorm` + `Scale` pair after layer {layer.name} to keep its outputs in range"


def change_init(layer: LayerInfo) -> str:
    return (f"give layer {layer.name} a scaled initialisation: `weight_filler {{ type: \"msra\" }}` "
            f"(or \"xavier\") instead of a fixed-std gaussian")


def check_weights_file() -> str:
    return "the weights given with --weights already hold non-finite values: use an earlier, finite snapshot"


def bias_filler(feeding: LayerInfo, rectifier: LayerInfo) -> str:
    return (f"check `bias_filler` of layer {feeding.name}: a negative constant there makes every input of "
            f"{rectifier.name} negative; use `bias_filler {{ type: \"constant\" value: 0.1 }}`")


def leaky_relu(rectifier: LayerInfo) -> str:
    return (f"let layer {rectifier.name} pass a little gradient for negative inputs: "
            f"`relu_param {{ negative_slope: 0.01 }}`")


def connect_or_freeze(layer: LayerInfo, solver: Optional[SolverInfo], net: str) -> str:
    return (f"connect layer {layer.name} to a loss, or freeze it on purpose with `param {{ lr_mult: 0 }}` "
            f"in {net_file(solver, net)}")


def desaturate(layer: LayerInfo, solver: Optional[SolverInfo], from_start: bool) -> list:
    """A TanH/Sigmoid pinned at its limits: the values reaching it are far too large, from the first
    iteration (the data's scale: no step was taken yet) or since the steps grew them."""
    scale = (f"scale the inputs and targets to a small range (e.g. mean 0, std 1), so that layer {layer.name} "
             f"({layer.type}) works where its slope is not 0")
    return [scale, lower_lr(solver)] if from_start else [lower_lr(solver), clip_gradients(solver), scale]


def zero_loss_gradient(net) -> str:
    names = ", ".join(layer.name for layer in net.layers if any(w != 0 for w in layer.loss_weights)) or "the loss"
    return (f"check the loss layers ({names}): they send back exactly 0 when every label equals `ignore_label`, "
            f"the labels are empty, or the loss is already exactly 0")


def check_backward_of(layer: LayerInfo) -> str:
    return (f"look at the backward line of layer {layer.name} ({layer.type}): it receives a gradient and passes "
            f"back exactly 0; its inputs or parameters decide why")


def remove_propagate_down(blocker: LayerInfo, solver: Optional[SolverInfo], net: str) -> str:
    return f"remove `propagate_down: false` from layer {blocker.name} in {net_file(solver, net)}"
