"""MXNet -> ONNX against real MXNet 1.9.1: the outputs it computed on these models are fixtures
(tests/data/mxnet/*/mxnet_io.npz, made by tests/data/mxnet/make_fixtures.py in a side venv).

Both the converted ONNX model (run by ONNX Runtime) and modelport's MXNet interpreter (the
reference of the built-in parity check) are held to MXNet's numbers.
"""
import json
import shutil
import struct

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.conftest import REPO, listing

DATA = REPO / "tests" / "data" / "mxnet"
MODELS = {"mx_cnn": "mx_cnn", "mx_unet": "mx_unet", "mx_ops": "mx_ops", "mtcnn_det1": "det1", "mtcnn_det2": "det2"}
TOLERANCE = 2e-6  # float32 rounding: the largest difference seen is 1.9e-6 (a sum pooling of 9 values)


def recorded(folder):
    io = np.load(DATA / folder / "mxnet_io.npz")
    feeds = {key[3:]: io[key] for key in io.files if key.startswith("in:")}
    outputs = [io[f"out:{i}"] for i in range(len(io["output_names"]))]
    return feeds, dict(zip(io["output_names"].tolist(), outputs))


def shape_flags(feeds, batch=1):
    flags = []
    for name, value in feeds.items():
        flags += ["--input-shape", f"{name}:{','.join(map(str, (batch, *value.shape[1:])))}"]
    return flags


@pytest.mark.parametrize("folder", sorted(MODELS))
def test_interpreter_matches_real_mxnet(folder):
    from modelport.formats.mxnet import MXNetSession
    feeds, expected = recorded(folder)
    session = MXNetSession(DATA / folder)
    got = session.run(feeds)
    assert list(got) == list(expected)  # MXNet's own output names, in order
    for name, value in expected.items():
        assert got[name].shape == value.shape
        np.testing.assert_allclose(got[name], value, atol=TOLERANCE, rtol=0, err_msg=name)


@pytest.mark.parametrize("folder", sorted(MODELS))
def test_converted_onnx_matches_real_mxnet(cli, tmp_path, folder):
    feeds, expected = recorded(folder)
    dst = tmp_path / f"{folder}.onnx"
    # Converted at batch 1 and checked by modelport at batches 1 and 3; compared here at MXNet's batch 2.
    result = cli("convert", DATA / folder, dst, *shape_flags(feeds), "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["source_format"] == "mxnet" and report["checked"] and report["passed"], report
    assert report["warnings"] == []
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == list(expected)
    got = ort.InferenceSession(str(dst)).run(None, feeds)
    for (name, value), out in zip(expected.items(), got):
        assert out.shape == value.shape, name
        np.testing.assert_allclose(out, value, atol=TOLERANCE, rtol=0, err_msg=name)
        assert np.abs(value).max() > 1e-2, f"{name}: a check on ~0 outputs proves nothing"
    assert listing(tmp_path) == [dst.name]


def test_output_dims_follow_the_batch_only_where_they_do(cli, tmp_path):
    """A reduction over the batch, or a reshape folding it into another dim, is not declared 'N'."""
    feeds, expected = recorded("mx_ops")
    dst = tmp_path / "ops.onnx"
    assert cli("convert", DATA / "mx_ops", dst, *shape_flags(feeds)).code == 0
    declared = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
                for o in onnx.load(str(dst)).graph.output}
    assert declared["elemwise_sub0_output"] == ["N", 4, 6, 6]
    assert declared["max1_output"] == [6]                                    # all but axis 2 reduced
    assert declared["reshape0_output"] == ["reshape0_output_dim0", 6]        # (-1, 0) reversed: N*4*6 rows
    assert declared["reshape1_output"] == ["N", 4, 6, 6]


def test_newer_opset_spells_reductions_with_axes_inputs(cli, tmp_path):
    feeds, expected = recorded("mx_ops")
    dst = tmp_path / "ops18.onnx"
    assert cli("convert", DATA / "mx_ops", dst, *shape_flags(feeds), "--opset", "18").code == 0
    got = dict(zip(expected, ort.InferenceSession(str(dst)).run(None, feeds)))
    for name in ("expand_dims0_output", "max1_output", "min1_output", "prod0_output", "sum1_output"):
        np.testing.assert_allclose(got[name], expected[name], atol=TOLERANCE, err_msg=name)


def test_legacy_operator_names_convert(cli, tmp_path):
    """Symbols written by old MXNet versions spell operators differently (MXNet upgrades them on
    load, and so do we): the same network under its old names gives the same numbers."""
    folder = tmp_path / "legacy"
    shutil.copytree(DATA / "mx_cnn", folder)
    symbol = json.loads((folder / "mx_cnn-symbol.json").read_text())
    renames = {"Convolution": "Convolution_v1", "BatchNorm": "CuDNNBatchNorm", "Pooling": "Pooling_v1",
               "SoftmaxOutput": "Softmax", "Flatten": "flatten"}
    for node in symbol["nodes"]:
        node["op"] = renames.get(node["op"], node["op"])
        if "attrs" in node:  # and the early layout's key
            node["param"] = node.pop("attrs")
    symbol.pop("node_row_ptr"), symbol.pop("attrs")
    (folder / "mx_cnn-symbol.json").write_text(json.dumps(symbol))
    feeds, expected = recorded("mx_cnn")
    dst = tmp_path / "legacy.onnx"
    assert cli("convert", folder / "mx_cnn-symbol.json", dst, *shape_flags(feeds)).code == 0
    got = ort.InferenceSession(str(dst)).run(None, feeds)[0]
    np.testing.assert_allclose(got, expected["softmax_output"], atol=TOLERANCE)


@pytest.mark.parametrize("spelling", ["folder", "symbol", "symbol+weights", "params"])
def test_the_pair_can_be_named_four_ways(cli, tmp_path, spelling):
    folder = DATA / "mtcnn_det2"
    source, extra = {"folder": (folder, []), "symbol": (folder / "det2-symbol.json", []),
                     "symbol+weights": (folder / "det2-symbol.json", ["--weights", folder / "det2-0001.params"]),
                     "params": (folder / "det2-0001.params", [])}[spelling]
    dst = tmp_path / "det2.onnx"
    result = cli("convert", source, dst, *extra, "--input-shape", "data:1,3,24,24", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]


def test_info_reports_operators_and_shapes(cli):
    result = cli("info", DATA / "mtcnn_det1" / "det1-symbol.json", "--input-shape", "data:1,3,12,12", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["format"] == "mxnet"
    assert data["operators"] == {"Convolution": 5, "LeakyReLU": 3, "Pooling": 1, "SoftmaxActivation": 1}
    assert data["inputs"] == [{"name": "data", "shape": [None, 3, 12, 12], "dtype": "float32"}]
    assert {o["name"]: o["shape"] for o in data["outputs"]} == {"conv4_2_output": [None, 4, 1, 1],
                                                               "prob1_output": [None, 2, 1, 1]}
    bare = cli("info", DATA / "mtcnn_det1", "--json")  # no shapes: the inputs are listed without them
    assert bare.code == 0 and bare.json()["inputs"][0]["shape"] is None


# -- bad input: exit 2, a message that says what to do, nothing written ------------------------------
def test_missing_input_shape_is_asked_for(cli, tmp_path):
    dst = tmp_path / "out.onnx"
    result = cli("convert", DATA / "mtcnn_det1", dst)
    assert result.code == 2
    assert "MXNet symbols record no input shapes: give 'data' one" in result.err and "--input-shape data:" in result.err
    assert listing(tmp_path) == []


def test_unknown_input_name_is_refused(cli, tmp_path):
    result = cli("convert", DATA / "mtcnn_det1", tmp_path / "out.onnx", "--input-shape", "image:1,3,12,12")
    assert result.code == 2
    assert "'image', not an input of this symbol" in result.err and "its inputs are 'data'" in result.err
    assert listing(tmp_path) == []


def test_unknown_operator_names_op_and_node(cli, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(DATA / "mtcnn_det1", folder)
    path = folder / "det1-symbol.json"
    symbol = json.loads(path.read_text())
    symbol["nodes"][-1]["op"] = "MyCustomSoftmax"
    path.write_text(json.dumps(symbol))
    dst = tmp_path / "out.onnx"
    result = cli("convert", path, dst, "--input-shape", "data:1,3,12,12", "--no-check")
    assert result.code == 2
    assert "MyCustomSoftmax" in result.err and "prob1" in result.err and "mxnet_op" in result.err
    assert not dst.exists()


def test_truncated_params_are_refused(cli, tmp_path):
    folder = tmp_path / "cut"
    shutil.copytree(DATA / "mtcnn_det1", folder)
    params = folder / "det1-0001.params"
    params.write_bytes(params.read_bytes()[:5000])
    result = cli("convert", folder, tmp_path / "out.onnx", "--input-shape", "data:1,3,12,12")
    assert result.code == 2
    assert "'det1-0001.params' is truncated" in result.err and "again" in result.err
    assert not (tmp_path / "out.onnx").exists()


def test_params_of_another_model_are_refused(cli, tmp_path):
    dst = tmp_path / "out.onnx"
    result = cli("convert", DATA / "mtcnn_det1" / "det1-symbol.json", dst,
                 "--weights", DATA / "mx_cnn" / "mx_cnn-0000.params", "--input-shape", "data:1,3,12,12")
    assert result.code == 2
    assert "has no value for 'prelu1_gamma'" in result.err and "does not belong to this symbol" in result.err
    assert listing(tmp_path) == []


def test_reshape_codes():
    from modelport.convert.mxnet.ops import reshape_shape
    # MXNet's documented examples of the special values.
    assert reshape_shape((2, 3, 4), (4, 0, 2)) == (4, 3, 2)
    assert reshape_shape((2, 3, 4), (2, 0, 0)) == (2, 3, 4)
    assert reshape_shape((2, 3, 4), (6, 1, -1)) == (6, 1, 4)
    assert reshape_shape((2, 3, 4), (3, -1, 8)) == (3, 1, 8)
    assert reshape_shape((2, 3, 4), (-1,)) == (24,)
    assert reshape_shape((2, 3, 4), (-2,)) == (2, 3, 4)
    assert reshape_shape((2, 3, 4), (2, -2)) == (2, 3, 4)
    assert reshape_shape((2, 3, 4), (-2, 1, 1)) == (2, 3, 4, 1, 1)
    assert reshape_shape((2, 3, 4, 5), (-3, -3)) == (6, 20)
    assert reshape_shape((2, 3, 4), (0, -3)) == (2, 12)
    assert reshape_shape((2, 3, 4), (-3, -2)) == (6, 4)
    assert reshape_shape((2, 3, 4), (-4, 1, 2, -2)) == (1, 2, 3, 4)
    assert reshape_shape((2, 3, 4), (2, -4, -1, 3, -2)) == (2, 1, 3, 4)
    assert reshape_shape((10, 5, 4), (-1, 0)) == (40, 5)
    assert reshape_shape((10, 5, 4), (-1, 0), reverse=True) == (50, 4)


def test_params_reader_takes_both_array_layouts(tmp_path):
    """The MTCNN files are the legacy layout (uint32 rank and dims); MXNet 1.9.1 writes V2."""
    from modelport.formats.mxnet.parser import ND_V2_MAGIC, read_params
    legacy = read_params(DATA / "mtcnn_det1" / "det1-0001.params")
    current = read_params(DATA / "mx_cnn" / "mx_cnn-0000.params")
    assert legacy["arg:conv1_weight"].shape == (10, 3, 3, 3) and legacy["arg:conv1_weight"].dtype == np.float32
    assert current["aux:bn1_moving_var"].shape == (16,) and (current["aux:bn1_moving_var"] > 0).all()
    head = (DATA / "mx_cnn" / "mx_cnn-0000.params").read_bytes()[24:28]
    assert struct.unpack("<I", head)[0] == ND_V2_MAGIC


@pytest.mark.parametrize("folder", ["mtcnn_det1", "mtcnn_det2"])
def test_mtcnn_matches_its_caffe_twin_in_opencv(cli, tmp_path, folder):
    """A second independent reference: the repository also published MTCNN as Caffe files. Their
    weights are the MXNet ones for images with the channels reversed and the axes transposed (MTCNN
    was trained in MATLAB, whose images are column-major): OpenCV running the twin on such images
    gives the converted model's outputs, transposed back."""
    from modelport.formats.caffe import CaffeSession
    feeds, _ = recorded(folder)
    image = feeds["data"][:, :, :24, :24]  # P-Net takes any size; the twin declares 12x12 or 24x24
    dst = tmp_path / "mtcnn.onnx"
    assert cli("convert", DATA / folder, dst, "--input-shape", "data:1,3,24,24").code == 0
    ours = ort.InferenceSession(str(dst)).run(None, {"data": image})
    twin = CaffeSession(DATA / folder / "caffe_twin.prototxt")
    theirs = twin.run({twin.inputs[0].name: np.ascontiguousarray(image[:, ::-1].transpose(0, 1, 3, 2))})
    for got, expected in zip(ours, theirs.values()):
        expected = expected.transpose(0, 1, 3, 2) if expected.ndim == 4 else expected
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
