"""320 labelled points (binary labels, 8-D) as HDF5 plus the source list, for the zoo nets whose balanced
loss divides 0 by 0: the 16 samples of batch 6 (rows 96-111, batch size 16) are all negatives.
Deterministic (fixed seed) and idempotent; the list holds an absolute path (Caffe opens listed files
relative to its working directory).
"""
import os

import h5py
import numpy as np


def write(folder: str) -> None:
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, size=320)
    labels[96:112] = 0
    data = (rng.randn(320, 8) + 1.5 * labels[:, None]).astype(np.float32)
    path = os.path.join(folder, "train.h5")
    with h5py.File(path, "w") as f:
        f["data"] = data
        f["label"] = labels.astype(np.float32)
    with open(os.path.join(folder, "train.list"), "w") as f:
        f.write(path + "\n")
