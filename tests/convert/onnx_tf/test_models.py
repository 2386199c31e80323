"""ONNX -> SavedModel on real models: planned from PyTorch through ONNX, every hop checked, and
the SavedModel compared with ONNX Runtime by TensorFlow itself."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest

from tests.light_models import LIGHT_MODELS, light_model_with_weights
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


def test_unsupported_op_is_exit_2_naming_op_opset_and_node(cli, tmp_path, monkeypatch):
    """An op without a handler (here Relu, its handlers taken out of the registry for this test, so
    that the check does not depend on which ops are still missing): exit 2, nothing written."""
    import onnx
    from onnx import TensorProto, helper
    from modelport.convert.onnx_tf import OPS
    for key in [k for k in OPS.keys() if k.op_type == "Relu"]:
        monkeypatch.delitem(OPS._handlers, key)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="pick_one")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    source = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(source))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("convert", source, tmp_path / "out", "--to", "savedmodel")
    assert result.code == 2, result.err
    assert "'Relu'" in result.err and "opset 19" in result.err and "pick_one" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_model_onnx_runtime_cannot_load_says_so(cli, tmp_path):
    """Valid ONNX with a custom-domain op: the message blames the missing kernel, not the file."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], domain="org.example")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    source = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("org.example", 1)]),
              str(source))
    result = cli("convert", source, tmp_path / "out", "--to", "savedmodel")
    assert result.code == 2, result.err
    assert "ONNX Runtime cannot load" in result.err and "Frobnicate" in result.err
    assert "no kernel" in result.err and "corrupt" not in result.err


def tflite_op_counts(path) -> Counter:
    """How many times each builtin op appears in a TFLite file (as LiteRT reads it)."""
    from ai_edge_litert.interpreter import Interpreter
    return Counter(op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details())


# The most Transpose ops a converted model may keep: the one taking the NCHW input to NHWC.
TRANSPOSES_AT_MOST = {"resnet18": 1, "mobilenet_v2": 1}


@pytest.mark.slow
@pytest.mark.parametrize("factory,shape", [("resnet18", "image:1,3,224,224"), ("mobilenet_v2", "image:1,3,224,224"),
                                           ("tiny_transformer", "x:1,7,32"), ("attention_block", "x:1,3,32,32"),
                                           ("gru_classifier", "sequence:1,7,8"), ("lstm_tagger", "tokens:1,9:int64")])
def test_real_pytorch_models_reach_tflite(cli, tmp_path, factory, shape):
    """ResNet-18, MobileNetV2, a TransformerEncoder, a block with GroupNorm, ConvTranspose, a
    bilinear resize and MultiheadAttention, a two-layer GRU and an embedding + bidirectional LSTM:
    PyTorch -> ONNX -> SavedModel -> TFLite, each hop within fp32 tolerances of the one before
    (LiteRT runs the last), with TFLite builtins only (the recurrent layers are unrolled over their
    known length, which the reshapes between them would hide without shape folding). The CNNs are
    laid out channels-last as a whole: no Transpose in the body, only the one at the NCHW input."""
    target = tmp_path / f"{factory}.tflite"
    result = cli("convert", f"tests.zoo_torch:{factory}", target, "--input-shape", shape, "--samples", "1", "--json")
    assert result.code == 0, result.err
    hops = result.json()["hops"]
    assert [h["edge"] for h in hops] == ["pytorch->onnx", "onnx->savedmodel", "savedmodel->tflite"]
    assert all(h["parity"]["passed"] and not h["parity"]["blind_spots"] for h in hops)
    if factory in TRANSPOSES_AT_MOST:
        ops = tflite_op_counts(target)
        assert ops["TRANSPOSE"] <= TRANSPOSES_AT_MOST[factory], ops
        assert ops["CONV_2D"] >= 20  # the convolutions are really there (and BatchNorm folded into them)
        assert "MUL" not in ops  # no BatchNorm left over as arithmetic


@pytest.mark.slow
def test_nhwc_io_layout_leaves_no_transpose(cli, tmp_path):
    """--keep-io-layout nhwc: a channels-last signature, so ResNet-18's TFLite has no Transpose at all;
    the SavedModel hop is checked against ONNX with its input moved to NHWC."""
    from ai_edge_litert.interpreter import Interpreter
    onnx_path, target = tmp_path / "r18.onnx", tmp_path / "r18.tflite"
    assert cli("convert", "tests.zoo_torch:resnet18", onnx_path, "--input-shape", "image:1,3,224,224",
               "--no-check").code == 0
    result = cli("convert", onnx_path, target, "--keep-io-layout", "nhwc", "--samples", "1", "--json")
    assert result.code == 0, result.err
    assert all(h["parity"]["passed"] for h in result.json()["hops"])
    assert tflite_op_counts(target)["TRANSPOSE"] == 0
    assert list(Interpreter(model_path=str(target)).get_input_details()[0]["shape"]) == [1, 224, 224, 3]


def test_bad_io_layout_is_exit_2_before_any_work(cli, tmp_path):
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "m.tflite", "--keep-io-layout", "nwhc")
    assert result.code == 2 and "nchw, nhwc" in result.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["lenet", "cifar10_quick", "cifar10_full_v1", "mtcnn_pnet", "mtcnn_onet"])
def test_trained_caffe_models_reach_tflite(cli, tmp_path, folder):
    """Trained Caffe models (tests/data/caffe: ceil-mode pooling, LRN within and across channels,
    PReLU, several outputs, the legacy V1 format): Caffe -> ONNX -> SavedModel -> TFLite, each hop
    checked (OpenCV's Caffe runtime, ONNX Runtime, TensorFlow, LiteRT)."""
    from tests.convert.caffe.helpers import CAFFE_DATA
    model = CAFFE_DATA / folder
    result = cli("convert", model / "deploy.prototxt", tmp_path / f"{folder}.tflite", "--weights",
                 model / "weights.caffemodel", "--samples", "1", "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["caffe->onnx", "onnx->savedmodel", "savedmodel->tflite"]
    assert result.json()["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_onnx_light_models_reach_tflite(cli, tmp_path, name):
    """The model-zoo graphs onnx ships in its package (opset 9: LRN, Sum, Concat, grouped convs and
    channel shuffles; vgg19 left out, it has alexnet's ops at four times the time), with random weights: ONNX -> SavedModel -> TFLite, both hops checked against
    the hop before (ONNX Runtime, then TensorFlow), and LiteRT against ONNX Runtime directly."""
    source, target = tmp_path / f"{name}.onnx", tmp_path / f"{name}.tflite"
    light_model_with_weights(name, source)
    # Random deep nets reach large logits (shufflenet's ~1e6): the scale rule judges float32 rounding fairly.
    result = cli("convert", source, target, "--samples", "1", "--fixed-batch", "--relative-to", "scale", "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["onnx->savedmodel", "savedmodel->tflite"]
    from ai_edge_litert.interpreter import Interpreter
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = np.random.default_rng(1).standard_normal(feed.shape).astype(np.float32)
    expected = session.run(None, {feed.name: x})[0]
    interpreter = Interpreter(model_path=str(target))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert expected.std() > 0.1  # logits that really depend on the input
    assert_outputs_match({"logits": expected}, {"logits": got.reshape(expected.shape)}, relative_to="scale")


@pytest.mark.slow
@pytest.mark.parametrize("factory", ["two_inputs_two_outputs", "cnn_batchnorm", "mobilenet_v2", "recurrent"])
def test_keras_models_round_trip_through_onnx(cli, tmp_path, factory):
    """The Keras models of the Keras -> ONNX tests (two inputs and outputs, BatchNorm + depthwise,
    MobileNetV2, LSTM + GRU) go the long way, keras -> onnx -> savedmodel -> tflite: tf2onnx's
    channels-last ONNX graphs through modelport's converter, each hop checked. tf2onnx writes the
    Keras GRU as an ONNX Loop whose condition it recomputes each step: with the sequence length
    fixed, the loop is unrolled and TFLite gets builtins only."""
    from tests import zoo_keras
    source = tmp_path / f"{factory}.keras"
    getattr(zoo_keras, factory)().save(source)
    result = cli("convert", source, tmp_path / f"{factory}.tflite", "--via", "onnx,savedmodel", "--samples", "1",
                 "--relative-to", "scale", "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["keras->onnx", "onnx->savedmodel", "savedmodel->tflite"]
    assert result.json()["passed"]
    if factory == "recurrent":
        assert "WHILE" not in tflite_op_counts(tmp_path / "recurrent.tflite")


@pytest.mark.slow
def test_a_loop_of_run_time_length_is_refused_by_tflite_with_what_to_do(cli, tmp_path):
    """A GRU over sequences of any length stays a loop, which TFLite's builtins cannot hold."""
    import keras
    sequence = keras.Input((None, 6), name="sequence")
    model = keras.Model(sequence, keras.layers.GRU(4)(sequence))
    model.save(tmp_path / "gru.keras")
    refused = cli("convert", tmp_path / "gru.keras", tmp_path / "gru.tflite", "--via", "onnx,savedmodel", "--no-check")
    assert refused.code == 2 and "tf.TensorListReserve" in refused.err and "--to savedmodel" in refused.err
    assert not (tmp_path / "gru.tflite").exists()
