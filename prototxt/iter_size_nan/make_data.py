"""Write 320 samples of 12 event counts (3 classes with different Poisson rates) as HDF5 and the list.

Row 150 holds -2 in one column, a "missing" sentinel that log(1 + x) turns into NaN. Batches of 16 with
iter_size 2: iteration k reads batches 2k and 2k + 1, so row 150 (batch 9) is read by the second pass of
iteration 4. Deterministic (fixed seed) and idempotent.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

rng = np.random.RandomState(0)
labels = rng.randint(0, 3, size=320)
rates = np.array([1.0, 4.0, 12.0])[labels]
counts = rng.poisson(rates[:, None], size=(320, 12)).astype(np.float32)
counts[150, 3] = -2
path = os.path.join(HERE, "train.h5")
with h5py.File(path, "w") as f:
    f["counts"] = counts   # HDF5Data reads the datasets named like its tops
    f["label"] = labels.astype(np.float32)
with open(os.path.join(HERE, "train.list"), "w") as f:
    f.write(path + "\n")
