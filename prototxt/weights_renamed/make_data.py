"""A pretrained model whose layer names do not match this net's: trains the same architecture with the
names of a model-zoo LeNet (ip1, ip2) for one iteration with pycaffe and saves pretrained.caffemodel.
Deterministic and idempotent; never committed (*.caffemodel is ignored).
"""
import os
import tempfile

import caffe

HERE = os.path.dirname(os.path.abspath(__file__))
caffe.set_mode_cpu()
caffe.set_random_seed(1)
with open(os.path.join(HERE, "net.prototxt")) as stream:
    # The same layers under the source's names: only the names differ.
    source = stream.read().replace('"fc1"', '"ip1"').replace('"fc2"', '"ip2"')
with tempfile.TemporaryDirectory() as tmp:
    net_path, solver_path = os.path.join(tmp, "net.prototxt"), os.path.join(tmp, "solver.prototxt")
    with open(net_path, "w") as stream:
        stream.write(source)
    with open(solver_path, "w") as stream:
        stream.write(f'net: "{net_path}" base_lr: 0.01 lr_policy: "fixed" max_iter: 1 random_seed: 1 '
                     'snapshot_after_train: false solver_mode: CPU\n')
    solver = caffe.get_solver(solver_path)
    solver.step(1)
    solver.net.save(os.path.join(HERE, "pretrained.caffemodel"))
