"""Write two HDF5 files of 256 labelled points each (4 Gaussian clusters in 16-D) and the source list.

One value of one sample is NaN: sample 100 of part2.h5, i.e. sample 356 of the stream, which the train net
(batch 32, files in list order, no shuffling) reads in iteration 356 // 32 = 11.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

rng = np.random.RandomState(0)
centers = rng.randn(4, 16).astype(np.float32)
labels = rng.randint(0, 4, size=512)
data = (centers[labels] + 0.5 * rng.randn(512, 16)).astype(np.float32)
data[256 + 100, 7] = np.nan
paths = []
for part, rows in (("part1", slice(0, 256)), ("part2", slice(256, 512))):
    path = os.path.join(HERE, part + ".h5")
    with h5py.File(path, "w") as f:
        f["data"] = data[rows]
        f["label"] = labels[rows].astype(np.float32)
    paths.append(path)
with open(os.path.join(HERE, "train.list"), "w") as f:
    f.write("\n".join(paths) + "\n")
