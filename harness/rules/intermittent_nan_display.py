"""intermittent_nan_display: Caffe's displayed loss is non-finite while this iteration's outputs are all
finite, or the reverse.

Caffe's `Iteration N (...), loss = X` is a running mean over the last `average_loss` iterations, updated
incrementally: after one non-finite iteration it reads nan for good (live, the worker keeps the window
mean, which reads nan while the bad iteration is inside the window). So a nan display over finite
`Train net output` lines means that an earlier iteration went non-finite, and a finite display over a
non-finite output means that output does not count in the loss (loss_weight 0). The earlier iteration is
named when it was observed (every iteration live; at display iterations from a log).
"""
from __future__ import annotations

import math
from typing import Optional

from ..core.records import FORWARD
from . import losses
from .base import Rule


class IntermittentNanDisplay(Rule):
    name = "intermittent_nan_display"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.last_bad: Optional[int] = None         # last iteration with a non-finite output or loss
        self.last_seen: Optional[int] = None        # the iteration observed before the current one

    def on_iteration(self, end):
        values = losses.flat_values(end.outputs)
        outputs_finite = losses.all_finite(values) and (end.loss is None or math.isfinite(end.loss))
        found = []
        if end.smoothed_loss is not None and values:
            if not math.isfinite(end.smoothed_loss) and outputs_finite:
                found.append(self._display_nan(end))
            elif math.isfinite(end.smoothed_loss) and not outputs_finite:
                found.append(self._output_nan(end))
        if not outputs_finite:
            self.last_bad = end.iteration
        self.last_seen = end.iteration
        return found

    def _display_nan(self, end):
        if self.last_bad is not None:
            culprit = f"iteration {self.last_bad} had a non-finite output"
        elif self.last_seen is not None:
            culprit = (f"no observed iteration had a non-finite output, so it was one between iterations "
                       f"{self.last_seen} and {end.iteration} that were not displayed")
        else:
            culprit = "it was an iteration before the first one observed"
        name = next(iter(end.outputs))
        message = (f"Caffe's displayed loss reads {end.smoothed_loss} at iteration {end.iteration} while every "
                   f"`Train net output` of that iteration is finite: the display is a running mean over the last "
                   f"`average_loss` iterations, and one of them went non-finite ({culprit}). Caffe's display "
                   f"stays nan from then on although training may go on finite: look at that iteration, not "
                   f"at the display.")
        return self.finding(
            kind="intermittent_nan_display", iteration=end.iteration, phase=FORWARD, layer="(display)",
            blob=name, value=end.smoothed_loss, message=message,
            suggestions=("find the batch of the non-finite iteration (NaN or Inf in the data, a division by zero in "
                         "a loss) and fix it there: a single bad batch is enough to poison the displayed loss",),
            evidence=dict(cause="intermittent_nan", nonfinite_iteration=self.last_bad,
                          last_observed=self.last_seen, outputs=dict(end.outputs), source=self.context.source))

    def _output_nan(self, end):
        bad = [name for name, value in end.outputs.items()
               if not losses.all_finite(value if isinstance(value, list) else [value])]
        name = bad[0] if bad else next(iter(end.outputs))
        message = (f"Output {name} is non-finite at iteration {end.iteration} while Caffe's displayed loss reads "
                   f"{end.smoothed_loss:g}: it does not count in the loss (loss_weight 0, e.g. a monitoring "
                   f"output), so the display hides it.")
        return self.finding(
            kind="intermittent_nan_display", iteration=end.iteration, phase=FORWARD, layer="(display)",
            blob=name, value=end.outputs.get(name) if not isinstance(end.outputs.get(name), list) else None,
            message=message,
            suggestions=(f"fix the layer that computes output {name}, or drop it if it is not needed",),
            evidence=dict(cause="hidden_nan_output", outputs=dict(end.outputs), source=self.context.source))
