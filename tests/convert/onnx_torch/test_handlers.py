"""Handlers ONNX's node test cases do not reach: sequence erase and concat, GlobalLpPool (compared
with ONNX Runtime), and the experimental activations of opsets before 10 (no runtime runs them any
more: compared with their definitions in numpy)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from modelport.convert.onnx_torch import to_module


def _model(nodes, inputs, outputs, opset: int):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model, *arrays):
    with torch.no_grad():
        return to_module(model)(*[torch.from_numpy(a) for a in arrays]).numpy()


def test_sequence_erase_and_concat_from_sequence():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    position = helper.make_tensor("position", TensorProto.INT64, [], [0])
    nodes = [helper.make_node("Constant", [], ["p"], value=position),
             helper.make_node("SequenceConstruct", ["x", "y", "x"], ["s"]),
             helper.make_node("SequenceErase", ["s", "p"], ["t"]),
             helper.make_node("ConcatFromSequence", ["t"], ["out"], axis=1, new_axis=0)]
    model = _model(nodes, [x, y], [out], 17)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": a, "y": b})[0]
    np.testing.assert_allclose(_run(model, a, b), expected)


def test_global_lp_pool():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = _model([helper.make_node("GlobalLpPool", ["x"], ["y"], p=3)], [x], [y], 17)
    a = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": a})[0]
    np.testing.assert_allclose(_run(model, a), expected, rtol=1e-5)


@pytest.mark.parametrize("op,attrs,formula", [
    ("Affine", {"alpha": 2.0, "beta": -1.0}, lambda x: 2.0 * x - 1.0),
    ("ScaledTanh", {"alpha": 1.5, "beta": 0.5}, lambda x: 1.5 * np.tanh(0.5 * x)),
    ("ParametricSoftplus", {"alpha": 2.0, "beta": 3.0}, lambda x: 2.0 * np.log1p(np.exp(3.0 * x)))])
def test_experimental_activations_of_old_opsets(op, attrs, formula):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])
    model = _model([helper.make_node(op, ["x"], ["y"], **attrs)], [x], [y], 9)
    a = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(model, a), formula(a.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_an_unknown_rank_is_explained():
    """A value whose rank shape inference cannot tell, feeding an op that needs it (Transpose
    without perm reverses the axes): the message says what to do instead of failing in the trace."""
    from modelport.errors import UnsupportedOpError
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = _model([helper.make_node("Transpose", ["x"], ["y"], name="flip")], [x], [y], 17)
    with pytest.raises(UnsupportedOpError, match="rank of input 0 is unknown"):
        to_module(model)


def test_an_if_decided_at_run_time_exports_as_torch_cond(cli, tmp_path):
    """An If on a data-dependent condition: the .pt2 holds both branches (torch.cond) and takes
    each one as ONNX Runtime does, at a batch size the trace did not see."""
    import onnx
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    then_graph = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", 4])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                   [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["batch", 4])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    source = tmp_path / "if.onnx"
    onnx.save(_model(nodes, [x], [y], 17), str(source))
    assert cli("convert", source, tmp_path / "if.pt2").code == 0
    program = torch.export.load(str(tmp_path / "if.pt2"))
    assert any("cond" in str(node.target) for node in program.graph.nodes)
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    for sign in (1.0, -1.0):
        a = (sign * np.abs(np.random.default_rng(3).standard_normal((5, 4)))).astype(np.float32)
        with torch.no_grad():
            got = program.module()(torch.from_numpy(a)).numpy()
        np.testing.assert_allclose(got, session.run(None, {"x": a})[0])


@pytest.mark.parametrize("op,attrs,check", [
    ("RandomNormal", {"mean": 2.0, "scale": 0.5}, lambda v: abs(v.mean() - 2.0) < 0.05 and abs(v.std() - 0.5) < 0.05),
    ("RandomUniform", {"low": -1.0, "high": 3.0}, lambda v: v.min() >= -1.0 and v.max() <= 3.0 and abs(v.mean() - 1.0) < 0.1),
])
def test_random_ops_draw_when_the_model_runs(op, attrs, check):
    """Random ops are not folded into one draw while converting: each run draws anew, from ONNX's
    distribution; a seed makes the draws repeat."""
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [200, 50])
    model = _model([helper.make_node(op, [], ["y"], shape=[200, 50], **attrs)], [], [y], 17)
    module = to_module(model)
    first, second = module().numpy(), module().numpy()
    assert first.shape == (200, 50) and not np.array_equal(first, second) and check(first)
    seeded = to_module(_model([helper.make_node(op, [], ["y"], shape=[200, 50], seed=3.0, **attrs)], [], [y], 17))
    np.testing.assert_array_equal(seeded().numpy(), seeded().numpy())


def test_random_like_ops_multinomial_and_bernoulli():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in
               (("n", TensorProto.FLOAT), ("u", TensorProto.FLOAT), ("m", TensorProto.INT32), ("b", TensorProto.FLOAT))]
    nodes = [helper.make_node("RandomNormalLike", ["x"], ["n"]), helper.make_node("RandomUniformLike", ["x"], ["u"]),
             helper.make_node("Multinomial", ["x"], ["m"], sample_size=1000),
             helper.make_node("Sigmoid", ["x"], ["p"]), helper.make_node("Bernoulli", ["p"], ["b"])]
    module = to_module(_model(nodes, [x], outputs, 17))
    logits = np.array([[0.0, 0.0, 50.0]] * 4, np.float32)
    with torch.no_grad():
        out = module(torch.from_numpy(logits))
    assert out["n"].shape == (4, 3) and out["u"].shape == (4, 3) and float(out["u"].max()) < 1.0
    assert out["m"].dtype == torch.int32 and out["m"].shape == (4, 1000) and bool((out["m"] == 2).all())
    assert set(out["b"].unique().tolist()) <= {0.0, 1.0} and bool((out["b"][:, 2] == 1).all())
