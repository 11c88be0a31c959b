"""chance_loss: a classification loss at chance level, ln(K) for K classes (a uniform prediction), judged on
the mean of the last `window_iters` observed values of each SoftmaxWithLoss output of the train net.

Two kinds:
- stuck_at_chance: the loss never went below `trained_fraction` x ln K, and the window's mean is within
  `max_rel_distance` of ln K: the net is not learning at all (healthy nets start there too, but leave
  within a few dozen iterations: hence the window).
- collapse_to_chance: the loss had gone below that line (the net had learnt), rose back above it and
  its window mean now sits at ln K: the net broke and has not recovered for a whole window. Earlier
  excursions that reached ln K or more and did recover are reported as the spikes that announced it.
K is num_output of the layer feeding the loss's scores. From a log without it (no net definition, or a layer
without num_output), K is what the log's own numbers agree on (rules/chance_log.py), and the log is judged
at its end: a loss that ends stuck near ln K, or collapsed to exactly ln K; and `test_at_chance`, a test
net whose accuracy stays at 1/K after iteration 0 while the train loss falls (the test pipeline differs
from the train one, or the train batches are not shuffled).
"""
from __future__ import annotations

import math
from collections import deque

from ..core.records import FORWARD, TRAIN
from . import chance_log, losses, suggest
from .base import LOG, Rule

_MAX_SPIKES = 10


class _Track:
    """One loss output's window and its history relative to the trained line."""

    def __init__(self, window: int):
        self.window = deque(maxlen=window)     # (iteration, value)
        self.trained = False
        self.excursion = None                  # [first iteration, peak] above the line after training
        self.spikes: list = []                 # recovered excursions: {"iteration", "loss"}
        self.done = False


class ChanceLoss(Rule):
    name = "chance_loss"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.tracks: dict = {}
        self.series: dict = {}     # a log without K: (net, output, "loss" | "accuracy") -> chance_log.Series

    def on_iteration(self, end):
        net = self.context.net(TRAIN)
        if self.context.source == LOG:
            self._collect(TRAIN, end.iteration, end.outputs, end.loss_weights, end.smoothed_loss)
        found = []
        for out in losses.loss_outputs(net, end.outputs):
            k = losses.num_classes(net, out.layer)
            if k is None or not math.isfinite(out.value):
                continue
            track = self.tracks.setdefault(out.name, _Track(self.settings.window_iters))
            if not track.done:
                found += self._observe(track, out, k, end.iteration)
        return found

    def on_test(self, result):
        if self.context.source == LOG:
            self._collect(result.net, result.iteration, result.outputs, result.loss_weights, None)
        return []

    def _collect(self, net: str, iteration: int, outputs: dict, printed: dict, displayed) -> None:
        losses_seen = False
        for name, value in outputs.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            role = "accuracy" if chance_log.is_accuracy(name, value) else \
                "loss" if chance_log.is_loss(name, value, printed) else None
            if role is not None:
                self._point(net, name, role, printed.get(name, 1.0), iteration, value)
                losses_seen |= role == "loss"
        if not losses_seen and displayed is not None and math.isfinite(displayed):
            self._point(net, "loss", "loss", 1.0, iteration, displayed)   # old Caffe: the displayed loss only

    def _point(self, net, name, role, weight, iteration, value) -> None:
        series = self.series.setdefault((net, name, role), chance_log.Series(net, name, weight))
        series.points.append((iteration, value))

    def finish(self):
        if self.context.source != LOG or any(t.done for t in self.tracks.values()):
            return []
        by_role = {"loss": [], "accuracy": []}
        for (_, _, role), series in self.series.items():
            by_role[role].append(series)
        settings = self.settings
        inferred = chance_log.infer_classes(by_role["loss"], by_role["accuracy"], settings.max_rel_distance)
        if inferred is None:
            return []
        k, why = inferred
        corroborated = {(s.net, i) for s in by_role["accuracy"] for i, v in s.points if abs(v * k - 1) <= 0.2}
        # The train net before the test nets, the main loss (largest weight) before auxiliary ones.
        ordered = sorted(by_role["loss"], key=lambda s: (s.net != TRAIN, s.net, -s.weight))
        found = []
        for series in ordered:
            verdict = chance_log.judge_loss(series, k, settings.max_rel_distance, settings.trained_fraction,
                                            settings.window_iters, corroborated)
            if verdict is not None:
                others = [o.name for o in ordered if o is not series and o.net == series.net and chance_log.judge_loss(
                    o, k, settings.max_rel_distance, settings.trained_fraction, settings.window_iters, corroborated)]
                found.append(self._log_finding(verdict, k, why, others))
                break
        train = [s for s in by_role["loss"] if s.net == TRAIN]
        for series in by_role["accuracy"]:
            verdict = chance_log.judge_test(series, train, k, settings.trained_fraction) \
                if series.net != TRAIN else None
            if verdict is not None:
                found.append(self._log_finding(verdict, k, why, []))
                break
        return found

    def _log_finding(self, verdict, k: int, why: str, others: list):
        series, chance = verdict.series, math.log(k)
        head = f"{series.name} of the {series.net} net"
        also = f" So do {', '.join(others)}: name the heads, not the net." if others else ""
        since = f"since iteration {verdict.iteration}" + (
            f" (the iteration shown before it is {verdict.before})" if verdict.before is not None else "")
        solver = self.context.solver
        if verdict.kind == "collapse_to_chance":
            message = (f"Loss {head} collapsed to exactly ln({k}) = {chance:.6g} {since} and stays there: the "
                       f"softmax gets the same scores for every class and every sample, the features feeding the "
                       f"classifier have collapsed to a constant (dead activations, a broken custom layer, or "
                       f"weights that a too large step wrecked).{also} K = {k}: {why}.")
            suggestions = ("run one iteration with `debug_info: true` and find the first layer whose top prints "
                           "exactly 0 or a constant", suggest.lower_lr(solver),
                           "check the custom layers' forward/backward")
        elif verdict.kind == "stuck_at_chance":
            message = (f"Loss {head} is stuck at chance level {since} to the end of the log: mean "
                       f"{verdict.value:.4g} against ln({k}) = {chance:.4g}, and it never was well below it. The net "
                       f"predicts the class frequencies and learns nothing from the inputs.{also} K = {k}: {why}.")
            suggestions = ("check that the labels belong to the inputs (shuffled together; range 0..K-1)",
                           "scale the inputs (e.g. mean 0, std 1) and use a scaled weight filler (msra / xavier): "
                           "more iterations will not get a net out of chance that has sat there this long",
                           suggest.lower_lr(solver))
        else:
            message = (f"{series.name} of the {series.net} net stays at or below chance (1/{k} = {1 / k:.3g}) at every "
                       f"test {since}, mean {verdict.value:.3g}, while the train loss fell well below ln({k}): the "
                       f"train net learns something the test net does not see. The test pipeline differs from the "
                       f"train one (preprocessing: mean, scale, channels; label mapping), or the train batches are "
                       f"not shuffled (each batch one class: a train loss of ~0 that generalises to nothing). K = "
                       f"{k}: {why}.")
            suggestions = ("give the test data layer the same transform_param (mean, scale, crop, channel order) "
                           "and label mapping as the train one",
                           "shuffle the training set when building the LMDB / image list",
                           "a lower learning rate will not help: the train net already fits its batches")
        span = (verdict.before + 1, verdict.iteration) \
            if verdict.before is not None and verdict.iteration - verdict.before > 1 else None
        return self.finding(
            kind=verdict.kind, iteration=verdict.iteration, phase=FORWARD, layer="(outputs)", blob=series.name,
            value=verdict.value, message=message, net=series.net, output=series.name, iteration_range=span,
            suggestions=suggestions,
            evidence=dict(cause=verdict.kind, classes=k, chance_loss=chance, classes_from=why,
                          source=self.context.source))

    def _observe(self, track: _Track, out, k: int, iteration: int) -> list:
        chance = math.log(k)
        line = self.settings.trained_fraction * chance
        if out.value < line:
            if track.excursion is not None and track.excursion[1] >= chance:
                track.spikes = (track.spikes + [{"iteration": track.excursion[0], "loss": track.excursion[1]}])[-_MAX_SPIKES:]
            track.excursion = None
            track.trained = True
        elif track.trained:
            if track.excursion is None:
                track.excursion = [iteration, out.value]
            track.excursion[1] = max(track.excursion[1], out.value)
        track.window.append((iteration, out.value))
        if len(track.window) < track.window.maxlen:
            return []
        mean = sum(v for _, v in track.window) / len(track.window)
        if abs(mean - chance) > self.settings.max_rel_distance * chance:
            return []
        if not track.trained:
            track.done = True
            return [self._stuck(out, k, mean, track, iteration)]
        if track.excursion is not None and track.excursion[0] <= track.window[0][0]:
            track.done = True
            return [self._collapse(out, k, mean, track, iteration)]
        return []

    def _stuck(self, out, k, mean, track, confirmed):
        since = track.window[0][0]
        message = (f"Loss {out.name} of layer {out.layer.name} has stayed at chance level: its mean over "
                   f"iterations {since}-{confirmed} is {mean:.4g}, ln({k}) = {math.log(k):.4g} for the {k} classes "
                   f"of {out.layer.bottoms[0]}. The net predicts the class frequencies and learns nothing from "
                   f"the inputs: labels that do not match the data (shuffled, or the wrong column), inputs that "
                   f"carry no signal (constant, unscaled), or a learning rate too small or too large to move it.")
        solver = self.context.solver
        return self.finding(
            kind="stuck_at_chance", iteration=since, phase=FORWARD, layer=out.layer.name, blob=out.name,
            value=mean, message=message,
            suggestions=("check that the labels belong to the inputs (shuffle them together; the right label "
                         "column and range 0..K-1)",
                         "scale the inputs (e.g. mean 0, std 1): a constant or unscaled input gives the net "
                         "nothing to learn from",
                         suggest.lower_lr(solver)),
            evidence=dict(cause="stuck_at_chance", confirmed_at=confirmed, classes=k, chance_loss=math.log(k),
                          window_mean=mean, source=self.context.source))

    def _collapse(self, out, k, mean, track, confirmed):
        since, peak = track.excursion
        spikes = "; ".join(f"iteration {s['iteration']}: {s['loss']:.4g}" for s in track.spikes)
        announced = f" Earlier spikes that recovered: {spikes}." if spikes else ""
        message = (f"Loss {out.name} of layer {out.layer.name} collapsed back to chance level at iteration "
                   f"{since} after the net had learnt (it had been below {self.settings.trained_fraction:g} x "
                   f"ln({k})): its mean over the last {len(track.window)} observed iterations is {mean:.4g}, "
                   f"ln({k}) = {math.log(k):.4g}, and it has not recovered.{announced} Weights that took a step "
                   f"too large (dead units, saturated layers), or data that changed (labels shuffled in a "
                   f"later part of the data).")
        solver = self.context.solver
        return self.finding(
            kind="collapse_to_chance", iteration=since, phase=FORWARD, layer=out.layer.name, blob=out.name,
            value=mean, message=message,
            suggestions=(suggest.lower_lr(solver), suggest.clip_gradients(solver),
                         "check the data read from that iteration on: its labels must match its inputs"),
            evidence=dict(cause="collapse_to_chance", confirmed_at=confirmed, classes=k,
                          chance_loss=math.log(k), window_mean=mean, peak=peak, spikes=list(track.spikes),
                          source=self.context.source))
