"""The reference nets that BVLC's package does not ship as prototxt, written with pycaffe's caffe.net_spec.

    python make_nets.py CAFFE_ROOT

writes, relative to CAFFE_ROOT (a folder laid out like BVLC's, see tests/reference/README.md):
- examples/mnist/lenet_auto_{train,test}.prototxt: the nets examples/01-learning-lenet.ipynb writes for
  examples/mnist/lenet_auto_solver.prototxt (the notebook's `lenet()` function, as published);
- models/resnet50/{train_val,solver}.prototxt: ResNet-50 (He et al. 2015, the layout of the authors'
  Caffe release: stride in the first 1x1 of a stage, BatchNorm + Scale after every convolution);
- models/mobilenet_v2/{train_val,solver}.prototxt: MobileNet-v2 (Sandler et al. 2018, width 1.0):
  depthwise convolutions as grouped Convolution, ReLU6 as Clip(0, 6).
Both ImageNet nets read examples/imagenet/ilsvrc12_{train,val}_lmdb like BVLC's CaffeNet.
"""
import sys
from pathlib import Path

import caffe
from caffe import layers as L, params as P

IMAGENET_TRAIN = "examples/imagenet/ilsvrc12_train_lmdb"
IMAGENET_VAL = "examples/imagenet/ilsvrc12_val_lmdb"
MSRA = dict(type="msra")
SOLVER = """net: "{net}"
test_iter: 1000
test_interval: 5000
base_lr: {base_lr}
lr_policy: "step"
gamma: 0.1
stepsize: 100000
display: 20
max_iter: 450000
momentum: 0.9
weight_decay: {weight_decay}
snapshot: 10000
snapshot_prefix: "{prefix}"
random_seed: 7
solver_mode: GPU
# BatchNorm's global statistics are empty before the first update: a test then normalizes with variance 0.
test_initialization: false
"""


def lenet(lmdb, batch_size):
    """examples/01-learning-lenet.ipynb, unchanged."""
    n = caffe.NetSpec()
    n.data, n.label = L.Data(batch_size=batch_size, backend=P.Data.LMDB, source=lmdb,
                             transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20, weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.conv2 = L.Convolution(n.pool1, kernel_size=5, num_output=50, weight_filler=dict(type='xavier'))
    n.pool2 = L.Pooling(n.conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.fc1 = L.InnerProduct(n.pool2, num_output=500, weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.score = L.InnerProduct(n.relu1, num_output=10, weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.score, n.label)
    return n.to_proto()


def conv_bn(n, name, bottom, num_output, kernel, stride=1, group=1, relu=True, relu6=False):
    """Convolution (no bias) + BatchNorm + Scale (+ ReLU or ReLU6), named like the authors' releases."""
    pad = (kernel - 1) // 2
    conv = L.Convolution(bottom, num_output=num_output, kernel_size=kernel, stride=stride, pad=pad, group=group,
                         bias_term=False, weight_filler=MSRA)
    setattr(n, name, conv)
    setattr(n, f"bn_{name}", L.BatchNorm(conv, in_place=True))
    setattr(n, f"scale_{name}", L.Scale(conv, bias_term=True, in_place=True))
    if relu6:
        setattr(n, f"relu_{name}", L.Clip(conv, clip_param=dict(min=0, max=6), in_place=True))
    elif relu:
        setattr(n, f"relu_{name}", L.ReLU(conv, in_place=True))
    return conv


def imagenet_data(n, crop, **transform):
    n.data, n.label = L.Data(source=IMAGENET_TRAIN, backend=P.Data.LMDB, batch_size=32, ntop=2,
                             transform_param=dict(mirror=True, crop_size=crop, mean_value=[104, 117, 123], **transform),
                             include=dict(phase=caffe.TRAIN))
    return n.data


def imagenet_head(n, bottom, pool_kernel):
    n.pool_final = L.Pooling(bottom, pool=P.Pooling.AVE, kernel_size=pool_kernel, stride=1)
    n.fc1000 = L.InnerProduct(n.pool_final, num_output=1000, weight_filler=MSRA, bias_filler=dict(type="constant"))
    n.loss = L.SoftmaxWithLoss(n.fc1000, n.label)
    n.accuracy_top1 = L.Accuracy(n.fc1000, n.label, include=dict(phase=caffe.TEST))
    n.accuracy_top5 = L.Accuracy(n.fc1000, n.label, accuracy_param=dict(top_k=5), include=dict(phase=caffe.TEST))


def with_test_data(net, batch_size=50):
    """BVLC's train_val layout: a second Data layer, for the TEST phase, reading the validation LMDB."""
    test = type(net.layer[0])()
    test.CopyFrom(net.layer[0])
    test.include[0].phase = caffe.TEST
    test.data_param.source = IMAGENET_VAL
    test.data_param.batch_size = batch_size
    test.transform_param.mirror = False
    net.layer.insert(1, test)
    return net


def resnet50():
    n = caffe.NetSpec()
    x = conv_bn(n, "conv1", imagenet_data(n, 224), 64, 7, stride=2)
    x = n.pool1 = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=3, stride=2)
    for stage, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=2):
        for b in range(blocks):
            name = f"res{stage}{'abcdef'[b]}"
            stride = 2 if b == 0 and stage > 2 else 1
            shortcut = conv_bn(n, f"{name}_branch1", x, 4 * width, 1, stride=stride, relu=False) if b == 0 else x
            y = conv_bn(n, f"{name}_branch2a", x, width, 1, stride=stride)
            y = conv_bn(n, f"{name}_branch2b", y, width, 3)
            y = conv_bn(n, f"{name}_branch2c", y, 4 * width, 1, relu=False)
            setattr(n, name, L.Eltwise(shortcut, y))
            x = getattr(n, name)
            setattr(n, f"{name}_relu", L.ReLU(x, in_place=True))
    imagenet_head(n, x, 7)
    proto = n.to_proto()
    proto.name = "ResNet-50"
    return with_test_data(proto)


def mobilenet_v2():
    n = caffe.NetSpec()
    # Inputs scaled to about [-2, 2] as in the published Caffe ports (scale 0.017 = 1/58.8, ImageNet's std).
    x = conv_bn(n, "conv1", imagenet_data(n, 224, scale=0.017), 32, 3, stride=2, relu6=True)
    channels = 32
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    block = 0
    for expansion, out, repeats, first_stride in settings:
        for r in range(repeats):
            block += 1
            stride = first_stride if r == 0 else 1
            hidden = channels * expansion
            y = x
            if expansion != 1:
                y = conv_bn(n, f"block{block}_expand", y, hidden, 1, relu6=True)
            y = conv_bn(n, f"block{block}_dwise", y, hidden, 3, stride=stride, group=hidden, relu6=True)
            y = conv_bn(n, f"block{block}_project", y, out, 1, relu=False)
            if stride == 1 and channels == out:
                setattr(n, f"block{block}_add", L.Eltwise(x, y))
                y = getattr(n, f"block{block}_add")
            x, channels = y, out
    x = conv_bn(n, "conv_last", x, 1280, 1, relu6=True)
    imagenet_head(n, x, 7)
    proto = n.to_proto()
    proto.name = "MobileNet-v2"
    return with_test_data(proto)


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(root: Path) -> None:
    # The notebook runs from examples/, so its paths are relative to that folder.
    write(root, "examples/mnist/lenet_auto_train.prototxt", str(lenet("mnist/mnist_train_lmdb", 64)))
    write(root, "examples/mnist/lenet_auto_test.prototxt", str(lenet("mnist/mnist_test_lmdb", 100)))
    for name, net, base_lr, decay in (("resnet50", resnet50(), 0.1, 0.0001), ("mobilenet_v2", mobilenet_v2(), 0.045, 0.00004)):
        write(root, f"models/{name}/train_val.prototxt", str(net))
        write(root, f"models/{name}/solver.prototxt",
              SOLVER.format(net=f"models/{name}/train_val.prototxt", base_lr=base_lr, weight_decay=decay,
                            prefix=f"models/{name}/{name}"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
