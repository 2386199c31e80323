"""modelport edge tflite: a bundle of one TFLite file per quantization mode, each checked in LiteRT
against the source, with a manifest whose hashes are right and golden data an app can replay."""
from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.edge.bundle import sha256_of


@pytest.fixture(scope="module")
def keras_cnn(tmp_path_factory):
    """A Keras CNN with BatchNorm statistics calibrated on its data (random logits would tie), and
    that data as the calibration file."""
    from tests import zoo_keras
    folder = tmp_path_factory.mktemp("edge_keras")
    model = zoo_keras.cnn_batchnorm()
    data = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 3)).astype(np.float32)
    zoo_keras.calibrate_batchnorm(model, data)
    model.save(folder / "cnn.keras")
    np.savez(folder / "calib.npz", image=data)
    return folder / "cnn.keras", folder / "calib.npz"


def _litert(path):
    from modelport.formats.tflite import TFLiteSession
    return TFLiteSession(path)


@pytest.mark.slow
def test_keras_cnn_bundle_every_mode_checked_in_litert(cli, tmp_path, keras_cnn):
    source, calibration = keras_cnn
    out = tmp_path / "bundle"
    result = cli("edge", "tflite", source, out, "--quantize", "fp32,fp16,dynamic,int8,int16x8",
                 "--calibration", calibration, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] and [m["mode"] for m in data["models"]] == ["fp32", "fp16", "dynamic", "int8", "int16x8"]
    fp32 = data["models"][0]["report"]["outputs"][0]
    assert fp32["max_abs"] < 1e-4 and fp32["passed"]
    int8 = data["models"][3]
    assert int8["report"]["outputs"][0]["cosine"] >= 0.99 and int8["report"]["outputs"][0]["top1_agreement"] >= 0.98
    assert _litert(out / "model_int8.tflite").precision == "int8"
    assert _litert(out / "model_fp16.tflite").precision == "fp16"
    # The manifest lists every file with its right hash.
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["models"]:
        assert entry["sha256"] == sha256_of(out / entry["file"]) and entry["passed"] is True
        assert entry["bytes"] == (out / entry["file"]).stat().st_size and entry["ops"]
    for name, digest in manifest["files"].items():
        assert digest == sha256_of(out / name)
    assert {"inputs.npy", "expected.npy", "reports/model_int8.json"} <= set(manifest["files"])
    # The golden data replays on the fp32 file, as an app's on-device test would.
    golden, expected = np.load(out / "inputs.npy"), np.load(out / "expected.npy")
    got = _litert(out / "model_fp32.tflite").run({"image": golden})
    np.testing.assert_allclose(next(iter(got.values())), expected, atol=1e-4, rtol=1e-4)


def test_int8_without_calibration_is_exit_2_and_writes_nothing(cli, tmp_path, keras_cnn):
    source, _ = keras_cnn
    result = cli("edge", "tflite", source, tmp_path / "bundle", "--quantize", "fp32,int8")
    assert result.code == 2 and "needs calibration data" in result.err and "--calibration" in result.err
    assert not (tmp_path / "bundle").exists()


def test_unknown_mode_and_wrong_calibration_names_are_exit_2(cli, tmp_path, keras_cnn):
    source, _ = keras_cnn
    unknown = cli("edge", "tflite", source, tmp_path / "bundle", "--quantize", "fp32,int3")
    assert unknown.code == 2 and "int3" in unknown.err and "int16x8" in unknown.err
    np.savez(tmp_path / "wrong.npz", pixels=np.zeros((4, 16, 16, 3), np.float32))
    wrong = cli("edge", "tflite", source, tmp_path / "bundle", "--quantize", "int8", "--calibration", tmp_path / "wrong.npz")
    assert wrong.code == 2 and "'pixels'" in wrong.err and "image" in wrong.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong.npz"]


def test_a_failed_check_keeps_the_bundle_marked_and_exits_1(cli, tmp_path, keras_cnn, monkeypatch):
    """The agreement rule made unreachable for this test: the int8 file fails, the bundle is still
    complete, and its manifest and the exit code say which file failed."""
    from modelport.edge import tflite
    monkeypatch.setattr(tflite, "MIN_TOP1", 1.01)
    source, calibration = keras_cnn
    result = cli("edge", "tflite", source, tmp_path / "bundle", "--quantize", "fp32,int8", "--calibration", calibration)
    assert result.code == 1, result.err
    assert "model_int8.tflite failed" in result.err
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert [(m["file"], m["passed"]) for m in manifest["models"]] == [("model_fp32.tflite", True),
                                                                         ("model_int8.tflite", False)]


@pytest.mark.slow
def test_pytorch_source_is_planned_through_onnx_and_savedmodel(cli, tmp_path):
    out = tmp_path / "bundle"
    result = cli("edge", "tflite", "tests.zoo_torch:small_cnn", out, "--input-shape", "image:1,3,32,32",
                 "--quantize", "fp32,fp16", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["pytorch->onnx", "onnx->savedmodel"]
    assert all(h["parity"]["passed"] for h in data["conversion"])
    assert data["passed"] and sorted(p.name for p in out.glob("*.tflite")) == ["model_fp16.tflite", "model_fp32.tflite"]
