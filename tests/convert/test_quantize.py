"""modelport quantize: ONNX Runtime's int8 (static QDQ, dynamic), fp16 and int4 weights, each checked
on held-out calibration data by its precision's rule; the result's accuracy measured by ONNX Runtime
directly against the labels; a calibration that does not cover the held-out data fails the check; an
outlier channel that int8 cannot hold is found and kept in float by --auto-exclude."""
from __future__ import annotations

import json

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
    io16 = cli("quantize", model, tmp_path / "half_io.onnx", "--mode", "fp16", "--no-keep-io-types", "--json",
               "--mlflow", tmp_path / "half_io_mlflow")
    assert io16.code == 0, io16.err[-2000:]
    types = {v.type.tensor_type.elem_type for v in onnx.load(str(tmp_path / "half_io.onnx")).graph.input}
    assert types == {onnx.TensorProto.FLOAT16}
    # The MLflow model around it says so in its signature (float16 in).
    import yaml
    signature = yaml.safe_load((tmp_path / "half_io_mlflow" / "MLmodel").read_text())["signature"]
    assert [entry["tensor-spec"]["dtype"] for entry in json.loads(signature["inputs"])] == ["float16"]
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


@pytest.fixture(scope="module")
def outlier(tmp_path_factory, stripes):
    """The stripes CNN with one channel of its first block scaled up 300x and the next convolution's
    weights for it scaled down as much: the same function in float (ReLU and max-pooling commute with a
    positive scale), but one activation channel 300x wider than the others, which an int8 tensor with
    one scale cannot hold (a real model's outlier channel)."""
    import modelport
    root = tmp_path_factory.mktemp("outlier")
    model = demo_classifier.trained_cnn()
    with torch.no_grad():
        model[1].weight[2] *= 300.0
        model[1].bias[2] *= 300.0
        model[4].weight[:, 2] /= 300.0
    demo_classifier.save_program(model, root / "outlier.pt2")
    modelport.convert(root / "outlier.pt2", root / "outlier.onnx")
    return root / "outlier.onnx"


def test_an_outlier_channel_is_found_and_auto_exclude_keeps_it_in_float(cli, stripes, outlier, tmp_path):
    images, pixels, labels, _ = stripes
    args = ("--mode", "int8", "--calibration", images, "--mean", "127.5", "--std", "127.5")
    failed = cli("quantize", outlier, tmp_path / "plain.onnx", *args)
    assert failed.code == 1, failed.out[-2000:] + failed.err[-2000:]
    assert "the error enters most at: node_Conv" in failed.err and "--auto-exclude" in failed.err
    fixed = cli("quantize", outlier, tmp_path / "fixed.onnx", *args, "--auto-exclude", "--json")
    assert fixed.code == 0, fixed.out[-3000:] + fixed.err[-3000:]
    attempts = fixed.json()["attempts"]
    assert not attempts[0]["passed"] and attempts[0]["excluded"] == [] and attempts[-1]["passed"]
    kept = attempts[-1]["excluded"]
    assert kept and all(name.startswith("node_Conv") for name in kept)
    assert attempts[-1]["worst"] < 0.1 < attempts[0]["worst"]
    graph = onnx.load(str(tmp_path / "fixed.onnx")).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) >= 1  # the rest is still int8
    assert _accuracy(tmp_path / "fixed.onnx", pixels, labels) >= _accuracy(outlier, pixels, labels) - 0.05
    shown = cli("quantize", outlier, tmp_path / "shown.onnx", *args, "--auto-exclude")
    assert shown.code == 0 and "--auto-exclude" in shown.out and "kept in float" in shown.out, shown.out[-2000:]
    refused = cli("quantize", outlier, tmp_path / "half.onnx", "--mode", "fp16", "--auto-exclude")
    assert refused.code == 2 and "--mode int8" in refused.err and not (tmp_path / "half.onnx").exists()


def _regression_mlp(path):
    """Three Linear layers over (batch, 8 tokens, 64 features), trained to follow a fixed random
    teacher: every MatMul matters to the output (a classifier's saturated logits would hide a layer)."""
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 16))
    student = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 128),
                                  torch.nn.GELU(), torch.nn.Linear(128, 16))
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    for _ in range(300):
        x = torch.randn(32, 8, 64)
        with torch.no_grad():
            target = teacher(x) * 3
        loss = ((student(x) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    program = torch.export.export(student.eval(), (torch.zeros(2, 8, 64),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, path)
    return path


def test_int4_weights_quantize_the_matmuls_and_a_swapped_nibble_fails(cli, stripes, tmp_path):
    from onnx import numpy_helper
    mlp = _regression_mlp(tmp_path / "mlp.pt2")
    result = cli("quantize", mlp, tmp_path / "int4.onnx", "--mode", "int4-weights", "--json")
    assert result.code == 0, result.out[-3000:] + result.err[-3000:]
    answer = result.json()
    assert answer["precision"] == "int4-weights" and answer["passed"]
    assert answer["sizes"]["quantized"] < answer["sizes"]["source"] / 3
    model = onnx.load(str(tmp_path / "int4.onnx"))
    assert sum(n.op_type == "MatMulNBits" for n in model.graph.node) == 3
    # The defect: the two 4-bit weights of each byte swapped in one layer (a packing-order bug).
    node = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    weight = next(i for i in model.graph.initializer if i.name == node.input[1])
    packed = numpy_helper.to_array(weight)
    weight.CopyFrom(numpy_helper.from_array(((packed & 0x0F) << 4) | (packed >> 4), weight.name))
    onnx.save(model, str(tmp_path / "swapped.onnx"))
    source = tmp_path / "mlp.onnx"
    assert cli("convert", mlp, source).code == 0
    assert cli("validate", source, tmp_path / "int4.onnx").code == 0
    broken = cli("validate", source, tmp_path / "swapped.onnx")
    assert broken.code == 1 and "beyond tolerance" in broken.out + broken.err, broken.out[-2000:]
    _, _, _, cnn = stripes
    out = tmp_path / "out"
    out.mkdir()
    refused = cli("quantize", cnn, out / "cnn_int4.onnx", "--mode", "int4-weights")
    assert refused.code == 2 and "no MatMul" in refused.err and listing(out) == []
