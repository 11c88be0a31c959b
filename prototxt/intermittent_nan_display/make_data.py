"""Write 320 labelled points (binary labels, 8-D) as HDF5 and the source list.

The 16 samples of batch 6 (rows 96-111) are all negatives, so the forward of BalancedLoss divides 0 by 0
in iteration 6 (its backward does not). Deterministic (fixed seed) and idempotent.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

rng = np.random.RandomState(0)
labels = rng.randint(0, 2, size=320)
labels[96:112] = 0
data = (rng.randn(320, 8) + 1.5 * labels[:, None]).astype(np.float32)
path = os.path.join(HERE, "train.h5")
with h5py.File(path, "w") as f:
    f["data"] = data
    f["label"] = labels.astype(np.float32)
with open(os.path.join(HERE, "train.list"), "w") as f:
    f.write(path + "\n")
