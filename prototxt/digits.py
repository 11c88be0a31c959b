"""scikit-learn's bundled 8x8 digits as HDF5 (train: 1397 images, test: 400) with HDF5Data source lists,
for the zoo nets that train on real data. Deterministic (fixed permutation seed) and idempotent; the
lists hold absolute paths because Caffe opens listed files relative to its working directory.
"""
import os

import h5py
import numpy as np


def load():
    """(images N x 8 x 8 with values 0-16, labels): scikit-learn's load_digits, or, where HARNESS_DIGITS_CSV
    names scikit-learn's file of them (digits.csv.gz: 64 pixels and the label per row), that file read
    without scikit-learn and SciPy, as the CUDA bundle does (docs/gpu.md)."""
    csv = os.environ.get("HARNESS_DIGITS_CSV")
    if csv:
        table = np.loadtxt(csv, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.images, digits.target


def write(folder: str) -> None:
    images, labels = load()
    images = (images / 16.0).astype(np.float32)[:, None, :, :]   # N x 1 x 8 x 8, in [0, 1]
    labels = labels.astype(np.float32)
    order = np.random.RandomState(0).permutation(len(labels))
    for name, index in (("train", order[:1397]), ("test", order[1397:])):
        path = os.path.join(folder, name + ".h5")
        with h5py.File(path, "w") as f:
            f["data"] = images[index]
            f["label"] = labels[index]
        with open(os.path.join(folder, name + ".list"), "w") as f:
            f.write(path + "\n")
