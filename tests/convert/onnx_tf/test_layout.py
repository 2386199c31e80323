"""The layout plan on graphs that mix channels-last ops with ops that need ONNX's order: every
value reaches each consumer in the order it expects (checked against ONNX Runtime)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.convert.onnx_tf.convert import to_module
from tests.parity import assert_outputs_match


def _conv(name: str, source: str, cin: int, cout: int, rng, group: int = 1, stride: int = 1):
    weight = numpy_helper.from_array(rng.standard_normal((cout, cin // group, 3, 3)).astype(np.float32), f"{name}_w")
    node = helper.make_node("Conv", [source, weight.name], [name], name=name, pads=[1, 1, 1, 1], group=group,
                            strides=[stride, stride])
    return node, weight


def _mixed_graph(io_dims):
    """Convs (channels-last) feeding a channel Softmax, a Concat, reductions with and without
    keepdims, a broadcast Mul by a per-channel constant, a Transpose and a Flatten."""
    rng = np.random.default_rng(0)
    c1, w1 = _conv("c1", "x", 4, 6, rng)
    c2, w2 = _conv("c2", "c1", 6, 6, rng, group=6, stride=2)  # depthwise, strided
    c3, w3 = _conv("c3", "x", 4, 6, rng, stride=2)
    scale = numpy_helper.from_array(rng.standard_normal((6, 1, 1)).astype(np.float32), "scale")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    nodes = [c1, c2, c3,
             helper.make_node("Mul", ["c2", "scale"], ["scaled"], name="scaled"),
             helper.make_node("Concat", ["scaled", "c3"], ["cat"], axis=1, name="cat"),
             helper.make_node("Relu", ["cat"], ["act"], name="act"),
             helper.make_node("Softmax", ["act"], ["soft"], axis=1, name="soft"),
             helper.make_node("ReduceMean", ["act", "axes"], ["mean_hw"], keepdims=0, name="mean_hw"),
             helper.make_node("ReduceMax", ["act"], ["max_all"], axes=None, keepdims=1, name="max_all"),
             helper.make_node("Transpose", ["act"], ["moved"], perm=[0, 3, 1, 2], name="moved"),
             helper.make_node("GlobalAveragePool", ["act"], ["pooled"], name="pooled"),
             helper.make_node("Flatten", ["pooled"], ["flat"], name="flat")]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
               for name in ("soft", "mean_hw", "max_all", "moved", "flat", "act")]
    graph = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, io_dims)],
                              outputs, [w1, w2, w3, scale, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return model


@pytest.mark.parametrize("io_dims", [[2, 4, 8, 8], ["batch", 4, 8, 8]])
def test_mixed_graph_matches_onnx_runtime(io_dims):
    model = _mixed_graph(io_dims)
    x = np.random.default_rng(1).standard_normal((2, 4, 8, 8)).astype(np.float32)
    names = [o.name for o in model.graph.output]
    expected = dict(zip(names, ort.InferenceSession(model.SerializeToString(),
                                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})))
    got = {name: value.numpy() for name, value in to_module(model).serve(x).items()}
    assert_outputs_match(expected, got)


def test_nhwc_signature_moves_image_inputs_and_outputs_only():
    model = _mixed_graph([2, 4, 8, 8])
    x = np.random.default_rng(1).standard_normal((2, 4, 8, 8)).astype(np.float32)
    names = [o.name for o in model.graph.output]
    expected = dict(zip(names, ort.InferenceSession(model.SerializeToString(),
                                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})))
    module = to_module(model, io_layout="nhwc")
    got = {name: value.numpy() for name, value in module.serve(x.transpose(0, 2, 3, 1)).items()}
    for name in ("soft", "max_all", "moved", "act"):  # rank-4 outputs come back channels-last
        got[name] = got[name].transpose(0, 3, 1, 2)
    assert_outputs_match(expected, got)
