"""Exact GELU as exporters spell it before opset 20 (Div/Mul, Erf, Add/Sub, two Muls) reaches TFLite
as its GELU builtin: TFLite has no Erf, so unfused these models were refused."""
from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.parity import assert_outputs_match


def _exact_gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return (0.5 * x * (1.0 + erf(x.astype(np.float64) / math.sqrt(2.0)))).astype(np.float32)


class _DenseGelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.dense = torch.nn.Linear(8, 16)
        self.act = torch.nn.GELU()

    def forward(self, x):
        return self.act(self.dense(x)) * 2.0


def _torchscript_exporter(path):
    """torch's TorchScript exporter at opset 17: Div(x, 1.414), Erf, Add(1), Mul(x), Mul(0.5)."""
    torch.onnx.export(_DenseGelu().eval(), (torch.randn(2, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}})
    assert "Erf" in {n.op_type for n in onnx.load(str(path)).graph.node}


def _hand_written(path, spelling: str, extra_reader: bool = False):
    """A graph with one GELU in the given spelling after a matmul (weights fixed, nothing random)."""
    weight = numpy_helper.from_array(np.linspace(-2, 2, 8 * 16, dtype=np.float32).reshape(8, 16), "w")
    scalars = [numpy_helper.from_array(np.array(v, np.float32), n)
               for n, v in [("half", 0.5), ("one", 1.0), ("root", math.sqrt(0.5)), ("two", 2.0)]]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    if spelling == "half first":  # (h * 0.5) * (1 + erf(h / sqrt 2)), root as a multiplier
        nodes += [helper.make_node("Mul", ["h", "root"], ["s"]), helper.make_node("Erf", ["s"], ["e"]),
                  helper.make_node("Add", ["one", "e"], ["p"]), helper.make_node("Mul", ["h", "half"], ["hh"]),
                  helper.make_node("Mul", ["hh", "p"], ["g"])]
    else:  # tf2onnx's: (h * 0.5) * (1 - erf(-h * (1 / sqrt 2)))
        nodes += [helper.make_node("Neg", ["h"], ["n"]), helper.make_node("Mul", ["n", "root"], ["s"]),
                  helper.make_node("Erf", ["s"], ["e"]), helper.make_node("Sub", ["one", "e"], ["p"]),
                  helper.make_node("Mul", ["h", "half"], ["hh"]), helper.make_node("Mul", ["hh", "p"], ["g"])]
    nodes.append(helper.make_node("Mul", ["g", "two"], ["y"]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])]
    if extra_reader:  # the Erf's value is also an output: the chain must stay op by op
        outputs.append(helper.make_tensor_value_info("e", TensorProto.FLOAT, ["batch", 16]))
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              outputs, [weight, *scalars])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _tflite_ops(path) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter
    return [op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()]


@pytest.mark.parametrize("spelling", ["torchscript exporter", "half first", "tf2onnx"])
def test_exact_gelu_spellings_reach_tflite_as_its_builtin(cli, tmp_path, spelling):
    source = tmp_path / "m.onnx"
    if spelling == "torchscript exporter":
        _torchscript_exporter(source)
    else:
        _hand_written(source, spelling)
    dst = tmp_path / "m.tflite"
    result = cli("convert", source, dst, "--json")
    assert result.code == 0, result.out + result.err
    assert "GELU" in _tflite_ops(dst)
    # independent of both converters: ONNX Runtime on the source, and GELU from math.erf
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter
    x = np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32) * 2
    reference = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
    interpreter = Interpreter(model_path=str(dst))
    runner = interpreter.get_signature_runner()
    (got,) = runner(x=x).values()
    assert_outputs_match({"y": reference}, {"y": got})
    if spelling != "torchscript exporter":
        h = x @ np.linspace(-2, 2, 8 * 16, dtype=np.float32).reshape(8, 16)
        np.testing.assert_allclose(got, 2 * _exact_gelu(h), rtol=1e-5, atol=1e-5)


def test_a_chain_whose_middle_is_read_elsewhere_is_not_fused(tmp_path):
    """The Erf's value is a graph output too: fusing would drop it, so the ops stay as written
    (and SavedModel, which has Erf, computes both outputs)."""
    from modelport.convert.onnx_tf.fusions import FUSED_DOMAIN, fused
    path = tmp_path / "m.onnx"
    _hand_written(path, "tf2onnx", extra_reader=True)
    model = onnx.load(str(path))
    assert [n.op_type for n in fused(model.graph.node, model.graph)] == [n.op_type for n in model.graph.node]
    _hand_written(path, "tf2onnx")
    model = onnx.load(str(path))
    walked = list(fused(model.graph.node, model.graph))
    assert [(n.op_type, n.domain) for n in walked] == [("MatMul", ""), ("Gelu", FUSED_DOMAIN), ("Mul", "")]
