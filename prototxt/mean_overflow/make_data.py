"""Write 64 samples of 16 features as HDF5 and the source list; sample 37 is corrupted: every feature
holds 3e37 (finite, but 16 of them sum past float's maximum of 3.4e38).

Batch 16, no shuffling: the corrupted sample is read in iteration 37 // 16 = 2. Deterministic, idempotent.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

rng = np.random.RandomState(0)
data = rng.randn(64, 16).astype(np.float32)
target = data[:, :4].sum(axis=1, keepdims=True) ** 2
data[37] = 3e37
path = os.path.join(HERE, "train.h5")
with h5py.File(path, "w") as f:
    f["data"] = data
    f["target"] = target.astype(np.float32)
with open(os.path.join(HERE, "train.list"), "w") as f:
    f.write(path + "\n")
