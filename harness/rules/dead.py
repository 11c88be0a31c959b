"""dead: a rectifier whose top is (almost) all exact zeros for `patience_iters` iterations in a row.

Live records carry the fraction of exact zeros; a log only has Caffe's mean |x|, and a printed 0 means
every element is 0. Only the train net's first pass counts (test nets and later iter_size passes see
the same weights, so they add no evidence).
"""
from __future__ import annotations

from ..core.netinfo import RECTIFIER_TYPES
from ..core.records import FORWARD, TRAIN
from . import structure, suggest
from .base import Rule


def _mean_abs(stat) -> str:
    return f"mean |x| = {stat.mean_abs:.3g}"


class Dead(Rule):
    name = "dead"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.streaks: dict = {}          # (layer, top) -> (first dead iteration, consecutive count)

    def _all_zero(self, stat) -> bool:
        if stat.zero_fraction is not None:
            return stat.zero_fraction >= self.settings.zero_fraction
        return stat.mean_abs == 0

    def on_layer(self, group):
        if (group.net, group.phase, group.pass_index) != (TRAIN, FORWARD, 0):
            return []
        info = self.context.layer(group.net, group.layer)
        if info is None or info.type not in RECTIFIER_TYPES:
            return []
        found = []
        for stat in group.blobs():
            key = (group.layer, stat.blob)
            if not self._all_zero(stat):
                self.streaks.pop(key, None)
                continue
            since, count = self.streaks.get(key, (group.iteration, 0))
            self.streaks[key] = (since, count + 1)
            if count + 1 == self.settings.patience_iters:
                found.append(self._finding(group, info, stat, since, count + 1))
        return found

    def _finding(self, group, info, stat, since, count):
        net = self.context.net(group.net)
        view = self.context.view(group.net)
        solver = self.context.solver
        zeros = (f"{stat.zero_fraction:.1%} of its top {stat.blob} are exact zeros"
                 if stat.zero_fraction is not None else f"its top {stat.blob} prints mean |x| = 0 (all zeros)")
        message = (f"layer {info.name} ({info.type}) is dead: {zeros} for {count} consecutive iterations "
                   f"since iteration {since}, so no gradient flows through it.")
        evidence = dict(since_iteration=since, confirmed_at=group.iteration, consecutive_iters=count,
                        zero_fraction=stat.zero_fraction, cause="dead_at_init" if since == 0 else "died_in_training")
        feeding = structure.feeder(net, info.name, info.bottoms[0]) if info.bottoms else None
        suggestions = [suggest.leaky_relu(info)]
        if feeding is not None:
            feed_group = view.group(FORWARD, feeding.name)
            input_stat = view.stat(FORWARD, feeding.name, info.bottoms[0])
            params = feed_group.params() if feed_group else []
            if input_stat is not None:
                message += f" Its input {info.bottoms[0]} from layer {feeding.name} ({feeding.type}): {_mean_abs(input_stat)}"
                message += f", max |x| = {input_stat.max_abs:.3g}." if input_stat.max_abs is not None else "."
            if params:
                message += f" {feeding.name}'s parameters: " + "; ".join(f"{p.blob} {_mean_abs(p)}" for p in params) + "."
            evidence.update(
                feeding_layer=feeding.name,
                input={"blob": info.bottoms[0], "mean_abs": input_stat.mean_abs if input_stat else None,
                       "max_abs": input_stat.max_abs if input_stat else None},
                feeding_params={p.blob: p.mean_abs for p in params})
            if since == 0:
                suggestions = [suggest.bias_filler(feeding, info), suggest.change_init(feeding)] + suggestions
            else:
                suggestions = [suggest.lower_lr(solver)] + suggestions + [suggest.add_batchnorm(feeding)]
        elif since > 0:
            suggestions.insert(0, suggest.lower_lr(solver))
        return self.finding(kind="dead", iteration=since, phase=FORWARD, layer=info.name, blob=stat.blob,
                            value=stat.zero_fraction if stat.zero_fraction is not None else stat.mean_abs,
                            message=message, net=group.net, suggestions=tuple(suggestions), evidence=evidence)
