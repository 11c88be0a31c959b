"""The progress line of the commands that train (train, reproduce)."""
from __future__ import annotations

import sys
import time


class Progress:
    """One live line on a terminal; elsewhere a line every tenth of the run."""

    def __init__(self, max_iter: int, quiet: bool):
        self.max_iter, self.quiet = max_iter, quiet
        self.tty = sys.stderr.isatty()
        self.every = max(1, max_iter // 10)
        self.started = time.monotonic()

    def __call__(self, end, check) -> None:
        if self.quiet or not (self.tty or end.iteration % self.every == 0):
            return
        rate = (end.iteration + 1) / max(time.monotonic() - self.started, 1e-9)
        loss = "n/a" if end.loss is None else f"{end.loss:.5g}"
        lr = "n/a" if end.lr is None else f"{end.lr:.3g}"
        text = (f"iter {end.iteration + 1}/{self.max_iter}  loss {loss}  lr {lr}  {rate:.1f} it/s  "
                f"cross-check {check.compared} compared, {check.mismatched} mismatched")
        print(("\r" + text + "\033[K") if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)
