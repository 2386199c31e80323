"""Quantized TFLite models (made by TF's own converter) validate against their float source:
integer io is quantized/dequantized with the tensors' scale and zero point, and the precision
(which picks the tolerances) is read from the flatbuffer."""
import numpy as np
import pytest

from modelport import open_model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from tests import zoo_keras
    return zoo_keras.save_quantized(tmp_path_factory.mktemp("quantized"))


@pytest.mark.parametrize("source,candidate,precision", [
    ("cnn.keras", "cnn_int8.tflite", "int8"),
    ("cnn.keras", "cnn_int8_float_io.tflite", "int8"),
    ("cnn.keras", "cnn_fp16.tflite", "fp16"),
    ("mlp.keras", "mlp_dynamic.tflite", "uint8-weights"),
])
def test_quantized_tflite_validates_against_its_float_source(cli, quantized, source, candidate, precision):
    result = cli("validate", quantized[source], quantized[candidate], "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["precision"] == precision
    out = data["outputs"][0]
    assert out["cosine"] > 0.99 and out["top1_agreement"] >= 0.98
    assert data["blind_spots"] == []


def test_integer_io_is_presented_as_float_and_dequantized(quantized):
    with open_model(quantized["cnn_int8.tflite"]) as session:
        assert session.inputs[0].dtype == np.float32 and session.outputs[0].dtype == np.float32
        x = np.random.default_rng(1).standard_normal((2, 16, 16, 3)).astype(np.float32)
        out = next(iter(session.run({session.inputs[0].name: x}).values()))
        assert out.dtype == np.float32 and len(np.unique(out)) > 10  # dequantized values, not 8-bit codes
    with open_model(quantized["cnn_int8.tflite"], raw_io=True) as raw:
        assert raw.inputs[0].dtype == np.int8 and raw.outputs[0].dtype == np.int8


def test_dynamic_range_model_fails_fp32_tolerances_it_is_not_judged_by(cli, quantized):
    """Judged at fp32, the dynamic-range model fails: detection is what makes it pass above."""
    strict = cli("validate", quantized["mlp.keras"], quantized["mlp_dynamic.tflite"], "--precision", "fp32", "--json")
    assert strict.code == 1


def test_int8_tflite_converts_to_onnx_on_its_integers(cli, quantized, tmp_path):
    """tflite -> onnx keeps the integer io, so that hop is checked on the raw int8 values."""
    import onnx
    dst = tmp_path / "int8.onnx"
    result = cli("convert", quantized["cnn_int8.tflite"], dst, "--json")
    assert result.code == 0, result.err
    assert onnx.load(str(dst)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT8
