"""The run directory: one folder per run (or parsed log) that every other command reads."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from .errors import HarnessError


def make(requested: Optional[str], label: str) -> Path:
    """Create (or reuse) the run directory and prove it is writable before any work starts."""
    if requested:
        run_dir = Path(requested)
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run_dir = Path("runs") / f"{stamp}-{label or 'net'}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise HarnessError(f"run directory {run_dir} cannot be written ({error.strerror}). "
                           "Choose another with --run-dir / --out.") from None
    return run_dir.resolve()
