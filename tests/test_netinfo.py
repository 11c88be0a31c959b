"""Which debug lines Caffe prints follows from Net::Init's backward flags; these mirror its cases."""
from harness.core.caffe_proto import caffe_pb2
from harness.core import netinfo


def layer_param(text):
    from google.protobuf import text_format
    return text_format.Merge(text, caffe_pb2().LayerParameter())


def build(layers, params=None, force_backward=False):
    specs = [dict(name=n, type=t, bottoms=b, tops=tp, num_params=p, loss_weights=w) for n, t, b, tp, p, w in layers]
    return netinfo.build("t", specs, params or {}, force_backward)


BASE = [
    ("data", "DummyData", [], ["data", "label"], 0, [0, 0]),
    ("ip1", "InnerProduct", ["data"], ["ip1"], 2, [0]),
    ("relu1", "ReLU", ["ip1"], ["ip1"], 0, [0]),
    ("ip2", "InnerProduct", ["ip1"], ["ip2"], 2, [0]),
    ("loss", "SoftmaxWithLoss", ["ip2", "label"], ["loss"], 0, [1]),
]


def test_plain_net_data_needs_no_backward_and_labels_get_no_diff():
    info = build(BASE)
    assert not info.layer("data").need_backward
    assert info.layer("ip1").need_backward and info.layer("ip1").bottom_need_backward == (False,)
    assert info.layer("ip2").bottom_need_backward == (True,)
    assert info.layer("loss").bottom_need_backward == (True, False)


def test_frozen_first_layer_stops_backward_below_it():
    frozen = layer_param('name: "ip1" param { lr_mult: 0 } param { lr_mult: 0 }')
    info = build(BASE, {"ip1": frozen})
    assert not info.layer("ip1").need_backward
    assert info.layer("ip1").param_need_backward == (False, False)
    assert not info.layer("relu1").need_backward
    assert info.layer("ip2").bottom_need_backward == (False,)


def test_branch_that_reaches_no_loss_needs_no_backward():
    layers = BASE + [("side", "InnerProduct", ["ip1"], ["side"], 2, [0])]
    info = build(layers)
    side = info.layer("side")
    assert not side.need_backward and side.lr_mults == (1.0, 1.0)


def test_propagate_down_false_cuts_the_bottom():
    cut = layer_param('name: "ip2" propagate_down: false')
    info = build(BASE, {"ip2": cut})
    assert info.layer("ip2").need_backward and info.layer("ip2").bottom_need_backward == (False,)
    assert not info.layer("relu1").need_backward     # nothing above asks relu1 for a gradient


def test_force_backward_reaches_everything_but_labels():
    info = build(BASE, force_backward=True)
    assert all(layer.need_backward for layer in info.layers)
    assert info.layer("loss").bottom_need_backward == (True, False)
    assert info.layer("ip1").bottom_need_backward == (True,)


def test_named_params_display_by_name_and_round_trip():
    shared = layer_param('name: "ip1" param { name: "w" } param { lr_mult: 2 }')
    info = build(BASE, {"ip1": shared})
    ip1 = info.layer("ip1")
    assert ip1.param_display(0) == "param blob w" and ip1.param_display(1) == "param blob 1"
    assert netinfo.from_dict(netinfo.to_dict(info)) == info
