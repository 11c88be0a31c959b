"""Every blob and parameter of a net at the point a replay stopped, in one .npz file numpy opens."""
from __future__ import annotations

import numpy as np

from .stats import summarize


def net_arrays(net) -> dict:
    """Copies of every blob's data and diff and every parameter, keyed like `blob/<name>/data` and
    `param/<layer>/<k>/diff`. In-place layers share a blob, so it appears once, as the last layer left it."""
    arrays = {}
    for name, blob in net.blobs.items():
        arrays[f"blob/{name}/data"] = blob.data.copy()
        arrays[f"blob/{name}/diff"] = blob.diff.copy()
    for layer, params in net.params.items():
        for k, param in enumerate(params):
            arrays[f"param/{layer}/{k}/data"] = param.data.copy()
            arrays[f"param/{layer}/{k}/diff"] = param.diff.copy()
    return arrays


def save(path: str, arrays: dict) -> list:
    """Write the .npz and return one summary row per array: key, shape, mean |x|, non-finite count."""
    np.savez_compressed(path, **arrays)
    rows = []
    for key, values in arrays.items():
        summary = summarize(values)
        rows.append({"key": key, "shape": list(values.shape), "mean_abs": summary.mean_abs,
                     "nonfinite": summary.nonfinite})
    return rows
