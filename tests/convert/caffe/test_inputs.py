"""How Caffe models are given (pairs, folders, training caffemodels), what is refused, and preprocessing."""
import shutil

import numpy as np
import onnx
import pytest

from modelport.convert.caffe import caffe_layer
from modelport.formats.caffe import caffe_pb2
from modelport.convert.caffe.graph import LAYERS
from tests.caffe_writer import write_random_caffemodel
from tests.conftest import listing
from tests.parity import assert_outputs_match
from tests.convert.caffe.helpers import CAFFE_DATA, onnx_outputs, opencv_outputs

LENET = CAFFE_DATA / "lenet"


@pytest.fixture
def lenet(tmp_path):
    folder = tmp_path / "lenet"
    shutil.copytree(LENET, folder)
    return folder


def _refused(result, *phrases):
    assert result.code == 2, result.err
    for phrase in phrases:
        assert phrase in result.err, result.err
    assert "Traceback" not in result.err


# ------------------------------------------------------------------------------- ways to give it
def test_prototxt_with_weights_folder_and_caffemodel_beside(cli, lenet, tmp_path):
    out = tmp_path / "out"
    assert cli("convert", lenet / "deploy.prototxt", out / "a.onnx", "--weights", lenet / "weights.caffemodel").code == 0
    assert cli("convert", lenet, out / "b.onnx").code == 0  # a folder holding one of each
    (lenet / "weights.caffemodel").rename(lenet / "lenet.caffemodel")
    (lenet / "deploy.prototxt").rename(lenet / "lenet.prototxt")
    assert cli("convert", lenet / "lenet.caffemodel", out / "c.onnx").code == 0  # same-named prototxt beside
    assert cli("convert", lenet / "lenet.prototxt", out / "d.onnx").code == 0   # same-named caffemodel beside
    same = [onnx.load(str(out / f"{n}.onnx")).graph.initializer[0].raw_data for n in "abcd"]
    assert all(s == same[0] for s in same)


def test_info_on_a_caffe_model(cli, lenet):
    data = cli("info", lenet / "deploy.prototxt", "--weights", lenet / "weights.caffemodel", "--json")
    assert data.code == 0, data.err
    info = data.json()
    assert info["format"] == "caffe" and info["inputs"][0]["shape"] == [None, 1, 28, 28]
    assert info["layer_types"]["Convolution"] == 2 and "OpenCV" in info["runtime"]


def test_caffemodel_of_the_training_net(cli, lenet, tmp_path):
    """Weights saved from a training net: Data and loss layers, auto-inserted Split layers."""
    trained = caffe_pb2.NetParameter()
    trained.ParseFromString((lenet / "weights.caffemodel").read_bytes())
    training = caffe_pb2.NetParameter(name="LeNet")
    training.layer.add(name="mnist", type="Data", top=["data", "label"])
    training.layer.add(name="label_mnist_1_split", type="Split", bottom=["label"], top=["label_split_0", "label_split_1"])
    for layer in trained.layer:
        if layer.blobs:
            training.layer.add().CopyFrom(layer)
    training.layer.add(name="accuracy", type="Accuracy", bottom=["ip2", "label_split_0"], top=["accuracy"])
    training.layer.add(name="loss", type="SoftmaxWithLoss", bottom=["ip2", "label_split_1"], top=["loss"])
    weights = tmp_path / "train.caffemodel"
    weights.write_bytes(training.SerializeToString())
    result = cli("convert", lenet / "deploy.prototxt", tmp_path / "lenet.onnx", "--weights", weights, "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]


# ---------------------------------------------------------------------------------- refusals
def test_truncated_caffemodel(cli, lenet, tmp_path):
    weights = lenet / "weights.caffemodel"
    weights.write_bytes(weights.read_bytes()[:100_000])
    before = listing(tmp_path)
    _refused(cli("convert", lenet / "deploy.prototxt", tmp_path / "x.onnx", "--weights", weights),
             "not a readable caffemodel", "truncated")
    assert listing(tmp_path) == before


def test_html_page_named_caffemodel(cli, lenet, tmp_path):
    weights = lenet / "weights.caffemodel"
    weights.write_text("<!DOCTYPE html><html><body>Sign in to download</body></html>")
    before = listing(tmp_path)
    _refused(cli("convert", lenet / "deploy.prototxt", tmp_path / "x.onnx", "--weights", weights), "HTML")
    assert listing(tmp_path) == before


def test_pair_that_does_not_match(cli, lenet, tmp_path):
    before = listing(tmp_path)
    other = CAFFE_DATA / "cifar10_quick" / "weights.caffemodel"
    _refused(cli("convert", lenet / "deploy.prototxt", tmp_path / "x.onnx", "--weights", other),
             "layer 'conv1' (Convolution)", "does not belong to this prototxt")
    # A caffemodel missing a layer's weights entirely.
    trained = caffe_pb2.NetParameter()
    trained.ParseFromString((lenet / "weights.caffemodel").read_bytes())
    partial = caffe_pb2.NetParameter(layer=[layer for layer in trained.layer if layer.name != "ip2"])
    weights = tmp_path / "partial.caffemodel"
    weights.write_bytes(partial.SerializeToString())
    before = listing(tmp_path)
    _refused(cli("convert", lenet / "deploy.prototxt", tmp_path / "x.onnx", "--weights", weights),
             "layer 'ip2' (InnerProduct) has 0 weight blob(s)")
    assert listing(tmp_path) == before


def test_missing_weights_says_what_to_pass(cli, tmp_path):
    shutil.copy(LENET / "deploy.prototxt", tmp_path / "deploy.prototxt")
    _refused(cli("convert", tmp_path / "deploy.prototxt", tmp_path / "x.onnx"), "--weights")


def test_unsupported_layer_is_named_with_the_supported_ones(cli, tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('name: "t"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 4\ninput_dim: 4\n'
                        'layer { name: "roi" type: "ROIPooling" bottom: "data" top: "out" }\n')
    weights = tmp_path / "net.caffemodel"
    weights.write_bytes(caffe_pb2.NetParameter(name="t", layer=[caffe_pb2.LayerParameter(name="roi")]).SerializeToString())
    before = listing(tmp_path)
    _refused(cli("convert", prototxt, tmp_path / "x.onnx", "--weights", weights),
             "Caffe op 'ROIPooling'", "layer 'roi'", "supported:", "Convolution")
    assert listing(tmp_path) == before


def test_custom_layer_through_the_registry(cli, tmp_path, monkeypatch):
    """A user layer ("LeCunTanh", 1.7159 tanh(2x/3)) registered the way the built-in layers are."""
    monkeypatch.setattr(LAYERS, "_handlers", dict(LAYERS._handlers))  # the registration ends with the test

    @caffe_layer("LeCunTanh")
    def convert_lecun_tanh(ctx):
        g = ctx.graph
        inner = g.op("Tanh", [g.op("Mul", [ctx.inputs[0], g.const("two_thirds", 2 / 3)], f"{ctx.base}/scaled")], f"{ctx.base}/tanh")
        return [(g.op("Mul", [inner, g.const("amplitude", 1.7159)], ctx.base), ctx.shapes[0])]

    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('name: "t"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }\n'
                        'layer { name: "act" type: "LeCunTanh" bottom: "data" top: "out" }\n')
    weights = write_random_caffemodel(prototxt, tmp_path / "net.caffemodel")
    dst = tmp_path / "net.onnx"
    result = cli("convert", prototxt, dst, "--weights", weights)
    # OpenCV has no such layer: the conversion is written, and says it could not be checked.
    assert result.code == 0, result.err
    assert "parity NOT checked" in result.err and "'LeCunTanh'" in result.err
    x = np.linspace(-3, 3, 18, dtype=np.float32).reshape(1, 2, 3, 3)
    assert_outputs_match({"out": 1.7159 * np.tanh(2 * x / 3)}, onnx_outputs(dst, {"data": x}), atol=0.0, rtol=1e-6)


# ------------------------------------------------------------------------------- preprocessing
def test_preprocessing_recorded_and_baked(cli, tmp_path):
    folder = CAFFE_DATA / "cifar10_quick"
    recorded = tmp_path / "recorded.onnx"
    result = cli("convert", folder / "deploy.prototxt", recorded, "--weights", folder / "weights.caffemodel",
                 "--mean", folder / "mean.binaryproto", "--scale", "0.5", "--json")
    assert result.code == 0, result.err
    # The check feeds what the app will: pixels 0..255 less the mean, times the scale.
    assert "less the Caffe mean" in result.json()["hops"][0]["parity"]["feeds"][0]
    props = {p.key: p.value for p in onnx.load(str(recorded)).metadata_props}
    assert '"scale": 0.5' in props["modelport.caffe.preprocessing"] and props["modelport.caffe.preprocessing_baked"] == "false"

    baked = tmp_path / "baked.onnx"
    result = cli("convert", folder / "deploy.prototxt", baked, "--weights", folder / "weights.caffemodel",
                 "--mean", folder / "mean.binaryproto", "--scale", "0.5", "--channel-order", "RGB",
                 "--bake-preprocessing", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]
    assert "raw pixels 0..255" in result.json()["hops"][0]["parity"]["feeds"][0]  # what the baked graph takes
    # Independently: raw RGB pixels through the baked ONNX == OpenCV on the preprocessed BGR input.
    mean_blob = caffe_pb2.BlobProto()
    mean_blob.ParseFromString((folder / "mean.binaryproto").read_bytes())
    mean = np.asarray(mean_blob.data, np.float32).reshape(3, 32, 32)
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    expected = opencv_outputs(folder / "deploy.prototxt", folder / "weights.caffemodel",
                              {"data": ((rgb[:, ::-1] - mean) * 0.5).astype(np.float32)})
    got = onnx_outputs(baked, {"data": rgb})
    assert_outputs_match({"prob": expected["prob"]}, got, atol=1e-5, rtol=1e-7)


def test_preprocessing_flags_need_a_caffe_source(cli, keras_models, tmp_path):
    result = cli("convert", keras_models["two_io.keras"], tmp_path / "x.onnx", "--mean", "1,2,3")
    _refused(result, "apply to Caffe models")
