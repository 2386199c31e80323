"""`modelport validate` across formats: real passes, deliberate failures it must catch and localize."""
import json

import numpy as np
import onnx
import pytest
import torch

import modelport
from tests import zoo_torch
from tests.validate.onnx_edits import channels_last_input, perturb_weight, replace_relu_with_leaky


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory):
    """small_cnn exported by the dynamo exporter (carries module names), dynamic batch."""
    path = tmp_path_factory.mktemp("validate") / "cnn.onnx"
    torch.onnx.export(zoo_torch.small_cnn(), (torch.rand(2, 3, 16, 16),), str(path), dynamo=True,
                      input_names=["image"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False, external_data=False)
    return path


def _save(model, path):
    onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------------------------ passing pairs
def test_pytorch_vs_onnx_passes_and_localizes_nothing(cli, cnn_onnx, tmp_path):
    result = cli("validate", "tests.zoo_torch:small_cnn", cnn_onnx, "--input-shape", "image:1,3,16,16",
                 "--localize", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] and data["reference_format"] == "pytorch" and data["candidate_format"] == "onnx"
    assert data["warnings"] == ["output names differ, matched by position: 'output'->'logits'"]
    assert data["localization"]["method"] == "torch-modules"
    assert data["localization"]["status"] == "none" and data["localization"]["compared"] >= 5


def test_keras_vs_onnx_and_savedmodel_vs_onnx(cli, keras_models, tmp_path):
    onnx_path = tmp_path / "two.onnx"
    assert cli("convert", keras_models["two_io.keras"], onnx_path, "--no-check").code == 0
    result = cli("validate", keras_models["two_io.keras"], onnx_path, "--json")
    assert result.code == 0, result.err
    assert [o["candidate_name"] for o in result.json()["outputs"]] == ["logits", "score"]
    saved_onnx = tmp_path / "saved.onnx"
    assert cli("convert", keras_models["two_io_savedmodel"], saved_onnx, "--no-check").code == 0
    result = cli("validate", keras_models["two_io_savedmodel"], saved_onnx, "--samples", "2", "--json")
    assert result.code == 0, result.err
    assert result.json()["samples"] == 4


def test_keras_vs_tflite(cli, keras_models):
    result = cli("validate", keras_models["cnn_bn.keras"], keras_models["cnn_bn.tflite"], "--localize", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["outputs"][0]["top1_agreement"] == 1.0
    assert data["localization"]["status"] == "unavailable" and "cannot be matched" in data["localization"]["message"]


def test_layout_difference_is_resolved_from_shapes(cli, cnn_onnx, tmp_path):
    nhwc = _save(channels_last_input(onnx.load(str(cnn_onnx)), "image"), tmp_path / "nhwc.onnx")
    result = cli("validate", cnn_onnx, nhwc, "--json")
    assert result.code == 0, result.err
    assert any("transposed by [0, 2, 3, 1]" in w for w in result.json()["warnings"])
    explicit = cli("validate", cnn_onnx, nhwc, "--input-layout", "NCHW:NHWC", "--json")
    assert explicit.code == 0


def test_user_feeds_and_output_map(cli, cnn_onnx, tmp_path):
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, image=np.random.default_rng(1).standard_normal((5, 3, 16, 16)).astype(np.float32))
    result = cli("validate", "tests.zoo_torch:small_cnn", cnn_onnx, "--input-shape", "image:1,3,16,16",
                 "--inputs", feeds, "--output-map", "output=logits", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["samples"] == 1 and data["batch_sizes"] == [5] and data["warnings"] == []


# ----------------------------------------------------------------------------- deliberate failures
def test_perturbed_weight_fails_and_is_localized_onnx_vs_onnx(cli, cnn_onnx, tmp_path):
    edited, node = perturb_weight(onnx.load(str(cnn_onnx)), "Conv", n=1)
    candidate = _save(edited, tmp_path / "perturbed.onnx")
    result = cli("validate", cnn_onnx, candidate, "--localize", "--json")
    assert result.code == 1
    data = result.json()
    assert not data["passed"] and not data["outputs"][0]["passed"]
    found = data["localization"]
    assert found["status"] == "found" and found["node"] == node and found["op_type"] == "Conv"
    assert found["trace"][-1]["passed"] is False and all(row["passed"] for row in found["trace"][:-1])


def test_perturbed_weight_is_localized_to_the_torch_module(cli, cnn_onnx, tmp_path):
    edited, node = perturb_weight(onnx.load(str(cnn_onnx)), "Conv", n=1)
    candidate = _save(edited, tmp_path / "perturbed.onnx")
    result = cli("validate", "tests.zoo_torch:small_cnn", candidate, "--input-shape", "image:1,3,16,16", "--localize")
    assert result.code == 1
    assert "first diverging module" in result.out and "'features.5'" in result.out and node in result.out


def test_near_neighbour_op_is_named(cli, cnn_onnx, tmp_path):
    edited, node = replace_relu_with_leaky(onnx.load(str(cnn_onnx)), n=0)
    candidate = _save(edited, tmp_path / "leaky.onnx")
    report = tmp_path / "report.json"
    result = cli("validate", cnn_onnx, candidate, "--localize", "--report", report)
    assert result.code == 1
    assert "parity check failed" in result.err and "beyond tolerance" in result.err
    data = json.loads(report.read_text())
    assert data["localization"]["node"] == node and data["localization"]["op_type"] == "Relu"


@pytest.fixture(scope="module")
def transformer_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("validate") / "transformer.onnx"
    torch.onnx.export(zoo_torch.tiny_transformer(), (torch.rand(2, 7, 32),), str(path), dynamo=True, verbose=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path


def test_fp16_candidate_passes_fp16_fails_fp32(cli, transformer_onnx, tmp_path):
    from onnxruntime.transformers.float16 import convert_float_to_float16
    half = _save(convert_float_to_float16(onnx.load(str(transformer_onnx)), keep_io_types=True), tmp_path / "fp16.onnx")
    result = cli("validate", transformer_onnx, half, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["precision"] == "fp16" and data["relative_to"] == "scale"
    assert max(o["max_abs"] for o in data["outputs"]) > 1e-4  # fp16 really differs ...
    strict = cli("validate", transformer_onnx, half, "--precision", "fp32", "--localize", "--json")
    assert strict.code == 1  # ... beyond fp32 tolerance
    assert strict.json()["localization"]["status"] == "found"


def test_every_failing_output_is_listed(transformer_onnx):
    from modelport.formats.input_specs import parse_input_specs
    report = modelport.validate("tests.zoo_torch:tiny_transformer", transformer_onnx, atol=0, rtol=0,
                                open_options={"input_specs": parse_input_specs(["x:1,7,32"])})
    assert not report
    text = repr(report)
    assert text.count("beyond tolerance") == 2 and "FAILED" in text
    with pytest.raises(AssertionError, match="beyond tolerance"):
        assert report, report.summary()


def test_api_passes_with_assert(cnn_onnx):
    report = modelport.validate(cnn_onnx, cnn_onnx)
    assert report
    # A model against itself: bit-identical outputs, and the comparison's time is recorded.
    assert report.reference_format == "onnx" and report.outputs and all(o.max_abs == 0.0 for o in report.outputs)
    assert report.seconds["compare"] > 0


def test_incompatible_models_are_bad_input(cli, cnn_onnx, keras_models):
    result = cli("validate", cnn_onnx, keras_models["recurrent.keras"])
    assert result.code == 2 and "cannot feed" in result.err
    result = cli("validate", cnn_onnx, keras_models["two_io.keras"])
    assert result.code == 2 and "take 1 and 2 inputs" in result.err


def test_bad_options_exit_2(cli, cnn_onnx):
    assert cli("validate", cnn_onnx, cnn_onnx, "--report", "r.txt").code == 2
    assert cli("validate", cnn_onnx, cnn_onnx, "--output-map", "nonsense").code == 2
    assert cli("validate", cnn_onnx, cnn_onnx, "--precision", "fp8").code == 2
    result = cli("validate", cnn_onnx, cnn_onnx, "--output-map", "logits=nope")
    assert result.code == 2 and "do not exist" in result.err


def test_keras_vs_onnx_localizes_to_the_layer(cli, keras_models, tmp_path):
    converted = tmp_path / "cnn_bn.onnx"
    assert cli("convert", keras_models["cnn_bn.keras"], converted).code == 0
    clean = cli("validate", keras_models["cnn_bn.keras"], converted, "--localize", "--json").json()
    assert clean["passed"] and clean["localization"]["method"] == "keras-layers"
    assert clean["localization"]["status"] == "none" and clean["localization"]["compared"] >= 4
    # Perturb the depthwise conv (the 2nd Conv): BatchNorm after it is the first layer whose output
    # the ONNX graph keeps (tf2onnx fuses the conv's bias), so that is the layer named.
    edited, node = perturb_weight(onnx.load(str(converted)), "Conv", n=1, scale=0.5)
    candidate = _save(edited, tmp_path / "perturbed.onnx")
    result = cli("validate", keras_models["cnn_bn.keras"], candidate, "--localize", "--json")
    assert result.code == 1
    found = result.json()["localization"]
    assert found["status"] == "found" and found["layer"] == "batch_normalization_1"
    assert all(row["passed"] for row in found["trace"][:-1]) and found["trace"][0]["layer"] in ("re_lu", "max_pooling2d")


def test_caffe_vs_onnx(cli, tmp_path):
    from tests.convert.caffe.helpers import CAFFE_DATA
    lenet = CAFFE_DATA / "lenet"
    converted = tmp_path / "lenet.onnx"
    assert cli("convert", lenet / "deploy.prototxt", converted, "--weights", lenet / "weights.caffemodel").code == 0
    result = cli("validate", lenet / "deploy.prototxt", converted, "--weights", lenet / "weights.caffemodel",
                 "--localize", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["reference_format"] == "caffe" and data["outputs"][0]["candidate_name"] == "loss"
    assert data["localization"]["status"] == "unavailable"


def test_ort_optimized_candidate_with_contrib_ops_is_localized(cli, cnn_onnx, tmp_path):
    """Original vs ONNX Runtime's optimized graph (FusedConv, a contrib op shape inference does not
    know): intermediate tensors are still exposed and a perturbed fused conv is found."""
    import onnxruntime as ort
    optimized = tmp_path / "optimized.onnx"
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(str(cnn_onnx), options, providers=["CPUExecutionProvider"])
    model = onnx.load(str(optimized))
    assert any(node.op_type == "FusedConv" for node in model.graph.node)
    clean = cli("validate", cnn_onnx, optimized, "--localize", "--json").json()
    assert clean["passed"] and clean["localization"]["compared"] >= 4
    edited, node = perturb_weight(model, "FusedConv", n=1)
    fused = next(n for n in edited.graph.node if n.name == node)
    candidate = _save(edited, tmp_path / "perturbed.onnx")
    result = cli("validate", cnn_onnx, candidate, "--localize", "--json")
    assert result.code == 1
    found = result.json()["localization"]
    assert found["status"] == "found" and found["tensor"] == fused.output[0]


def test_dynamic_dims_are_filled_by_name(cli, tmp_path):
    path = tmp_path / "seq.onnx"
    torch.onnx.export(zoo_torch.tiny_transformer(), (torch.rand(2, 7, 32),), str(path), dynamo=True, verbose=False,
                      external_data=False, input_names=["x"],
                      dynamic_shapes=({0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")},))
    by_symbol = cli("validate", path, path, "--dim", "seq=5", "--json")
    assert by_symbol.code == 0, by_symbol.err
    hidden = next(o for o in by_symbol.json()["outputs"] if o["candidate_shape"] and len(o["candidate_shape"]) == 3)
    assert hidden["candidate_shape"] == [3, 5, 32]
    by_input = cli("validate", path, path, "--dim", "x=4", "--json").json()
    assert [3, 4, 32] in [o["candidate_shape"] for o in by_input["outputs"]]
    assert cli("validate", path, path, "--dim", "seq=five").code == 2
