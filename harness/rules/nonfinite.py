"""nonfinite: the first NaN/Inf, named after the layer that produced it, or after the output where Caffe
printed it.

Groups arrive in execution order (forward: layer by layer; backward: in reverse), and this rule fires
on the first group holding a non-finite value, so every earlier group was finite: in forward the
layer's inputs were finite, in backward the diffs of its tops were. The first offender is therefore
the producer, never a layer that merely passes NaN on. Reported once: after that, NaN is everywhere.

Without debug lines (most logs people have), every other number Caffe prints is evidence too: each
`Train net output` / `Test net output` (or `Test score`), the displayed loss, the lr, the `All net params`
norms, old Caffe's `[Update]` lines, and any other Caffe line with a nan/inf in it. The finding names the
output (the loss head) that went non-finite while the others stayed finite, and, when the log shows only
every `display`-th iteration, the range in which it went: after the last observation that was finite.
"""
from __future__ import annotations

import math

from ..core.records import FORWARD, TRAIN, Update
from . import losses, structure, suggest
from .base import LOG, Rule, is_nonfinite


# Layers that turn finite inputs into NaN/Inf outside their domain, and that domain's violation.
_DOMAINS = {"Log": "a log of a value <= 0", "Power": "a fractional power of a negative value or 0 to a negative power"}
DISPLAY, SOLVER, OUTPUTS, LOG_LINE = "(display)", "(solver)", "(outputs)", "(log line)"
ALL_PARAMS = "All net params"


def _first(stats: list):
    # Prefer what Caffe prints, so the finding names the line a reader finds first in caffe.log.
    printed = [s for s in stats if s.printed]
    return (printed or stats)[0]


def _describe(stat) -> str:
    if stat.kind == "param":
        return stat.blob
    return f"{stat.kind} blob {stat.blob}"


def _finite(value) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(math.isfinite(v) for v in values if isinstance(v, (int, float)))


def _element(name: str, value) -> str:
    """An output of several elements prints one line each: `name#k` (as parse --csv) is the first non-finite."""
    if not isinstance(value, list):
        return name
    return f"{name}#{next(k for k, v in enumerate(value) if not _finite(v))}"


def _shown(value) -> str:
    return f"{value[0] if isinstance(value, list) else value:g}"


def _range(previous, iteration: int):
    """(first, last): the iterations the condition may have begun in, when the log leaves some out between
    the one shown before and this one (None: exactly this one, or the log shows none before it)."""
    return (previous + 1, iteration) if previous is not None and iteration - previous > 1 else None


def _when(iteration: int, previous) -> str:
    if previous is None and iteration > 0:
        return (f"at iteration {iteration}, the first this log shows: it may have gone non-finite at any "
                f"earlier iteration")
    if _range(previous, iteration) is None:
        return f"at iteration {iteration}"
    return (f"at iteration {iteration}; the display before it is iteration {previous}, so it went non-finite in "
            f"one of iterations {previous + 1}-{iteration}")


class Nonfinite(Rule):
    name = "nonfinite"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.reported = False
        self.seen: dict = {}          # net -> the last iteration observed with outputs
        self.outputs: dict = {}       # net -> its outputs at that observation
        self.debug_iterations: dict = {}   # net -> [the iteration with debug lines before, the current one]
        self.overflow = None          # LOG: the first printed inf nothing else explains, reported at the end

    # ---- debug lines ---------------------------------------------------------------------------------
    def on_layer(self, group):
        # The iteration with debug lines before this one (a log has them at display iterations only).
        shown = self.debug_iterations.setdefault(group.net, [None, None])
        if shown[1] != group.iteration:
            shown[:] = [shown[1], group.iteration]
        previous = shown[0]
        if self.reported:
            return []
        bad = [s for s in group.stats if is_nonfinite(s)]
        if not bad:
            return []
        self.reported = True
        span = _range(previous, group.iteration)
        info = self.context.layer(group.net, group.layer)
        params = [s for s in bad if s.kind == "param"]
        if group.phase == FORWARD and params:
            return [self._corrupted_param(group, _first(params), info)]
        stat = _first(bad)
        cause, explanation, suggestions = (self._forward_cause if group.phase == FORWARD
                                           else self._backward_cause)(group, info)
        where = f"layer {group.layer}" + (f" ({info.type})" if info else "")
        inputs = "its inputs and parameters were finite" if group.phase == FORWARD \
            else "the diffs of its tops were finite"
        seen = f" ({_when(group.iteration, previous)})" if span else ""
        message = (f"{_describe(stat)} of {where} became non-finite ({stat.mean_abs}) in {group.phase} at "
                   f"iteration {group.iteration}{seen} while {inputs}: {explanation}.{self._log_caveat(stat)}")
        return [self._finding(group, stat, message, cause, suggestions, iteration_range=span)]

    def _observe(self, key, iteration: int):
        previous = self.seen.get(key)
        self.seen[key] = iteration
        return previous

    def _finding(self, group, stat, message, cause, suggestions, phase=None, iteration_range=None, **evidence):
        return self.finding(
            kind="nonfinite", iteration=group.iteration, phase=phase or group.phase, layer=group.layer,
            blob=stat.blob, value=stat.mean_abs, message=message, net=group.net,
            suggestions=tuple(suggestions), iteration_range=iteration_range,
            evidence=dict(cause=cause, pass_index=group.pass_index, nonfinite=stat.nonfinite,
                          count=stat.count, source=self.context.source, **evidence))

    def _log_caveat(self, stat) -> str:
        if self.context.source == LOG and stat.mean_abs == float("inf"):
            return (" Caffe printed mean |x| = inf, which may be float overflow of its sum while every"
                    " element is still finite (nan would be certain).")
        return ""

    def _loss_weight_fixes(self, net: str) -> list:
        info = self.context.net(net)
        layers = structure.loss_layers(info) if info else []
        return [suggest.lower_loss_weight(layer, structure.loss_weight(layer), self.context.solver, net)
                for layer in layers if structure.loss_weight(layer) > 1]

    def _forward_cause(self, group, info):
        solver = self.context.solver
        if info is None:
            if group.iteration == 0 and self.context.source == LOG:
                return "nonfinite_at_start", ("the net definition is unknown; at iteration 0 no update has happened "
                                              "yet, so the input or the initial weights hold it, not the step size"), \
                    suggest.at_start(solver)
            return "unknown", "the net definition is unknown, so its cause cannot be told", \
                [suggest.lower_lr(solver), suggest.clip_gradients(solver)]
        if structure.is_data_layer(info):
            source = f" (source: {info.source})" if info.source else ""
            return "bad_input", f"the input data holds non-finite values{source}", [suggest.fix_input(info)]
        if info.type == "Python":
            return "python_layer", "the Python layer's forward() computed them from finite inputs", \
                [suggest.fix_python_layer(info, "forward")]
        if info.type in _DOMAINS:
            net = self.context.net(group.net)
            data = [f for f in structure.feeders(net, info.name) if structure.is_data_layer(f)]
            return "math_domain", f"its inputs left its domain ({_DOMAINS[info.type]})", \
                [suggest.fix_domain(info, _DOMAINS[info.type])] + [
                    suggest.fix_input(f, f"values outside the domain of layer {info.name}") for f in data]
        if structure.is_loss_layer(info):
            return "loss_layer", "the loss overflowed", \
                self._loss_weight_fixes(group.net) + [suggest.normalise_targets(info), suggest.lower_lr(solver)]
        if group.iteration == 0:
            return "initialisation", "activations overflow before any update: the initial weights are too large", \
                [suggest.change_init(info), suggest.add_batchnorm(info)]
        return "exploding", "activations grew until they overflowed", \
            [suggest.lower_lr(solver), suggest.clip_gradients(solver), suggest.add_batchnorm(info)]

    def _backward_cause(self, group, info):
        solver = self.context.solver
        if info is not None and info.type == "Python":
            return "python_layer", "the Python layer's backward() computed them from finite top diffs", \
                [suggest.fix_python_layer(info, "backward")]
        if info is not None and structure.is_loss_layer(info):
            return "loss_layer", "the loss layer's gradient overflowed", \
                self._loss_weight_fixes(group.net) + [suggest.normalise_targets(info), suggest.lower_lr(solver)]
        if info is None and self._loss_by_position(group):
            return "loss_layer", ("it is the loss layer (the net definition is unknown, but backward starts at the "
                                  "loss and this is where this backward pass starts): its gradient overflowed"), \
                [suggest.normalise_targets(None, group.layer), suggest.lower_lr(solver)]
        if group.iteration == 0:
            return "layer_backward", ("no update has happened yet at iteration 0, so the step size is not the cause: "
                                      "the layer's Backward computes NaN/Inf from finite diffs (a bug of the layer, "
                                      "or a derivative undefined where its input is, e.g. at 0)"), \
                [suggest.fix_backward(group.layer), suggest.lower_lr(solver)]
        return "exploding", "gradients grew until they overflowed", \
            self._loss_weight_fixes(group.net) + [suggest.lower_lr(solver), suggest.clip_gradients(solver)]

    def _loss_by_position(self, group) -> bool:
        """Without the net: the first layer of a backward pass is the loss when it is the last layer of the
        forward pass before it, or, when the paste lacks that pass, when its name says loss."""
        view = self.context.view(group.net)
        groups = view.groups if view is not None else []
        if any(g.phase == group.phase and g.layer != group.layer for g in groups):
            return False   # not the first backward layer
        forward = [g for g in groups if g.phase == FORWARD]
        return forward[-1].layer == group.layer if forward else "loss" in group.layer.lower()

    def _corrupted_param(self, group, stat, info):
        where = f"layer {group.layer}" + (f" ({info.type})" if info else "")
        if group.iteration == 0:
            message = (f"{stat.blob} of {where} is non-finite ({stat.mean_abs}) before the first update: "
                       f"the weights were loaded that way.")
            return self._finding(group, stat, message, "corrupted_weights", [suggest.check_weights_file()],
                                 phase="update")
        message = (f"{stat.blob} of {where} is already non-finite ({stat.mean_abs}) when iteration "
                   f"{group.iteration} starts: the weights were corrupted by the update of iteration "
                   f"{group.iteration - 1}.")
        solver = self.context.solver
        return self._finding(group, stat, message, "corrupted_weights",
                             [suggest.lower_lr(solver), suggest.clip_gradients(solver)],
                             phase="update", updated_at=group.iteration - 1)

    # ---- what Caffe prints without debug_info ----------------------------------------------------------
    def on_iteration(self, end):
        previous = self._observe(TRAIN, end.iteration)
        before, self.outputs[TRAIN] = self.outputs.get(TRAIN, {}), end.outputs
        if previous is None and end.display and end.iteration >= end.display:
            previous = end.iteration - end.display   # the log starts later, but says how often it displays
        if self.reported:
            return []
        bad = {name: value for name, value in end.outputs.items() if not _finite(value)}
        if bad:
            return self._report(self._outputs(TRAIN, end.iteration, end.outputs, end.loss_weights, bad, previous,
                                              before))
        for value in (end.smoothed_loss, end.loss):
            if value is not None and not math.isfinite(value):
                return self._report(self._display(end.iteration, value, end.outputs, previous))
        if end.lr is not None and not math.isfinite(end.lr):
            return self._report(self._lr(end.iteration, end.lr, previous))
        return []

    def on_test(self, result):
        previous = self._observe(result.net, result.iteration)
        before, self.outputs[result.net] = self.outputs.get(result.net, {}), result.outputs
        bad = {name: value for name, value in result.outputs.items() if not _finite(value)}
        if self.reported or not bad:
            return []
        return self._report(self._outputs(result.net, result.iteration, result.outputs, result.loss_weights, bad,
                                          previous, before))

    def on_norms(self, norms):
        values = {"L1 norm (data)": norms.l1_data, "L1 norm (diff)": norms.l1_diff,
                  "L2 norm (data)": norms.l2_data, "L2 norm (diff)": norms.l2_diff}
        bad = {name: v for name, v in values.items() if not math.isfinite(v)}
        if self.reported or not bad:
            return []
        blob, value = next(((n, v) for n, v in bad.items() if math.isnan(v)), next(iter(bad.items())))
        if not math.isnan(value):   # inf: the float sum may have overflowed (exploding says so); last resort
            if self.overflow is None and self.context.source == LOG:
                self.overflow = (norms, blob, value)
            return []
        message = (f"Caffe's `All net params` {blob} is {value} at iteration {norms.iteration}: some parameter "
                   f"{'gradient' if 'diff' in blob else 'value'} is NaN although no per-layer line showed it.")
        return self._report(self._line_finding(norms.iteration, "backward", ALL_PARAMS, blob, value, message,
                                               "exploding", norms.net))

    def on_event(self, event):
        if self.reported:
            return []
        if event.kind == "update":
            return self._report(self._update(event))
        if event.kind == "final_loss" and not _finite(float(event.text)):
            return self._report(self._display(event.iteration, float(event.text), {}, event.iteration))
        if event.kind == "nonfinite_text":
            message = (f"Caffe's log prints a non-finite number at iteration {event.iteration}: `{event.text}`.")
            return self._report(self._line_finding(event.iteration or 0, FORWARD, LOG_LINE, "", "nan", message,
                                                   "unknown", TRAIN))
        return []

    def finish(self):
        if self.reported or self.overflow is None:
            return []
        norms, blob, value = self.overflow
        message = (f"The only non-finite number in this log is Caffe's `All net params` {blob} = {value} at "
                   f"iteration {norms.iteration}: the float sum behind it overflowed while every per-layer value "
                   f"was finite. The gradients (or weights) are exploding; the iterations after it would turn "
                   f"NaN.")
        return self._report(self._line_finding(norms.iteration, "backward", ALL_PARAMS, blob, value, message,
                                               "overflow", norms.net))

    def _report(self, finding) -> list:
        if finding is None:
            return []
        self.reported = True
        return [finding]

    def _line_finding(self, iteration, phase, layer, blob, value, message, cause, net, suggestions=None,
                      output=None, span=None, **evidence):
        solver = self.context.solver
        return self.finding(
            kind="nonfinite", iteration=iteration, phase=phase, layer=layer, blob=blob, value=value,
            message=message, net=net, output=output, iteration_range=span,
            suggestions=tuple(suggestions or [suggest.lower_lr(solver), suggest.clip_gradients(solver)]),
            evidence=dict(cause=cause, source=self.context.source, **evidence))

    def _outputs(self, net_name, iteration, outputs, printed, bad, previous, before):
        """The head that went non-finite: a loss output before any other, the others named if finite."""
        net = self.context.net(net_name)
        loss_names = {out.name for out in losses.loss_outputs(net, outputs, printed)} | {
            name for name, weight in printed.items() if weight != 0}
        names = [n for n in bad if n in loss_names] + [n for n in bad if n not in loss_names]
        head = names[0]
        shown_head = _element(head, bad[head])
        finite = {n: v for n, v in outputs.items() if n not in bad}
        producer = net.producers(head)[-1] if net is not None and net.producers(head) else None
        kind = "loss" if head in loss_names else "output"
        where = f"{kind} {shown_head}" + (f" (layer {producer.name}, {producer.type})" if producer else "")
        if finite:
            others = "; the other outputs stayed finite: " + ", ".join(f"{n} = {_shown(v)}" for n, v in finite.items())
        elif len(bad) > 1:
            others = (f"; so is every other output ({', '.join(names[1:])}): the log does not tell which went "
                      f"first")
        else:
            others = ""
        if _finite(before.get(head, math.nan)) and previous is not None:
            others = f" (it read {_shown(before[head])} at iteration {previous})" + others
        cause, why, suggestions = self._output_cause(iteration, shown_head, kind, producer, finite, loss_names,
                                                     net_name)
        value = bad[head] if not isinstance(bad[head], list) else next(v for v in bad[head] if not _finite(v))
        message = (f"{where[0].upper()}{where[1:]} of the {net_name} net is {value} "
                   f"{_when(iteration, previous)}{others}. {why}")
        return self._line_finding(iteration, FORWARD, producer.name if producer else OUTPUTS, head, value,
                                  message, cause, net_name, suggestions, output=shown_head,
                                  span=_range(previous, iteration),
                                  nonfinite_outputs=names, finite_outputs=list(finite))

    def _output_cause(self, iteration, head, kind, producer, finite, loss_names, net_name):
        solver = self.context.solver
        if kind == "output":
            return "hidden_nan_output", (f"{head} is not a loss (no loss weight), so Caffe's loss does not show "
                                         f"it: a monitoring output such as an accuracy over no valid label "
                                         f"(0/0)."), [f"fix the layer that computes output {head} (for an "
                                                      f"accuracy: its ignore_label and the labels of the batch), "
                                                      f"or drop it if it is not needed"]
        if iteration == 0:
            return "nonfinite_at_start", ("At iteration 0 no update has happened yet: the input data (NaN/Inf, "
                                          "or labels outside the loss's range) or the initial weights produce "
                                          "it, not the step size."), suggest.at_start(solver, producer)
        if any(n in loss_names for n in finite):
            fixes = [suggest.normalise_targets(producer, head)]
            if producer is not None and structure.loss_weight(producer) > 1:
                fixes.insert(0, suggest.lower_loss_weight(producer, structure.loss_weight(producer), solver,
                                                          net_name))
            return "loss_head", (f"This head alone diverged: its targets or its loss_weight are out of scale with "
                                 f"the rest of the net."), fixes + [suggest.lower_lr(solver)]
        return "exploding", ("The training diverged: the step size is too large for these gradients (or one "
                             "bad batch overflowed the loss)."), \
            [suggest.lower_lr(solver), suggest.clip_gradients(solver)]

    def _display(self, iteration, value, outputs, previous):
        finite = outputs and all(_finite(v) for v in outputs.values())
        if finite:
            why = ("Every `Train net output` of that iteration is finite: Caffe's displayed loss is a running mean "
                   "over `average_loss` iterations, and one of them had a non-finite loss (it stays non-finite from "
                   "then on)")
            cause = "intermittent_nan"
            suggestions = ["find the batch of the non-finite iteration (NaN or Inf in the data, a division by zero "
                           "in a loss) and fix it there: one bad batch is enough to poison the displayed loss",
                           suggest.clip_gradients(self.context.solver)]
        elif iteration == 0:
            why, cause, suggestions = ("At iteration 0 no update has happened yet: the input data or the initial "
                                       "weights produce it, not the step size"), "nonfinite_at_start", \
                suggest.at_start(self.context.solver)
        else:
            why, cause, suggestions = "The training diverged", "exploding", None
        message = f"Caffe's displayed loss is {value} {_when(iteration, previous)}. {why}."
        return self._line_finding(iteration, FORWARD, DISPLAY, "loss", value, message, cause, TRAIN, suggestions,
                                  output="loss", span=_range(previous, iteration))

    def _lr(self, iteration, lr, previous):
        message = (f"The learning rate Caffe printed is {lr} {_when(iteration, previous)}: the schedule computes no "
                   f"number (a `poly` policy without `max_iter`, an `inv`/`exp` gamma or power out of range, a "
                   f"`multistep` without `stepvalue`), so every update turns the weights non-finite. A lower "
                   f"`base_lr` does nothing for it.")
        return self._line_finding(iteration, "update", SOLVER, "lr", lr, message, "lr_out_of_range", TRAIN,
                                  [suggest.check_schedule(self.context.solver)], span=_range(previous, iteration))

    def _update(self, event):
        update = Update.of(event)
        if update.data is not None and not math.isfinite(update.data):
            value, what, cause = update.data, "its weights are already non-finite", "corrupted_weights"
        elif not math.isfinite(update.diff):
            value, what, cause = update.diff, "the step about to be applied is non-finite", "exploding"
        else:
            return None
        message = (f"Caffe's `[Update]` line for {update.blob} of layer {update.layer} at iteration "
                   f"{event.iteration}: {what} ({value}).")
        return self._line_finding(event.iteration or 0, "update", update.layer, update.blob, value, message, cause,
                                  TRAIN)
