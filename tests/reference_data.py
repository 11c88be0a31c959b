"""A CAFFE_ROOT-like folder for the reference tier (tests/test_reference_models.py): BVLC's prototxts from
tests/reference/caffe_root, the nets tests/reference/make_nets.py writes with caffe.net_spec, and small
LMDBs made from generated images by Caffe's own convert_imageset and compute_image_mean, where BVLC's
prototxts expect them (examples/mnist/mnist_train_lmdb, data/ilsvrc12/imagenet_mean.binaryproto, ...).

The prototxts run unchanged but for their batch sizes and solvers' test_iter (the iteration count comes
from `harness train --max-iter`): a test at iteration 0 reads one batch per test net.
"""
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.run.build import OPENCV_TOOLS, read_build_info
from harness.run.provenance import caffe_prefix

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "tests" / "reference" / "caffe_root"
MAKE_NETS = ROOT / "tests" / "reference" / "make_nets.py"
TOOLS = Path(sys.executable).parent   # setup puts Caffe's tools beside the venv's python


@dataclass(frozen=True)
class Model:
    solver: str          # relative to the folder it runs from
    nets: tuple          # net files whose batch_size is set to `batch`, relative to the CAFFE_ROOT
    batch: int
    iterations: int
    cwd: str = "."       # BVLC's solvers run from CAFFE_ROOT; the notebook's from examples/


MNIST = ("examples/mnist/lenet_train_test.prototxt",)
AUTOENCODER = ("examples/mnist/mnist_autoencoder.prototxt",)
MODELS = {
    "lenet": Model("examples/mnist/lenet_solver.prototxt", MNIST, 16, 4),
    "lenet_adam": Model("examples/mnist/lenet_solver_adam.prototxt", MNIST, 16, 4),
    "lenet_rmsprop": Model("examples/mnist/lenet_solver_rmsprop.prototxt", MNIST, 16, 4),
    "lenet_adadelta": Model("examples/mnist/lenet_adadelta_solver.prototxt", MNIST, 16, 4),
    "lenet_multistep": Model("examples/mnist/lenet_multistep_solver.prototxt", MNIST, 16, 4),
    # net_param inline, in the V1 format (`layers`, `type: DATA`), with two test nets told apart by stage.
    "lenet_consolidated": Model("examples/mnist/lenet_consolidated_solver.prototxt",
                                ("examples/mnist/lenet_consolidated_solver.prototxt",), 16, 4),
    "lenet_auto": Model("mnist/lenet_auto_solver.prototxt",
                        ("examples/mnist/lenet_auto_train.prototxt", "examples/mnist/lenet_auto_test.prototxt"),
                        16, 4, cwd="examples"),
    "autoencoder": Model("examples/mnist/mnist_autoencoder_solver.prototxt", AUTOENCODER, 16, 4),
    "autoencoder_adadelta": Model("examples/mnist/mnist_autoencoder_solver_adadelta.prototxt", AUTOENCODER, 16, 4),
    "autoencoder_adagrad": Model("examples/mnist/mnist_autoencoder_solver_adagrad.prototxt", AUTOENCODER, 16, 4),
    "autoencoder_nesterov": Model("examples/mnist/mnist_autoencoder_solver_nesterov.prototxt", AUTOENCODER, 16, 4),
    "cifar10_quick": Model("examples/cifar10/cifar10_quick_solver.prototxt",
                           ("examples/cifar10/cifar10_quick_train_test.prototxt",), 16, 4),
    "cifar10_full": Model("examples/cifar10/cifar10_full_solver.prototxt",
                          ("examples/cifar10/cifar10_full_train_test.prototxt",), 16, 4),
    "cifar10_full_sigmoid": Model("examples/cifar10/cifar10_full_sigmoid_solver.prototxt",
                                  ("examples/cifar10/cifar10_full_sigmoid_train_test.prototxt",), 16, 4),
    "cifar10_full_sigmoid_bn": Model("examples/cifar10/cifar10_full_sigmoid_solver_bn.prototxt",
                                     ("examples/cifar10/cifar10_full_sigmoid_train_test_bn.prototxt",), 16, 4),
    "caffenet": Model("models/bvlc_reference_caffenet/solver.prototxt",
                      ("models/bvlc_reference_caffenet/train_val.prototxt",), 4, 6),
    "alexnet": Model("models/bvlc_alexnet/solver.prototxt", ("models/bvlc_alexnet/train_val.prototxt",), 4, 3),
    "googlenet": Model("models/bvlc_googlenet/solver.prototxt", ("models/bvlc_googlenet/train_val.prototxt",), 4, 3),
    "resnet50": Model("models/resnet50/solver.prototxt", ("models/resnet50/train_val.prototxt",), 2, 2),
    "mobilenet_v2": Model("models/mobilenet_v2/solver.prototxt", ("models/mobilenet_v2/train_val.prototxt",), 2, 2),
}

# name: (folder of the LMDBs, its train / test names, images each, height, width, colour, classes)
DATASETS = {
    "mnist": ("examples/mnist", "mnist_train_lmdb", "mnist_test_lmdb", (48, 16), 28, 28, False, 10),
    "cifar10": ("examples/cifar10", "cifar10_train_lmdb", "cifar10_test_lmdb", (48, 16), 32, 32, True, 10),
    # ImageNet-shaped: written at other sizes, resized to 256x256 by convert_imageset as BVLC's
    # create_imagenet.sh does.
    "imagenet": ("examples/imagenet", "ilsvrc12_train_lmdb", "ilsvrc12_val_lmdb", (12, 4), 300, 280, True, 1000),
}
MEANS = {"cifar10": "examples/cifar10/mean.binaryproto", "imagenet": "data/ilsvrc12/imagenet_mean.binaryproto"}


def without_opencv() -> str:
    """Why Caffe's image tools cannot make the LMDBs with this build ("" when they can): a build made with
    CAFFE_OPENCV=0 (the CUDA bundle's) has them, but they stop with "This tool requires OpenCV"."""
    prefix = caffe_prefix()
    info = prefix / "BUILD_INFO" if prefix else None
    if info and info.is_file() and read_build_info(info).get("cmake.USE_OPENCV") == "OFF":
        return (f"Caffe was built without OpenCV (USE_OPENCV=OFF in {info}): {' and '.join(OPENCV_TOOLS)}, which "
                "make these tests' LMDBs, stop with \"This tool requires OpenCV\"")
    return ""


def make_caffe_root(folder: Path) -> Path:
    shutil.copytree(SOURCES, folder, dirs_exist_ok=True)
    subprocess.run([sys.executable, str(MAKE_NETS), str(folder)], check=True, capture_output=True)
    for model in MODELS.values():
        for net in model.nets:
            _set_all(folder / net, "batch_size", model.batch)
        _set_all(folder / model.cwd / model.solver, "test_iter", 1)
    rng = np.random.default_rng(20180821)
    for name, (where, train, test, counts, height, width, colour, classes) in DATASETS.items():
        for db, count in zip((train, test), counts):
            _make_lmdb(folder / where / db, folder / "images" / db, count, height, width, colour, classes, rng)
        if name in MEANS:
            mean = folder / MEANS[name]
            mean.parent.mkdir(parents=True, exist_ok=True)
            _tool("compute_image_mean", folder / where / train, mean)
    return folder


def _set_all(path: Path, field: str, value: int) -> None:
    text, count = re.subn(rf"\b{field}: *\d+", f"{field}: {value}", path.read_text())
    assert count, f"no {field} in {path}"
    path.write_text(text)


def _make_lmdb(db: Path, images: Path, count: int, height: int, width: int, colour: bool, classes: int, rng) -> None:
    """`count` images with smooth random content (so that convolutions see structure, not only noise)."""
    images.mkdir(parents=True, exist_ok=True)
    listing = []
    for k in range(count):
        channels = 3 if colour else 1
        coarse = rng.uniform(0, 255, size=(height // 4 + 1, width // 4 + 1, channels))
        pixels = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[:height, :width]
        pixels = np.clip(pixels + rng.normal(0, 12, size=pixels.shape), 0, 255).astype(np.uint8)
        if not colour:   # MNIST-like: bright strokes on a black background
            pixels[pixels < 170] = 0
        name = f"{k:04d}.{'ppm' if colour else 'pgm'}"
        header = f"{'P6' if colour else 'P5'}\n{width} {height}\n255\n".encode()
        (images / name).write_bytes(header + pixels.tobytes())
        listing.append(f"{name} {int(rng.integers(classes))}")
    (images / "list.txt").write_text("\n".join(listing) + "\n")
    db.parent.mkdir(parents=True, exist_ok=True)
    resize = ["--resize_height=256", "--resize_width=256"] if height > 256 else []
    _tool("convert_imageset", *resize, *([] if colour else ["--gray"]), f"{images}/", images / "list.txt", db)


def _tool(name: str, *args) -> None:
    result = subprocess.run([str(TOOLS / name), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-2000:]}"
