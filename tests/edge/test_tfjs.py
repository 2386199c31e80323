"""modelport edge tfjs: a TF.js graph model written by modelport, run in real TF.js (Node, the
WebAssembly backend) against the source, and in headless Chromium by the example page."""
from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from modelport.edge.bundle import sha256_of

REPO = Path(__file__).resolve().parents[2]
LABELS = ["horizontal", "vertical", "checker"]


def _stripes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels 0..255 of three pattern classes (horizontal, vertical stripes, checkerboard) with
    random period, phase, colour and noise: a task a small CNN learns in seconds."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    images = np.empty((count, 32, 32, 3), np.float32)
    for i, label in enumerate(labels):
        period, phase = rng.integers(3, 8), rng.integers(0, 8)
        wave_r, wave_c = ((rows + phase) // period) % 2, ((cols + phase) // period) % 2
        pattern = (wave_r, wave_c, wave_r ^ wave_c)[label]
        colour = rng.uniform(120, 255, 3)
        images[i] = pattern[..., None] * colour + rng.normal(0, 12, (32, 32, 3))
    return np.clip(np.rint(images), 0, 255).astype(np.float32), labels


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory):
    """A Keras CNN trained briefly on the stripe patterns; it takes (pixels - 127.5) / 127.5."""
    import keras
    folder = tmp_path_factory.mktemp("tfjs_keras")
    keras.utils.set_random_seed(0)
    images, labels = _stripes(900, seed=0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(24, 3, strides=2)(x)
    x = keras.layers.LeakyReLU(0.1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit((images - 127.5) / 127.5, labels, epochs=6, batch_size=32, verbose=0)
    test_images, test_labels = _stripes(64, seed=1)
    accuracy = float(np.mean(np.argmax(model.predict((test_images - 127.5) / 127.5, verbose=0), -1) == test_labels))
    assert accuracy > 0.9, accuracy  # trained: its classes are decided, not tied
    model.save(folder / "stripes.keras")
    np.savez(folder / "check.npz", image=(test_images - 127.5) / 127.5)
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return folder


def _weights_bytes(bundle: Path) -> int:
    return sum(p.stat().st_size for p in bundle.glob("group1-shard*.bin"))


@pytest.mark.slow
def test_keras_bundle_in_every_weight_encoding_runs_in_tfjs(cli, tmp_path, trained_classifier):
    source, check = trained_classifier / "stripes.keras", trained_classifier / "check.npz"
    sizes = {}
    for mode in ("float32", "float16", "uint16", "uint8"):
        out = tmp_path / mode
        result = cli("edge", "tfjs", source, out, "--quantize", mode, "--inputs", check, "--json")
        assert result.code == 0, result.err
        data = result.json()
        (entry,) = data["models"]
        assert data["passed"] and entry["mode"] == mode and entry["report"]["batch_sizes"] == [64]
        model = json.loads((out / "model.json").read_text())
        assert model["format"] == "graph-model" and model["signature"]["inputs"]["image"]["name"] == "image:0"
        weights = model["weightsManifest"][0]["weights"]
        stored = {w.get("quantization", {}).get("dtype", w["dtype"]) for w in weights if len(w["shape"]) == 4}
        assert stored == {mode}
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["target"] == "tfjs" and manifest["tfjs"] == "4.22.0" and manifest["backend"] == "wasm"
        assert manifest["models"][0]["sha256"] == sha256_of(out / "model.json")
        assert manifest["files"]["group1-shard1of1.bin"] == sha256_of(out / "group1-shard1of1.bin")
        assert manifest["rewrites"]["fuse"] >= 4  # convolutions, the depthwise one and the Dense layer
        assert {"_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"} <= set(entry["ops"])
        sizes[mode] = _weights_bytes(out)
    # Float weights dominate this model: float16 and uint16 halve them, uint8 quarters them.
    assert sizes["float16"] < 0.6 * sizes["float32"] and sizes["uint16"] < 0.6 * sizes["float32"]
    assert sizes["uint8"] < 0.35 * sizes["float32"]
    # The goldens replay in TF.js as an app's own test would.
    from modelport.formats import open_model
    with open_model(tmp_path / "uint8") as session:
        assert session.format_name == "tfjs"
        got = session.run({"image": np.load(tmp_path / "uint8" / "inputs.npy")})["probs"]
    np.testing.assert_allclose(got, np.load(tmp_path / "uint8" / "expected.npy"), atol=0.05)


@pytest.mark.slow
def test_pytorch_source_through_onnx_with_its_clips_and_activations_fused(cli, tmp_path):
    """ONNX spells Clip and biases as broadcasts of rank-4 constants; the TF.js rewrites make them
    ReLU6 / ClipByValue and fused convolutions, and the numbers stay those of PyTorch."""
    out = tmp_path / "bundle"
    result = cli("edge", "tfjs", "tests.zoo_torch:activations_cnn", out, "--input-shape", "image:1,3,32,32", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["pytorch->onnx", "onnx->savedmodel"] and data["passed"]
    ops = set(data["models"][0]["ops"])
    assert {"_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul", "ClipByValue"} <= ops
    assert not ops & {"Maximum", "Minimum"}
    topology = json.loads((out / "model.json").read_text())["modelTopology"]["node"]
    fused = {tuple(base64.b64decode(s).decode() for s in n["attr"]["fused_ops"]["list"]["s"])
             for n in topology if "fused_ops" in n["attr"]}
    assert ("BiasAdd", "LeakyRelu") in fused and ("BiasAdd", "Relu6") in fused and ("BiasAdd", "Elu") in fused
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"][0]["inputs"][0]["layout"] == "NHWC"  # a browser's pixels: channels-last
    # modelport validate takes the TF.js bundle like any model, against the PyTorch source.
    check = cli("validate", "tests.zoo_torch:activations_cnn", out, "--input-shape", "image:1,3,32,32")
    assert check.code == 0, check.err


def test_an_op_tfjs_lacks_is_refused_by_name_and_nothing_is_written(cli, tmp_path):
    import tensorflow as tf

    class Inverse(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32, name="m")])
        def __call__(self, m):
            return {"inverse": tf.linalg.inv(m)}
    module = Inverse()
    tf.saved_model.save(module, str(tmp_path / "inverse"), signatures={"serving_default": module.__call__})
    result = cli("edge", "tfjs", tmp_path / "inverse", tmp_path / "bundle")
    assert result.code == 2, result.err
    assert "MatrixInverse" in result.err and "TF.js 4.22.0" in result.err and "edge tflite" in result.err
    assert not (tmp_path / "bundle").exists()


def test_bad_options_are_refused_before_any_work(cli, tmp_path, trained_classifier, monkeypatch):
    source = trained_classifier / "stripes.keras"
    wrong = cli("edge", "tfjs", source, tmp_path / "b", "--quantize", "int8")
    assert wrong.code == 2 and "float16" in wrong.err and not (tmp_path / "b").exists()
    several = cli("edge", "tfjs", source, tmp_path / "b", "--quantize", "float16,uint8")
    assert several.code == 2 and "one mode per bundle" in several.err
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    mismatch = cli("edge", "tfjs", source, tmp_path / "b", "--labels", labels)
    assert mismatch.code == 2 and "2 labels" in mismatch.err and not (tmp_path / "b").exists()
    from modelport.formats import tfjs
    monkeypatch.setattr(tfjs, "RUNNER_DIR", tmp_path / "no-runner")
    missing = cli("edge", "tfjs", source, tmp_path / "b")
    assert missing.code == 2 and "npm ci --prefix" in missing.err and not (tmp_path / "b").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian chromium is not installed (apt-get install chromium)")
def test_example_page_classifies_in_headless_chromium(cli, tmp_path, trained_classifier):
    """examples/tfjs-web served from 127.0.0.1: the page reads the bundle's manifest, normalizes the
    pixels itself, runs the model in TF.js (wasm) in Chromium, and shows the labels' top class with
    the scores Keras computes for the same pixels."""
    import keras
    from PIL import Image
    from playwright.sync_api import sync_playwright
    assert CHROMIUM, "CI must have chromium: .ci/run installs it"
    bundle = tmp_path / "bundle"
    result = cli("edge", "tfjs", trained_classifier / "stripes.keras", bundle, "--quantize", "float16",
                 "--labels", trained_classifier / "labels.txt", "--mean", "127.5", "--std", "127.5")
    assert result.code == 0, result.err
    images, classes = _stripes(3, seed=7)
    model = keras.models.load_model(trained_classifier / "stripes.keras")
    sys.path.insert(0, str(REPO / "examples" / "tfjs-web"))
    try:
        from serve import serve_in_background
    finally:
        sys.path.pop(0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for pixels, label in zip(images, classes):
                Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "picture.png")  # 32x32: no resizing
                server, url = serve_in_background(bundle, image=tmp_path / "picture.png")
                try:
                    page = browser.new_page()
                    page.goto(url + "?image=image.png")
                    page.wait_for_selector("body[data-state]", timeout=120_000)
                    shown = page.evaluate("window.modelportResult")
                    table = page.inner_text("#result tbody")
                finally:
                    server.shutdown()
                assert "error" not in shown, shown
                expected = model.predict((pixels[None] - 127.5) / 127.5, verbose=0)[0]
                assert shown["backend"] == "wasm" and shown["top"][0]["label"] == LABELS[int(np.argmax(expected))]
                assert shown["top"][0]["label"] == LABELS[label]  # and the model is right about the picture
                np.testing.assert_allclose(shown["scores"], expected, atol=2e-3)  # float16 weights
                assert table.split("\n")[0].startswith(LABELS[label])
        finally:
            browser.close()


def test_the_op_list_is_the_one_of_the_pinned_tfjs():
    """edge/tfjs_ops.json (read at export time, without Node) is what the installed TF.js implements."""
    import subprocess
    from modelport.formats.tfjs import runner_command
    listed = json.loads(subprocess.run(runner_command("--list-ops"), capture_output=True, check=True).stdout)
    recorded = json.loads((REPO / "modelport" / "edge" / "tfjs_ops.json").read_text())
    assert listed == recorded, "regenerate: node modelport/edge/tfjs_runner/run.mjs --list-ops > modelport/edge/tfjs_ops.json"
    assert {"Conv2D", "_FusedConv2D", "FusedDepthwiseConv2dNative"} <= set(recorded["ops"])


def test_a_run_that_fails_in_tfjs_names_its_first_failing_node(tmp_path):
    """Errors from inside TF.js kernels (WebAssembly's "Aborted()") name no op: the runner then runs
    the graph node by node and names the first that fails."""
    import tensorflow as tf
    from modelport.edge.graph_model import freeze, write_graph_model
    from modelport.errors import InvalidModelError
    from modelport.formats.tfjs import TfjsSession

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def broken(x):  # fine at trace time; 6 values per row cannot make rows of 4 when it runs
        return {"y": tf.reshape(tf.nn.relu(x) + 1.0, [-1, 4]) * 2.0}
    graph_def, signature = freeze(broken.get_concrete_function())
    write_graph_model(graph_def, signature, tmp_path)
    with TfjsSession(tmp_path) as session:
        with pytest.raises(InvalidModelError, match=r'first failing node "[^"]*Reshape[^"]*", op Reshape'):
            session.run({"x": np.ones((1, 6), np.float32)})
