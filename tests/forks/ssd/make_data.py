"""Synthetic detection data for the tiny SSD net: 32x32 gray images with one box each, as HDF5.

`images.h5` holds `data` (64 x 1 x 32 x 32); `boxes.h5` holds `label`, one row per batch of 4 images in the
layout MultiBoxLoss reads (1 x G x 8 per batch: item_id, label, instance_id, xmin, ymin, xmax, ymax,
difficult; coordinates normalized to [0, 1]). The train net reads the images 4 at a time and the boxes
1 row at a time, so the two stay in step. Class 1 is a bright square, class 2 a dark wide rectangle, on
Gaussian noise. Deterministic (seeded) and idempotent.

One box per image, because MultiBoxLoss of weiliu89/caffe at 4817bf8 keeps the matches of its first
forward pass (FindMatches and MineHardExamples no longer clear them; the fork's issues #449 and #632): with
fewer boxes in a later image than in the first, it aborts with `Check failed: match_index[p] <
gt_bboxes.size()` (docs/forks.md).

    python make_data.py FOLDER [--empty-boxes]

`--empty-boxes`: every ground-truth box has zero width (xmax = xmin), as a bad annotation conversion
writes them: SSD's matcher finds no overlap with any prior, so no prior is positive.
"""
import sys
from pathlib import Path

import h5py
import numpy as np

IMAGES, BATCH, SIZE = 64, 4, 32


def write(folder: Path, empty_boxes: bool = False) -> None:
    rng = np.random.RandomState(7)
    images = (0.1 * rng.randn(IMAGES, 1, SIZE, SIZE)).astype(np.float32)
    rows = np.zeros((IMAGES // BATCH, 1, BATCH, 8), np.float32)
    for n in range(IMAGES):
        label = rng.randint(1, 3)
        width, height = (rng.randint(8, 13),) * 2 if label == 1 else (rng.randint(14, 20), rng.randint(6, 10))
        x, y = rng.randint(0, SIZE - width), rng.randint(0, SIZE - height)
        images[n, 0, y:y + height, x:x + width] += 1.0 if label == 1 else -1.0
        box = np.array([x, y, x + width, y + height], np.float32) / SIZE
        if empty_boxes:
            box[2] = box[0]
        rows[n // BATCH, 0, n % BATCH] = [n % BATCH, label, 0, *box, 0]
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "images.h5", "w") as f:
        f["data"] = images
    with h5py.File(folder / "boxes.h5", "w") as f:
        f["label"] = rows
    for name in ("images", "boxes"):
        (folder / f"{name}.list").write_text(f"{folder.resolve() / name}.h5\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]), empty_boxes="--empty-boxes" in sys.argv[2:])
