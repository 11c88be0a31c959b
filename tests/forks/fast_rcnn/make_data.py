"""Synthetic region data for the tiny Fast R-CNN head: 32x32 gray images and 8 regions of interest each.

`images.h5` holds `data` (32 x 1 x 32 x 32); `rois.h5` holds, per region, `rois` (batch index, x1, y1,
x2, y2 in pixels, as py-faster-rcnn's RoIDataLayer gives them), `labels` (0 background, 1 or 2) and
`bbox_targets` (4 per class: the regression targets of py-faster-rcnn's bbox_transform, dx, dy, dw, dh,
in the slots of the region's class). The train net reads 2 images and 16 regions per iteration.
Deterministic (seeded) and idempotent.

    python make_data.py FOLDER [--degenerate-box]

`--degenerate-box`: one ground-truth box (image 9) has zero width, as a horizontally flipped box with
x1 = 0 gets from py-faster-rcnn's uint16 coordinates when it wraps. bbox_transform's log(gt width /
region width) is then -inf for the four regions on it: rows 72 to 75 of rois.h5, read in iteration 4.
"""
import sys
from pathlib import Path

import h5py
import numpy as np

IMAGES, SIZE, ROIS_PER_IMAGE, CLASSES = 32, 32, 8, 3
DEGENERATE_IMAGE = 9


def _targets(region, box):
    """py-faster-rcnn's bbox_transform: centre offsets in region sizes and log size ratios."""
    rw, rh = region[2] - region[0] + 1.0, region[3] - region[1] + 1.0
    bw, bh = box[2] - box[0] + 1.0, box[3] - box[1] + 1.0
    with np.errstate(divide="ignore"):
        return [(box[0] + 0.5 * bw - region[0] - 0.5 * rw) / rw, (box[1] + 0.5 * bh - region[1] - 0.5 * rh) / rh,
                np.log(bw / rw), np.log(bh / rh)]


def write(folder: Path, degenerate_box: bool = False) -> None:
    rng = np.random.RandomState(11)
    images = (0.1 * rng.randn(IMAGES, 1, SIZE, SIZE)).astype(np.float32)
    count = IMAGES * ROIS_PER_IMAGE
    rois = np.zeros((count, 5), np.float32)
    labels = np.zeros(count, np.float32)
    targets = np.zeros((count, 4 * CLASSES), np.float32)
    for n in range(IMAGES):
        label = rng.randint(1, CLASSES)
        w, h = (rng.randint(8, 13),) * 2 if label == 1 else (rng.randint(14, 20), rng.randint(6, 10))
        x, y = rng.randint(0, SIZE - w), rng.randint(0, SIZE - h)
        images[n, 0, y:y + h, x:x + w] += 1.0 if label == 1 else -1.0
        # Widths and heights count pixels inclusively (x2 - x1 + 1), as in py-faster-rcnn.
        box = np.array([x, y, x + w - 1, y + h - 1], np.float32)
        if degenerate_box and n == DEGENERATE_IMAGE:
            box[2] = box[0] - 1   # x2 + 1 = x1: zero width
        for k in range(ROIS_PER_IMAGE):
            row = n * ROIS_PER_IMAGE + k
            jitter = rng.randint(-3, 4, size=4) if k < ROIS_PER_IMAGE // 2 else None
            if jitter is not None:   # foreground: the box, moved a little
                region = np.clip(box + jitter, 0, SIZE - 1)
                region[2:] = np.maximum(region[2:], region[:2] + 2)
                labels[row] = label
                targets[row, 4 * label:4 * label + 4] = _targets(region, box)
            else:                    # background: anywhere
                x1, y1 = rng.randint(0, SIZE - 8, size=2)
                region = np.array([x1, y1, x1 + rng.randint(4, 8), y1 + rng.randint(4, 8)], np.float32)
            rois[row] = [n % 2, *region]
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "images.h5", "w") as f:
        f["data"] = images
    with h5py.File(folder / "rois.h5", "w") as f:
        f["rois"], f["labels"], f["bbox_targets"] = rois, labels, targets
    for name in ("images", "rois"):
        (folder / f"{name}.list").write_text(f"{folder.resolve() / name}.h5\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]), degenerate_box="--degenerate-box" in sys.argv[2:])
