"""What the rules conclude: plain findings, which the verdict and the report only format."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

HALT, WARN, OFF = "halt", "warn", "off"


@dataclass(frozen=True)
class Finding:
    """One anomaly, shaped like `verdict.json`'s `anomaly` (docs/verdict.md), plus the evidence behind it."""
    kind: str                      # "nonfinite", "dead", "no_gradient", "vanishing", "exploding", ...
    severity: str                  # HALT or WARN: the policy that was in force for the rule
    iteration: int
    phase: str                     # "forward", "backward" or "update"
    layer: str
    blob: str
    value: Union[str, float, None]
    message: str
    net: str = "train"
    suggestions: tuple = ()
    evidence: dict = field(default_factory=dict)     # numbers that support it (trend, since when, ...)
    thresholds: dict = field(default_factory=dict)   # the thresholds that were in force
    rule: str = ""
    output: Optional[str] = None   # the net output (a loss head, accuracy) the finding is about, if any
    # (a, b): the condition began in one of iterations a..b, when the log shows only some iterations
    # (display > 1) and showed it absent at iteration a - 1.
    iteration_range: Optional[tuple] = None

    def as_verdict_entry(self) -> dict:
        value = self.value
        if isinstance(value, float) and value != value:
            value = "nan"
        elif isinstance(value, float) and value in (float("inf"), float("-inf")):
            value = "inf" if value > 0 else "-inf"
        return {
            "kind": self.kind, "iteration": self.iteration, "phase": self.phase, "net": self.net,
            "layer": self.layer, "blob": self.blob, "value": value, "message": self.message,
            "suggestions": list(self.suggestions), "rule": self.rule, "severity": self.severity,
            "evidence": self.evidence, "thresholds": self.thresholds,
            **({"output": self.output} if self.output is not None else {}),
            **({"iteration_range": list(self.iteration_range)} if self.iteration_range is not None else {}),
        }
