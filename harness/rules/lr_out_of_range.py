"""lr_out_of_range: the learning rate the solver applies (its schedule's value at that iteration) below
`min_lr` or above `max_lr`.

Below 1e-10 a float32 weight of order 1 no longer changes (its spacing is ~1e-7, and gradients are well
below 1e3); above 1 a plain SGD step overshoots at any gradient scale a healthy net has. Typical causes
are a schedule's gamma or power typed wrongly (gamma 10 for 0.1), or base_lr in the wrong unit.
Read from IterationEnd.lr (live: pycaffe's solver.lr every iteration; from a log the `Iteration N, lr = X`
lines at display iterations). Reported once, at the first iteration out of range.
"""
from __future__ import annotations

import math

from ..core.records import TRAIN
from . import suggest
from .base import Rule


class LrOutOfRange(Rule):
    name = "lr_out_of_range"

    def on_iteration(self, end):
        lr = end.lr
        # A non-finite lr is nonfinite's finding.
        if lr is None or not math.isfinite(lr) or self.settings.min_lr <= lr <= self.settings.max_lr:
            return []
        side = "below" if lr < self.settings.min_lr else "above"
        bound = self.settings.min_lr if side == "below" else self.settings.max_lr
        solver = self.context.solver
        schedule = ""
        if solver is not None and solver.base_lr is not None:
            parts = [f"base_lr {solver.base_lr:g}", f"lr_policy \"{solver.lr_policy}\""]
            parts += [f"{k} {v:g}" for k, v in (("gamma", solver.gamma), ("power", solver.power),
                                                  ("stepsize", solver.stepsize)) if v]
            schedule = f" The schedule is {', '.join(parts)}."
        effect = ("no weight moves any more" if side == "below"
                  else "each step overshoots: expect the loss to explode")
        message = (f"The learning rate is {lr:g} at iteration {end.iteration}, {side} {bound:g}: {effect}.{schedule}")
        return [self.finding(
            kind="lr_out_of_range", iteration=end.iteration, phase="update", layer="(solver)", blob="lr", value=lr,
            message=message, net=TRAIN, suggestions=(suggest.check_schedule(solver),),
            evidence=dict(cause="lr_out_of_range", lr=lr, side=side, source=self.context.source))]
