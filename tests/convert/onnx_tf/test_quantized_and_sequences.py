"""ONNX -> SavedModel for what LLM and edge exports contain beyond plain float graphs: int4 weights
dequantized in blocks, float8 fake quantization, sequences inside the graph. Each goes through the
CLI (parity against ONNX Runtime on every hop) and is checked against numpy's exact arithmetic."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def _int4_weight_mlp(path):
    """x @ DequantizeLinear(int4 W, per-block scales) -> Relu: weight-only int4, as LLM exports do."""
    w = RNG.standard_normal((64, 32)).astype(np.float32)
    blocks = w.reshape(4, 16, 32)
    scale = (np.abs(blocks).max(axis=1) / 7).astype(np.float32)
    q = np.clip(np.round(blocks / scale[:, None, :]), -8, 7).reshape(64, 32)
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w"], axis=0, block_size=16),
             helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "int4_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
                              [numpy_helper.from_array(q.astype(ml_dtypes.int4), "w_q"),
                               numpy_helper.from_array(scale, "w_scale")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return q * np.repeat(scale, 16, axis=0)


def _savedmodel_outputs(saved, **feeds):
    import tensorflow as tf
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    return {name: value.numpy() for name, value in signature(**{k: tf.constant(v) for k, v in feeds.items()}).items()}


def test_int4_block_quantized_weights(cli, tmp_path):
    source = tmp_path / "int4.onnx"
    dequantized = _int4_weight_mlp(source)
    result = cli("convert", source, tmp_path / "saved", "--to", "savedmodel", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["parity"]["passed"]
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    exact = np.maximum(x @ dequantized, 0)
    got = _savedmodel_outputs(tmp_path / "saved", x=x)["y"]
    np.testing.assert_allclose(got, exact, atol=1e-5, rtol=1e-5)


def test_reference_runtime_computes_int4_matmul_as_the_graph_says(tmp_path):
    """ONNX Runtime's default fusion quantizes the activations of int4 MatMuls (errors ~1e-1): the
    session modelport uses as a parity reference must not."""
    from modelport.formats import open_model
    source = tmp_path / "int4.onnx"
    dequantized = _int4_weight_mlp(source)
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    exact = np.maximum(x @ dequantized, 0)
    fused = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(fused - exact).max() > 1e-2  # what the default session does (why the setting exists)
    np.testing.assert_allclose(open_model(source).run({"x": x})["y"], exact, atol=1e-5, rtol=1e-5)


def test_float8_fake_quantization(cli, tmp_path):
    """QuantizeLinear -> DequantizeLinear through float8 e4m3fn: the rounding must be e4m3's."""
    w = RNG.standard_normal((64, 8)).astype(np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]), helper.make_node("MatMul", ["xd", "w"], ["y"])]
    graph = helper.make_graph(nodes, "fp8", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
                              [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                               helper.make_tensor("z", TensorProto.FLOAT8E4M3FN, [], [0]), numpy_helper.from_array(w, "w")])
    source = tmp_path / "fp8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(source))
    result = cli("convert", source, tmp_path / "saved", "--to", "savedmodel", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["parity"]["passed"]
    x = (RNG.standard_normal((4, 64)) * 8).astype(np.float32)  # some values beyond e4m3's 448 * 0.05
    rounded = np.clip(x / 0.05, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32) * 0.05
    got = _savedmodel_outputs(tmp_path / "saved", x=x)["y"]
    np.testing.assert_allclose(got, rounded @ w, atol=1e-4, rtol=1e-5)
    assert np.abs(got - x @ w).max() > 0.1  # the quantization is really there


def test_sequences_inside_the_graph(cli, tmp_path):
    """Split into a sequence, map a subgraph over it, pick, erase, concatenate back: tensors at the
    edges."""
    body = helper.make_graph([helper.make_node("Mul", ["part", "part"], ["squared"])], "square",
                             [helper.make_tensor_value_info("part", TensorProto.FLOAT, None)],
                             [helper.make_tensor_value_info("squared", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["parts"], axis=1),
             helper.make_node("SequenceMap", ["parts"], ["mapped"], body=body),
             helper.make_node("SequenceLength", ["mapped"], ["count"]),
             helper.make_node("SequenceAt", ["mapped", "last"], ["tail"]),
             helper.make_node("ConcatFromSequence", ["mapped"], ["joined"], axis=1),
             helper.make_node("ReduceSum", ["tail"], ["tail_sum"], keepdims=0),
             helper.make_node("SequenceErase", ["mapped", "first"], ["rest"]),
             helper.make_node("ConcatFromSequence", ["rest"], ["rest_joined"], axis=1)]
    graph = helper.make_graph(nodes, "seq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])],
                              [helper.make_tensor_value_info("joined", TensorProto.FLOAT, ["batch", 10]),
                               helper.make_tensor_value_info("count", TensorProto.INT64, []),
                               helper.make_tensor_value_info("tail_sum", TensorProto.FLOAT, []),
                               helper.make_tensor_value_info("rest_joined", TensorProto.FLOAT, ["batch", 7])],
                              [numpy_helper.from_array(np.array([3, 3, 4], np.int64), "sizes"),
                               numpy_helper.from_array(np.array(-1, np.int64), "last"),
                               numpy_helper.from_array(np.array(0, np.int64), "first")])
    source = tmp_path / "seq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(source))
    result = cli("convert", source, tmp_path / "saved", "--to", "savedmodel", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["parity"]["passed"]
    x = RNG.standard_normal((2, 10)).astype(np.float32)
    got = _savedmodel_outputs(tmp_path / "saved", x=x)
    np.testing.assert_allclose(got["joined"], x * x, rtol=1e-6)
    assert int(got["count"]) == 3
    np.testing.assert_allclose(got["tail_sum"], (x[:, 6:] ** 2).sum(), rtol=1e-5)
    np.testing.assert_allclose(got["rest_joined"], x[:, 3:] ** 2, rtol=1e-6)  # SequenceErase of the first


def test_narrow_graph_outputs_are_refused_clearly(cli, tmp_path):
    """An int4 graph output cannot be fed or compared: exit 2 saying so, nothing written."""
    graph = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])], "q4",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("q", TensorProto.INT4, ["batch", 8])],
                              [numpy_helper.from_array(np.array(0.25, np.float32), "s"),
                               helper.make_tensor("z", TensorProto.INT4, [], [0])])
    source = tmp_path / "q4.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(source))
    result = cli("convert", source, tmp_path / "out", "--to", "savedmodel")
    assert result.code == 2, result.err
    assert "'q' is tensor(int4)" in result.err and "internal error" not in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q4.onnx"]


def test_negative_sequence_positions_count_from_the_back(cli, tmp_path):
    """SequenceInsert at -1 goes before the last element, as in ONNX Runtime (the parity check's
    reference); SequenceErase at -2 removes the one before the last."""
    nodes = [helper.make_node("SplitToSequence", ["x", "sizes"], ["parts"], axis=1),
             helper.make_node("SequenceInsert", ["parts", "marker", "back"], ["inserted"]),
             helper.make_node("SequenceErase", ["inserted", "back2"], ["erased"]),
             helper.make_node("ConcatFromSequence", ["inserted"], ["y"], axis=1),
             helper.make_node("ConcatFromSequence", ["erased"], ["z"], axis=1)]
    graph = helper.make_graph(nodes, "positions", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
                                                   helper.make_tensor_value_info("marker", TensorProto.FLOAT, ["batch", 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])],
                              [numpy_helper.from_array(np.array([1, 1, 1], np.int64), "sizes"),
                               numpy_helper.from_array(np.array(-1, np.int64), "back"),
                               numpy_helper.from_array(np.array(-2, np.int64), "back2")])
    source = tmp_path / "positions.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(source))
    result = cli("convert", source, tmp_path / "saved", "--to", "savedmodel")
    assert result.code == 0, result.err
    got = _savedmodel_outputs(tmp_path / "saved", x=np.array([[1, 2, 3]], np.float32), marker=np.array([[9]], np.float32))
    np.testing.assert_array_equal(got["y"], [[1, 2, 9, 3]])
    np.testing.assert_array_equal(got["z"], [[1, 2, 3]])
