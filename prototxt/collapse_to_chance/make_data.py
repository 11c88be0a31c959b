"""Four well-separated Gaussian blobs in 8-D, in two HDF5 files read in order (batch 32):
clean.h5, 40 batches whose labels match the inputs except batches 20 and 28 (labels shuffled: the spikes),
and relabelled.h5, 80 batches whose labels were shuffled (a corrupted later shard: the collapse).
Deterministic and idempotent; the list holds absolute paths (Caffe opens listed files relative to its
working directory).
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, CLASSES, DIM = 32, 4, 8
rng = np.random.RandomState(0)
centres = rng.normal(0, 3, (CLASSES, DIM))


def blobs(batches):
    labels = rng.randint(0, CLASSES, batches * BATCH)
    data = centres[labels] + rng.normal(0, 1, (len(labels), DIM))
    return data.astype(np.float32), labels.astype(np.float32)


clean_data, clean_labels = blobs(40)
for spike in (20, 28):
    part = slice(spike * BATCH, (spike + 1) * BATCH)
    clean_labels[part] = rng.permutation(clean_labels[part] + 1) % CLASSES
bad_data, bad_labels = blobs(80)
bad_labels = rng.permutation(bad_labels)
paths = []
for name, data, labels in (("clean", clean_data, clean_labels), ("relabelled", bad_data, bad_labels)):
    path = os.path.join(HERE, name + ".h5")
    with h5py.File(path, "w") as f:
        f["data"] = data
        f["label"] = labels
    paths.append(path)
with open(os.path.join(HERE, "train.list"), "w") as f:
    f.write("\n".join(paths) + "\n")
