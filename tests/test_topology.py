"""harness/run/topology.py: Caffe's Split insertion mirrored for pycaffe builds without Net._top_ids,
checked against pycaffe's own ids on every zoo net, and the read-back bookkeeping of stepping.py."""
import os
from pathlib import Path

import pytest
from google.protobuf import text_format

from harness.core import netinfo
from harness.core.caffe_proto import caffe_pb2
from harness.core.errors import HarnessError
from harness.run import stepping, topology
from harness.run.worker import _phase_layer_params
from harness_run import ROOT, zoo_solver

SPLIT_WITH_LOSS = """name: "s"
layer { name: "data" type: "DummyData" top: "x" top: "y"
  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "y" top: "loss" loss_weight: 1 }
layer { name: "twice" type: "Eltwise" bottom: "loss" bottom: "ip" top: "twice" }
"""


def net_param(text: str):
    return text_format.Merge(text, caffe_pb2().NetParameter())


def test_a_read_top_with_a_loss_weight_gets_a_split_whose_first_output_carries_the_loss():
    net = net_param(SPLIT_WITH_LOSS)
    names = ["data", "ip", "ip_ip_0_split", "loss", "loss_loss_0_split", "twice"]
    bottoms, tops = topology.blob_names(list(net.layer), [], names, "s.prototxt")
    assert tops[2] == ["ip_ip_0_split_0", "ip_ip_0_split_1"] and bottoms[3] == ["ip_ip_0_split_0", "y"]
    assert tops[4] == ["loss_loss_0_split_0", "loss_loss_0_split_1"]
    assert bottoms[5] == ["loss_loss_0_split_1", "ip_ip_0_split_1"]


def test_a_net_that_cannot_be_mirrored_is_refused():
    net = net_param(SPLIT_WITH_LOSS)
    with pytest.raises(HarnessError, match="cannot tell which blob is which"):
        topology.blob_names(list(net.layer), [], ["data", "ip", "loss", "twice"], "s.prototxt")


ZOO = sorted(p.name for p in (ROOT / "prototxt").iterdir() if (p / "solver.prototxt").is_file())


@pytest.mark.caffe
@pytest.mark.parametrize("name", ZOO)
def test_the_mirror_matches_pycaffe_on_every_zoo_net(name, monkeypatch):
    import caffe
    folder = zoo_solver(name).parent
    monkeypatch.chdir(folder)            # data sources are relative to the net's folder
    monkeypatch.syspath_prepend(str(folder))   # Python layers
    path = next(p for p in (folder / "train_net.prototxt", folder / "net.prototxt") if p.is_file())
    param = net_param(path.read_text())
    caffe.set_mode_cpu()
    net = caffe.Net(str(path), caffe.TRAIN)
    names = list(net._blob_names)
    kept = _phase_layer_params(param, caffe_pb2().TRAIN)
    layers = list(net._layer_names)
    bottoms, tops = topology.blob_names([kept[n] for n in layers if n in kept], list(param.input), layers, str(path))
    assert tops == [[names[j] for j in net._top_ids(i)] for i in range(len(layers))]
    assert bottoms == [[names[j] for j in net._bottom_ids(i)] for i in range(len(layers))]


def test_the_finest_mode_the_build_offers_is_chosen_and_a_finer_one_refused():
    every = dict(after_forward=True, after_backward=True, add_callback=True, snapshot=True, top_ids=True)
    callbacks_only = dict(every, after_forward=False, after_backward=False)
    neither = dict(callbacks_only, add_callback=False)
    assert [stepping.choose("auto", o) for o in (every, callbacks_only, neither)] == ["layers", "solver", "none"]
    assert stepping.choose("none", every) == "none"
    with pytest.raises(HarnessError, match="no Net.after_forward and no Net.after_backward"):
        stepping.choose("layers", callbacks_only)
    with pytest.raises(HarnessError, match="no Solver.add_callback"):
        stepping.choose("solver", neither)


def test_hidden_records_are_the_overwritten_ones():
    layers = [dict(name="data", type="DummyData", bottoms=[], tops=["x"], num_params=0, loss_weights=[0]),
              dict(name="ip", type="InnerProduct", bottoms=["x"], tops=["h"], num_params=2, loss_weights=[0]),
              dict(name="relu", type="ReLU", bottoms=["h"], tops=["h"], num_params=0, loss_weights=[0]),
              dict(name="ip2", type="InnerProduct", bottoms=["h"], tops=["out"], num_params=2, loss_weights=[1])]
    info = netinfo.build("n", layers, {}, False)
    assert stepping.hidden(info, "train", "solver") == {("train", "forward", "ip", "h"),
                                                        ("train", "backward", "ip2", "h")}
    assert ("train", "backward", "ip", "param blob 1") in stepping.hidden(info, "train", "none")
