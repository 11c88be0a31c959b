"""chance_loss: a classification loss at chance level, ln(K) for K classes (a uniform prediction), judged on
the mean of the last `window_iters` observed values of each SoftmaxWithLoss output of the train net.

Two kinds:
- stuck_at_chance: the loss never went below `trained_fraction` x ln K, and the window's mean is within
  `max_rel_distance` of ln K: the net is not learning at all (healthy nets start there too, but leave
  within a few dozen iterations: hence the window).
- collapse_to_chance: the loss had gone below that line (the net had learnt), rose back above it and
  its window mean now sits at ln K: the net broke and has not recovered for a whole window. Earlier
  excursions that reached ln K or more and did recover are reported as the spikes that announced it.
K is num_output of the layer feeding the loss's scores; without it (no net definition, or a layer without
num_output) the output is not judged.
"""
from __future__ import annotations

import math
from collections import deque

from ..core.records import FORWARD, TRAIN
from . import losses, suggest
from .base import Rule

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

    def on_iteration(self, end):
        net = self.context.net(TRAIN)
        found = []
        for out in losses.loss_outputs(net, end.outputs):
            k = losses.num_classes(net, out.layer)
            if k is None or not math.isfinite(out.value):
                continue
            track = self.tracks.setdefault(out.name, _Track(self.settings.window_iters))
            if not track.done:
                found += self._observe(track, out, k, end.iteration)
        return found

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
