"""Where a data layer's NaN comes from: the file and row of an HDF5 source that hold non-finite values."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def locate_nonfinite(source_list: str, dataset: str, limit: int = 5) -> list:
    """[{"file", "dataset", "row", "nonfinite"}] for the first rows with NaN/Inf in an HDF5Data source.

    `source_list` is the text file that names the HDF5 files, one per line, as HDF5Data reads it. Other
    sources (LMDB, image lists) are not inspected: an empty list means "not located", not "clean".
    """
    try:
        import h5py
        files = [line.strip() for line in Path(source_list).read_text().splitlines() if line.strip()]
    except (ImportError, OSError, UnicodeDecodeError):
        return []
    found = []
    for name in files:
        try:
            with h5py.File(name, "r") as h5:
                if dataset not in h5:
                    continue
                values = np.asarray(h5[dataset])
        except OSError:
            continue
        bad = ~np.isfinite(values.reshape(len(values), -1))
        for row in np.flatnonzero(bad.any(axis=1))[:limit - len(found)]:
            found.append({"file": name, "dataset": dataset, "row": int(row), "nonfinite": int(bad[row].sum())})
        if len(found) >= limit:
            break
    return found
