"""modelport quantize: ONNX Runtime's int8 (static QDQ, dynamic) and fp16, each checked on held-out
calibration data by its precision's rule; the result's accuracy measured by ONNX Runtime directly
against the labels; a calibration that does not cover the held-out data fails the check."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from modelport import demo_classifier
from tests.conftest import listing


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    """(class-folder images, normalized pixels, labels, the trained CNN as ONNX)."""
    import modelport
    root = tmp_path_factory.mktemp("quantize")
    pixels, labels = demo_classifier.save_images(root / "images", per_class=16)
    demo_classifier.save_program(demo_classifier.trained_cnn(), root / "cnn.pt2")
    modelport.convert(root / "cnn.pt2", root / "cnn.onnx")
    return root / "images", pixels, labels, root / "cnn.onnx"


def _accuracy(path, pixels, labels) -> float:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path))
    return float(np.mean(session.run(None, {session.get_inputs()[0].name: pixels})[0].argmax(axis=1) == labels))


def test_static_int8_from_class_folders_keeps_the_accuracy(cli, stripes, tmp_path):
    images, pixels, labels, model = stripes
    result = cli("quantize", model, tmp_path / "int8.onnx", "--mode", "int8", "--calibration", images,
                 "--mean", "127.5", "--std", "127.5", "--json")
    assert result.code == 0, result.out[-3000:] + result.err[-3000:]
    answer = result.json()
    assert answer["precision"] == "int8" and answer["passed"]
    assert "every 4th (12) is held out" in answer["calibration"]
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) >= 2  # activations quantized, not just weights
    assert _accuracy(tmp_path / "int8.onnx", pixels, labels) >= _accuracy(model, pixels, labels) - 0.05 > 0.85


def test_fp16_and_dynamic_int8_are_judged_by_their_own_rules(cli, stripes, tmp_path):
    _, _, _, model = stripes
    half = cli("quantize", model, tmp_path / "half.onnx", "--mode", "fp16", "--json")
    assert half.code == 0 and half.json()["precision"] == "fp16", half.err[-2000:]
    io16 = cli("quantize", model, tmp_path / "half_io.onnx", "--mode", "fp16", "--no-keep-io-types", "--json")
    assert io16.code == 0, io16.err[-2000:]
    types = {v.type.tensor_type.elem_type for v in onnx.load(str(tmp_path / "half_io.onnx")).graph.input}
    assert types == {onnx.TensorProto.FLOAT16}
    assert {v.type.tensor_type.elem_type for v in onnx.load(str(tmp_path / "half.onnx")).graph.input} == {
        onnx.TensorProto.FLOAT}
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).eval()
    program = torch.export.export(mlp, (torch.zeros(2, 16),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "mlp.pt2")
    np.savez(tmp_path / "calibration.npz", input=np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32))
    dynamic = cli("quantize", tmp_path / "mlp.pt2", tmp_path / "mlp_int8.onnx", "--mode", "int8-dynamic",
                  "--calibration", tmp_path / "calibration.npz", "--json")  # a PyTorch source: converted first
    assert dynamic.code == 0, dynamic.out[-3000:] + dynamic.err[-3000:]
    assert dynamic.json()["precision"] == "uint8-weights"
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeLinear")
               for n in onnx.load(str(tmp_path / "mlp_int8.onnx")).graph.node)


def test_calibration_that_misses_the_held_out_range_fails_the_check(cli, stripes, tmp_path):
    """Every 4th sample (the held-out ones) 50x brighter than what calibrated: their activations are
    clipped by the calibrated ranges, so the int8 check must fail; the result is kept to inspect, and a
    model already at the destination is not replaced by it."""
    _, pixels, _, model = stripes
    skewed = pixels.copy()
    skewed[3::4] *= 50.0
    np.savez(tmp_path / "skewed.npz", input=skewed)
    for attempt in range(2):
        result = cli("quantize", model, tmp_path / "bad.onnx", "--mode", "int8", "--calibration", tmp_path / "skewed.npz")
        assert result.code == 1 and "beyond tolerance" in result.err, result.out[-2000:] + result.err[-2000:]
    assert (tmp_path / "bad.onnx").is_file() and (tmp_path / "bad.parity-failed.onnx").is_file()


def test_bad_quantize_requests_write_nothing(cli, stripes, tmp_path):
    _, pixels, _, model = stripes
    np.savez(tmp_path / "wrong.npz", input=pixels[:, :, :16, :16])
    np.savez(tmp_path / "misnamed.npz", image=pixels)
    out = tmp_path / "out"
    out.mkdir()
    for args, says in (((out / "a.onnx", "--mode", "int8"), "--calibration"),
                       ((out / "a.onnx", "--mode", "int3"), "modes: int8"),
                       ((out / "a.tflite", "--mode", "fp16"), "NAME.onnx"),
                       ((out / "a.onnx", "--mode", "int8", "--calibration", tmp_path / "wrong.npz"), "shape"),
                       ((out / "a.onnx", "--mode", "int8", "--calibration", tmp_path / "misnamed.npz"), "missing")):
        refused = cli("quantize", model, *args)
        assert refused.code == 2 and says in refused.err, (args, refused.err)
    assert listing(out) == []


def test_a_quantized_model_serves_like_any_onnx(stripes, tmp_path):
    """tritonclient over HTTP and gRPC against `modelport serve` of the int8 model: ONNX Runtime's own
    answer for the same QDQ file, bit for bit."""
    from modelport.convert.quantize import quantize
    from tests.serve.conftest import ort_outputs, run_client, start_server
    images, pixels, _, model = stripes
    quantize(model, tmp_path / "int8.onnx", mode="int8", calibration=images, mean=[127.5], std=[127.5])
    server = start_server([tmp_path / "int8.onnx"], tmp_path / "server.log")
    try:
        feeds = {"input": pixels[:4]}
        np.savez(tmp_path / "in.npz", **feeds)
        result = run_client("infer", server.http, server.grpc, "int8", tmp_path / "in.npz", tmp_path / "out.npz")
        answers = np.load(tmp_path / "out.npz")
    finally:
        assert server.stop() == 0, server.log()
    expected = ort_outputs(tmp_path / "int8.onnx", feeds)["output"]
    for mode in ("http-binary", "grpc"):
        assert mode in result["modes"]
        np.testing.assert_array_equal(answers[f"{mode}/output"], expected)
