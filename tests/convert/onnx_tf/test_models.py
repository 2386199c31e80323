"""ONNX -> SavedModel on real models: planned from PyTorch through ONNX, every hop checked, and
the SavedModel compared with ONNX Runtime by TensorFlow itself."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.parity import assert_outputs_match


def test_pytorch_cnn_goes_through_onnx_to_savedmodel(cli, tmp_path):
    import tensorflow as tf
    onnx_path, saved = tmp_path / "cnn.onnx", tmp_path / "cnn_savedmodel"
    assert cli("convert", "tests.zoo_torch:small_cnn", onnx_path, "--input-shape", "image:1,3,32,32").code == 0
    result = cli("convert", onnx_path, saved, "--to", "savedmodel", "--json")
    assert result.code == 0, result.err
    hop = result.json()["hops"][0]
    assert hop["edge"] == "onnx->savedmodel" and hop["parity"]["passed"] and hop["parity"]["batch_sizes"] == [1, 3]
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = signature(image=tf.constant(x))
    assert_outputs_match({"output": expected}, {name: value.numpy() for name, value in got.items()})


def test_planner_chains_pytorch_to_savedmodel(cli, tmp_path):
    report = tmp_path / "hops.html"
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "saved", "--to", "savedmodel",
                 "--input-shape", "image:1,3,16,16", "--report", report, "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["pytorch->onnx", "onnx->savedmodel"]
    assert all(h["parity"]["passed"] for h in result.json()["hops"])
    assert "Hop 2: onnx-&gt;savedmodel" in report.read_text()


def test_unsupported_op_is_exit_2_naming_op_opset_and_node(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("LpPool", ["x"], ["y"], name="pick_one", kernel_shape=[2, 2])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])])
    source = tmp_path / "lppool.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(source))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("convert", source, tmp_path / "out", "--to", "savedmodel")
    assert result.code == 2, result.err
    assert "'LpPool'" in result.err and "opset 13" in result.err and "pick_one" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize("factory,shape", [("resnet18", "image:1,3,224,224"), ("tiny_transformer", "x:1,7,32"),
                                           ("attention_block", "x:1,3,32,32")])
def test_real_pytorch_models_reach_tflite(cli, tmp_path, factory, shape):
    """ResNet-18, a TransformerEncoder, and a block with GroupNorm, ConvTranspose, a bilinear resize and
    MultiheadAttention: PyTorch -> ONNX -> SavedModel -> TFLite, each hop within fp32 tolerances of
    the one before (LiteRT runs the last)."""
    result = cli("convert", f"tests.zoo_torch:{factory}", tmp_path / f"{factory}.tflite", "--input-shape", shape,
                 "--samples", "1", "--json")
    assert result.code == 0, result.err
    hops = result.json()["hops"]
    assert [h["edge"] for h in hops] == ["pytorch->onnx", "onnx->savedmodel", "savedmodel->tflite"]
    assert all(h["parity"]["passed"] and not h["parity"]["blind_spots"] for h in hops)


def test_caffe_lenet_reaches_tflite(cli, tmp_path):
    from tests.convert.caffe.helpers import CAFFE_DATA
    lenet = CAFFE_DATA / "lenet"
    result = cli("convert", lenet / "deploy.prototxt", tmp_path / "lenet.tflite", "--weights",
                 lenet / "weights.caffemodel", "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["caffe->onnx", "onnx->savedmodel", "savedmodel->tflite"]
    assert result.json()["passed"]
