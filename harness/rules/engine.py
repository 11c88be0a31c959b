"""Feeds records to the rules in the order Caffe produces them and collects their findings.

Consecutive BlobStats of one (iteration, net, pass, phase, layer) form a group that the per-layer rules
judge once it is complete: when the next record has another key, or when the live driver calls
`end_layer()` right after Caffe finished the layer (so it can stop inside the iteration).
"""
from __future__ import annotations

from typing import Optional

from ..core.netinfo import SolverInfo
from ..core.records import BlobStat, Event, IterationEnd, ParamNorms, TestResult
from . import REGISTRY
from .base import LIVE, LOG, Context, LayerGroup, Rule
from .config import Config
from .findings import HALT, OFF, Finding

SOURCES = (LIVE, LOG)
HOOKS = ("on_layer", "on_norms", "on_iteration", "on_test", "on_event", "finish")


class RuleEngine:
    def __init__(self, config: Config, nets: dict, solver: Optional[SolverInfo], source: str = LIVE):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        self.context = Context(nets, solver, source)
        self.rules = [rule(getattr(config, rule.name), self.context) for rule in REGISTRY
                      if getattr(config, rule.name).policy != OFF]
        # Per hook, the rules that answer it: most rules leave most hooks at Rule's `return []`, and asking
        # every rule about every layer was most of `harness parse`'s time.
        self._hooks = {hook: [getattr(rule, hook) for rule in self.rules
                              if getattr(type(rule), hook) is not getattr(Rule, hook)] for hook in HOOKS}
        self._group: list = []
        self._findings: list = []
        self._seen: set = set()
        self._halt: Optional[Finding] = None

    @property
    def halt(self) -> Optional[Finding]:
        return self._halt

    @property
    def findings(self) -> list:
        return list(self._findings)

    def feed(self, record) -> list:
        if type(record) is BlobStat:
            group = self._group
            if group:
                first = group[0]
                if (record.layer != first.layer or record.phase != first.phase or record.iteration != first.iteration
                        or record.pass_index != first.pass_index or record.net != first.net):
                    found = self.end_layer()
                    self._group.append(record)
                    return found
            group.append(record)
            return []
        found = self.end_layer()
        if isinstance(record, ParamNorms):
            self.context.add_norms(record)
            return found + self._ask("on_norms", record)
        if isinstance(record, IterationEnd):
            return found + self._ask("on_iteration", record)
        if isinstance(record, Event):
            return found + self._ask("on_event", record)
        if isinstance(record, TestResult):
            return found + self._ask("on_test", record)
        return found

    def feed_layer(self, stats) -> list:
        """One layer's BlobStats of one phase at once, as the live worker has them: the same as feeding
        them one by one and then calling end_layer()."""
        found = self.end_layer()
        self._group = list(stats)
        return found + self.end_layer()

    def end_layer(self) -> list:
        if not self._group:
            return []
        first = self._group[0]
        group = LayerGroup(first.iteration, first.net, first.pass_index, first.phase, first.layer,
                           tuple(self._group))
        self._group = []
        self.context.add(group)
        return self._ask("on_layer", group)

    def finish(self) -> list:
        return self.end_layer() + self._ask("finish")

    def _ask(self, hook: str, *args) -> list:
        # After a halt the run is over: a live run stops there, and a log is judged the same way.
        if self._halt is not None:
            return []
        new = []
        for answer in self._hooks[hook]:
            for finding in answer(*args):
                key = (finding.kind, finding.net, finding.layer)
                if key in self._seen:
                    continue
                self._seen.add(key)
                new.append(finding)
                if finding.severity == HALT and self._halt is None:
                    self._halt = finding
        self._findings += new
        return new
