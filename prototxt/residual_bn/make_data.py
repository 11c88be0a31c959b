"""Write scikit-learn's 8x8 digits as HDF5 (train: 1397 images, test: 400) and the HDF5 source lists.

Deterministic (fixed permutation seed) and idempotent; lists hold absolute paths (Caffe opens listed files
relative to its working directory).
"""
import os

import h5py
import numpy as np
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))

digits = load_digits()
images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
labels = digits.target.astype(np.float32)
order = np.random.RandomState(0).permutation(len(labels))
for name, index in (("train", order[:1397]), ("test", order[1397:])):
    path = os.path.join(HERE, name + ".h5")
    with h5py.File(path, "w") as f:
        f["data"] = images[index]
        f["label"] = labels[index]
    with open(os.path.join(HERE, name + ".list"), "w") as f:
        f.write(path + "\n")
