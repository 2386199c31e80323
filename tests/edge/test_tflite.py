"""modelport edge tflite: a bundle of one TFLite file per quantization mode, each checked in LiteRT
against the source, with a manifest whose hashes are right and golden data an app can replay."""
from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.edge.bundle import sha256_of


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
    from modelport.edge import source as edge_source
    monkeypatch.setattr(edge_source, "MIN_TOP1", 1.01)
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


LABELS = ["cat", "dog", "bird", "fish", "frog", "horse", "ship", "truck", "car", "plane"]


def _mediapipe(model, image, tmp_path) -> dict:
    """MediaPipe's own reader and ImageClassifier on ``model`` (in a subprocess, MediaPipe on its path)."""
    import os
    import subprocess
    import sys
    from tests.conftest import REPO
    peers = REPO / ".venv" / "peers" / "mediapipe"
    assert peers.is_dir(), "MediaPipe is installed apart by `make install` into .venv/peers/mediapipe"
    np.save(tmp_path / "image.npy", image)
    run = subprocess.run([sys.executable, str(REPO / "tests" / "edge" / "mediapipe_probe.py"), str(model),
                          str(tmp_path / "image.npy")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": f"{peers}{os.pathsep}{REPO}"})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_metadata_is_read_and_used_by_mediapipe(cli, tmp_path):
    """A PyTorch CNN (NCHW) bundled with labels and normalization: MediaPipe's ImageClassifier takes
    an RGB uint8 image, normalizes it as the metadata says, and names the classes from the packed
    labels; its scores are LiteRT's on the same normalized image."""
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "bundle"
    result = cli("edge", "tflite", "tests.zoo_torch:small_cnn", out, "--input-shape", "image:1,3,32,32",
                 "--quantize", "fp32,fp16", "--labels", tmp_path / "labels.txt", "--mean", "127.5", "--std", "127.5",
                 "--json")
    assert result.code == 0, result.err
    entry = result.json()["models"][0]
    assert entry["inputs"][0]["layout"] == "NHWC" and entry["inputs"][0]["shape"][1:] == [32, 32, 3]
    assert entry["inputs"][0]["normalization"]["mean"] == [127.5] and entry["outputs"][0]["labels"] == "labels.txt"
    assert (out / "labels.txt").read_text().split() == LABELS
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for name in ("model_fp32.tflite", "model_fp16.tflite"):
        probe = _mediapipe(out / name, image, tmp_path)
        meta = probe["metadata"]
        assert meta["min_parser_version"] == "1.0.0" and meta["inputs"][0]["content"] == 2  # ImageProperties
        assert meta["inputs"][0]["normalization"] == {"type": 1, "mean": [127.5], "std": [127.5]}
        assert meta["outputs"][0]["files"] == [["labels.txt", 2]]  # TENSOR_AXIS_LABELS
        assert meta["packed"]["labels.txt"].split() == LABELS
        scores = next(iter(_litert(out / name).run({"image": ((image[None].astype(np.float32) - 127.5) / 127.5)}).values()))[0]
        best = np.argsort(-scores)[:3]
        assert [c["label"] for c in probe["classes"]] == [LABELS[i] for i in best]
        np.testing.assert_allclose([c["score"] for c in probe["classes"]], scores[best], rtol=1e-4, atol=1e-5)
    # modelport reads the same metadata back: the check feeds what normalized pixels can be.
    from modelport.formats import open_model
    with open_model(out / "model_fp32.tflite") as session:
        expected = session.inputs[0].value_range
    assert (expected.low, expected.high) == (-1.0, 1.0) and "metadata" in expected.why
    check = cli("validate", out / "model_fp32.tflite", out / "model_fp16.tflite", "--json")
    assert check.code == 0 and "uniform in [-1, 1]" in check.json()["feeds"][0]
    _served_alone_it_labels_and_takes_images(out / "model_fp32.tflite", image, tmp_path)


def _served_alone_it_labels_and_takes_images(model, image, tmp_path):
    """The .tflite served without its bundle: the labels packed in its metadata name the classes of
    the classification extension, and its normalization metadata lets it take a PNG as it is."""
    import io
    import shutil

    import requests
    from PIL import Image

    from tests.serve.conftest import start_server
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(model, alone / "classifier.tflite")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    png = buffer.getvalue()
    server = start_server([alone / "classifier.tflite"], tmp_path / "server.log")
    try:
        blob = len(png).to_bytes(4, "little") + png
        header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                         "parameters": {"binary_data_size": len(blob)}}],
                             "outputs": [{"name": next(iter(_litert(model).run(
                                 {"image": np.zeros((1, 32, 32, 3), np.float32)}))),
                                 "parameters": {"classification": 3}}]}).encode()
        answer = requests.post(f"{server.url}/v2/models/classifier/infer", data=header + blob, timeout=60,
                               headers={"Inference-Header-Content-Length": str(len(header))})
        assert answer.status_code == 200, answer.text
        top = answer.json()["outputs"][0]["data"]
    finally:
        assert server.stop() == 0, server.log()
    scores = next(iter(_litert(model).run({"image": (image[None].astype(np.float32) - 127.5) / 127.5}).values()))[0]
    assert [entry.split(":", 2)[2] for entry in top] == [LABELS[i] for i in np.argsort(-scores)[:3]]


def test_bad_labels_and_normalization_are_exit_2(cli, tmp_path, keras_cnn):
    source, _ = keras_cnn
    missing = cli("edge", "tflite", source, tmp_path / "b", "--labels", tmp_path / "nope.txt")
    assert missing.code == 2 and "cannot read the labels" in missing.err
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    wrong = cli("edge", "tflite", source, tmp_path / "b", "--labels", tmp_path / "three.txt")
    assert wrong.code == 2 and "3 labels" in wrong.err and "10" in wrong.err
    half = cli("edge", "tflite", source, tmp_path / "b", "--mean", "127.5")
    assert half.code == 2 and "--mean and --std go together" in half.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.txt"]  # no bundle, no staging left


def test_int8_io_gives_integer_tensors_with_their_quantization(cli, tmp_path, keras_cnn):
    source, calibration = keras_cnn
    result = cli("edge", "tflite", source, tmp_path / "bundle", "--quantize", "int8", "--calibration", calibration,
                 "--int8-io", "--json")
    assert result.code == 0, result.err
    entry = result.json()["models"][0]
    for tensor in entry["inputs"] + entry["outputs"]:
        assert tensor["quantization"]["dtype"] == "int8" and tensor["quantization"]["scale"] > 0
    from modelport.formats.tflite import TFLiteSession
    raw = TFLiteSession(tmp_path / "bundle" / "model_int8.tflite", raw_io=True)
    assert [s.dtype.name for s in raw.inputs + raw.outputs] == ["int8", "int8"]
    refused = cli("edge", "tflite", source, tmp_path / "other", "--quantize", "fp32", "--int8-io")
    assert refused.code == 2 and "--int8-io applies to the int8" in refused.err and not (tmp_path / "other").exists()


@pytest.mark.slow
def test_a_folder_of_images_calibrates_int8(cli, tmp_path):
    """PNG photos-to-be as calibration: resized, normalized by --mean/--std, laid out as the PyTorch
    source takes them; the int8 file is judged on them."""
    from PIL import Image
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for i in range(40):  # smooth random images of varied size: gradients plus a blob
        h, w = rng.integers(40, 80, 2)
        yy, xx = np.mgrid[0:h, 0:w]
        pixels = np.stack([(yy * rng.uniform(1, 4) + xx * rng.uniform(1, 4) + rng.uniform(0, 255)) % 256
                           for _ in range(3)], axis=-1)
        Image.fromarray(pixels.astype(np.uint8)).save(images / f"{i:02d}.png")
    (images / "notes.txt").write_text("not an image")
    result = cli("edge", "tflite", "tests.zoo_torch:small_cnn", tmp_path / "bundle", "--input-shape",
                 "image:1,3,32,32", "--quantize", "int8", "--calibration", images, "--mean", "127.5", "--std", "127.5",
                 "--json")
    assert result.code == 0, result.err
    report = result.json()["models"][0]["report"]
    assert report["batch_sizes"] == [40] and result.json()["passed"]
    golden = np.load(tmp_path / "bundle" / "inputs.npy")
    assert golden.shape == (1, 32, 32, 3) and -1.0 <= golden.min() and golden.max() <= 1.0
    no_images = tmp_path / "empty"
    no_images.mkdir()
    refused = cli("edge", "tflite", "tests.zoo_torch:small_cnn", tmp_path / "other", "--input-shape",
                  "image:1,3,32,32", "--quantize", "int8", "--calibration", no_images)
    assert refused.code == 2 and "no images" in refused.err and not (tmp_path / "other").exists()


@pytest.mark.slow
def test_trained_caffe_lenet_bundle_with_its_labels(cli, tmp_path):
    """Caffe's trained MNIST LeNet (tests/data/caffe/lenet): caffe -> onnx -> savedmodel, then fp32
    and int8 files calibrated and judged on drawn digits, its own labels packed, pixels 0..255
    normalized by the app as the metadata says ((x - 0) / 255)."""
    from PIL import Image, ImageDraw, ImageFont
    from tests.convert.caffe.helpers import CAFFE_DATA
    font = ImageFont.load_default(size=22)
    rng = np.random.default_rng(0)
    digits = []
    for i in range(40):
        image = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(image).text((7 + int(rng.integers(-2, 3)), 1 + int(rng.integers(-2, 3))), str(i % 10),
                                   fill=255, font=font)
        digits.append(np.asarray(image, np.float32)[None] / 255.0)
    np.savez(tmp_path / "digits.npz", data=np.stack(digits))
    lenet = CAFFE_DATA / "lenet"
    result = cli("edge", "tflite", lenet / "deploy.prototxt", tmp_path / "bundle", "--weights", lenet / "weights.caffemodel",
                 "--quantize", "fp32,int8", "--calibration", tmp_path / "digits.npz", "--labels", lenet / "labels.txt",
                 "--mean", "0", "--std", "255", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["caffe->onnx", "onnx->savedmodel"] and data["passed"]
    for entry in data["models"]:
        assert entry["inputs"][0]["shape"][1:] == [28, 28, 1] and entry["outputs"][0]["labels"] == "labels.txt"
        assert entry["report"]["outputs"][0]["top1_agreement"] == 1.0
    assert (tmp_path / "bundle" / "labels.txt").read_text() == (lenet / "labels.txt").read_text().rstrip("\n") + "\n"


def test_flex_ops_are_refused_unless_allowed_and_then_marked_not_validated(cli, tmp_path):
    """An op without a TFLite builtin (MatrixInverse): refused with the way out by default; with
    --allow-flex the file is written as a Flex model, which LiteRT in Python cannot run, so its
    manifest entry says NOT validated instead of claiming a check."""
    import tensorflow as tf

    class Inverse(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32, name="m")])
        def __call__(self, m):
            return {"inverse": tf.linalg.inv(m) * 2.0}
    module = Inverse()
    tf.saved_model.save(module, str(tmp_path / "inverse"), signatures={"serving_default": module.__call__})
    refused = cli("edge", "tflite", tmp_path / "inverse", tmp_path / "bundle")
    assert refused.code == 2 and "MatrixInverse" in refused.err and "--allow-flex" in refused.err
    assert not (tmp_path / "bundle").exists()
    result = cli("edge", "tflite", tmp_path / "inverse", tmp_path / "bundle", "--allow-flex", "--json")
    assert result.code == 0, result.err
    (entry,) = result.json()["models"]
    assert entry["passed"] is None and entry["rule"].startswith("NOT validated: FlexMatrixInverse")
    assert "FlexMatrixInverse" in entry["ops"] and entry["latency_ms"] is None
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["models"][0]["passed"] is None and manifest["models"][0]["sha256"] == sha256_of(
        tmp_path / "bundle" / "model_fp32.tflite")
    assert (tmp_path / "bundle" / "inputs.npy").is_file()  # goldens for the on-device check
    shown = cli("edge", "tflite", tmp_path / "inverse", tmp_path / "bundle2", "--allow-flex")
    assert shown.code == 0 and "NOT validated" in shown.out
