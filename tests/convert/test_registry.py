"""The converter registry and planner, and the guard that every registered edge is tested."""
from pathlib import Path

import pytest

from modelport.convert import EDGES, converter, plan
from modelport.convert.registry import Edge
from modelport.errors import NoConversionPathError, UsageError

# Each registered edge and the test module that converts real models through it.
EDGE_TESTS = {
    ("pytorch", "onnx"): "test_torch_onnx.py",
    ("lightning", "onnx"): "test_lightning.py",
    ("huggingface", "onnx"): "../formats/test_huggingface.py",
    ("huggingface", "hf-onnx"): "test_hf_decoders.py",
    ("keras", "onnx"): "test_tf_onnx.py",
    ("savedmodel", "onnx"): "test_tf_onnx.py",
    ("tflite", "onnx"): "test_tf_onnx.py",
    ("caffe", "onnx"): "caffe/test_models.py",
    ("jax", "onnx"): "jax/test_models.py",
    ("mxnet", "onnx"): "mxnet/test_models.py",
    ("onnx", "savedmodel"): "onnx_tf/test_models.py",
    ("onnx", "pytorch"): "onnx_torch/test_models.py",
    ("onnx", "openvino"): "../edge/test_openvino.py",
    ("savedmodel", "tflite"): "test_tflite_edges.py",
    ("keras", "tflite"): "test_tflite_edges.py",
}


def test_every_registered_edge_has_a_test():
    assert set(EDGES) == set(EDGE_TESTS), "register the new edge's test in EDGE_TESTS"
    here = Path(__file__).parent
    for module in EDGE_TESTS.values():
        assert (here / module).is_file()


def test_single_hop_plan():
    assert [e.name for e in plan("keras", "onnx")] == ["keras->onnx"]


def test_shortest_multi_hop_plan(monkeypatch):
    def noop(session, dst, options):
        return dst
    monkeypatch.setitem(EDGES, ("onnx", "tflite"), Edge("onnx", "tflite", noop, "test"))
    monkeypatch.setitem(EDGES, ("onnx", "savedmodel"), Edge("onnx", "savedmodel", noop, "test"))
    monkeypatch.setitem(EDGES, ("savedmodel", "tflite"), Edge("savedmodel", "tflite", noop, "test"))
    assert [e.name for e in plan("pytorch", "tflite")] == ["pytorch->onnx", "onnx->tflite"]
    # A path the user spells out is kept as given, even when a shorter one exists.
    chain = plan("pytorch", "tflite", via=["onnx", "savedmodel"])
    assert [e.name for e in chain] == ["pytorch->onnx", "onnx->savedmodel", "savedmodel->tflite"]


def test_no_path_and_bad_via():
    with pytest.raises(NoConversionPathError, match="no conversion path from onnx to keras"):
        plan("onnx", "keras")
    with pytest.raises(NoConversionPathError, match="keras->caffe"):  # (keras->tflite exists since the TFLite edges)
        plan("keras", "onnx", via=["caffe"])
    assert [e.name for e in plan("keras", "onnx", via=["tflite"])] == ["keras->tflite", "tflite->onnx"]
    with pytest.raises(UsageError, match="nothing to convert"):
        plan("onnx", "onnx")


def test_converter_decorator_registers(monkeypatch):
    monkeypatch.setattr("modelport.convert.registry.EDGES", dict(EDGES))
    from modelport.convert import registry

    @converter("caffe", "onnx")
    def caffe_to_onnx(session, dst, options):
        """Caffe prototxt + caffemodel -> ONNX."""
        return dst

    assert registry.EDGES[("caffe", "onnx")].description == "Caffe prototxt + caffemodel -> ONNX."
