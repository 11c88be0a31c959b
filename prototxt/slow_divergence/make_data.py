"""Write one fixed batch of 64 regression samples (8 correlated features) as HDF5 and the source list.

With full-batch gradient descent on EuclideanLoss, the error along the top eigenvector of the Hessian
H = [X 1]^T [X 1] / N is multiplied by (1 - lr * lambda_max) each iteration. This data has
lambda_max = 5.0 (the script rescales X so), and solver.prototxt's base_lr 0.46 gives a factor of -1.3:
the loss grows about 1.7x per iteration for well over a hundred iterations before it overflows.
Deterministic (fixed seed) and idempotent.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

rng = np.random.RandomState(0)
mixing = rng.randn(8, 8)
x = rng.randn(64, 8) @ mixing
x -= x.mean(axis=0)                      # centred: the bias direction has eigenvalue 1
augmented = np.hstack([x, np.ones((64, 1))])
lambda_max = np.linalg.eigvalsh(augmented.T @ augmented / 64).max()
x *= np.sqrt(5.0 / lambda_max)           # now lambda_max = 5
target = x @ rng.randn(8) + 0.1 * rng.randn(64)
path = os.path.join(HERE, "train.h5")
with h5py.File(path, "w") as f:
    f["data"] = x.astype(np.float32)
    f["target"] = target.astype(np.float32).reshape(64, 1)
with open(os.path.join(HERE, "train.list"), "w") as f:
    f.write(path + "\n")
