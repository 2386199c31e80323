"""modelport edge web: an ONNX Runtime Web bundle (model.onnx, ORT Web's WebAssembly files, a page),
its model checked in ORT Web's own wasm build in Node; and the page itself in headless Chromium,
served from 127.0.0.1 as examples/ort-web/serve.py serves it, classifying an image as ONNX Runtime
(Python) does on the same pixels."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelport.edge.bundle import sha256_of
from tests.conftest import listing
from tests.edge.conftest import NORMALIZE

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LABELS = ["horizontal", "vertical", "diagonal"]


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path


@pytest.mark.parametrize("mode, judged", [("fp32", "fp32"), ("fp16", "fp16"), ("uint8", "agreement")])
def test_each_weight_mode_is_checked_in_ort_web(cli, tmp_path, stripes_cnn, labels, mode, judged):
    out = tmp_path / "bundle"
    result = cli("edge", "web", stripes_cnn / "cnn.pt2", out, "--quantize", mode, "--inputs", stripes_cnn / "images",
                 *NORMALIZE, "--labels", labels, "--json")
    assert result.code == 0, result.err
    (entry,) = result.json()["models"]
    assert entry["passed"] and entry["mode"] == mode
    (output,) = entry["report"]["outputs"]
    assert output["top1_agreement"] >= 0.98
    if judged == "agreement":
        assert "ai.onnx:ConvInteger" in entry["ops"] and entry["rule"].startswith("cosine")
    else:
        assert entry["report"]["precision"] == judged
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "ort-web" and manifest["onnxruntime_web"] == "1.30.0"
    assert manifest["models"][0]["inputs"][0]["layout"] == "NCHW"
    assert manifest["models"][0]["inputs"][0]["normalization"]["mean"] == [127.5]
    assert manifest["models"][0]["outputs"][0]["labels"] == "labels.txt"
    for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.wasm", "index.html", "app.js", "labels.txt"):
        assert manifest["files"][name] == sha256_of(out / name)
    assert (out / "ort-wasm-simd-threaded.wasm").read_bytes()[:4] == b"\0asm"


def test_the_bundle_is_a_model_modelport_opens_and_a_defect_fails(cli, tmp_path, stripes_cnn):
    out = tmp_path / "bundle"
    made = cli("edge", "web", stripes_cnn / "cnn.pt2", out, "--mlflow", tmp_path / "registry", "--json")
    assert made.code == 0, made.err
    # Also an MLflow model of the bundle's model.onnx, which mlflow.pyfunc runs as ONNX Runtime does.
    assert made.json()["mlflow"] == str(tmp_path / "registry")
    import mlflow.pyfunc
    import onnxruntime as ort
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    feed = np.random.default_rng(0).uniform(-1, 1, [d if isinstance(d, int) else 2 for d in spec.shape])
    feed = feed.astype(np.float32)
    predicted = next(iter(mlflow.pyfunc.load_model(str(tmp_path / "registry")).predict({spec.name: feed}).values()))
    np.testing.assert_allclose(predicted, session.run(None, {spec.name: feed})[0], rtol=1e-5, atol=1e-6)
    info = cli("info", out, "--json")
    assert info.code == 0 and info.json()["format"] == "ort-web"
    assert cli("validate", stripes_cnn / "cnn.pt2", out).code == 0
    defect = cli("validate", stripes_cnn / "defect.pt2", out)
    assert defect.code == 1 and "FAIL" in defect.out


@pytest.mark.slow
def test_a_keras_classifier_reaches_ort_web_through_onnx(cli, tmp_path, keras_cnn):
    source, calibration = keras_cnn
    result = cli("edge", "web", source, tmp_path / "bundle", "--quantize", "fp16", "--inputs", calibration, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["keras->onnx"] and data["passed"]
    assert data["models"][0]["inputs"][0]["layout"] == "NHWC"  # Keras's channels-last image, as the page feeds it


def test_bad_options_are_exit_2_and_write_nothing(cli, tmp_path, stripes_cnn):
    before = listing(tmp_path)
    refused = cli("edge", "web", stripes_cnn / "cnn.pt2", tmp_path / "bundle", "--quantize", "int4")
    assert refused.code == 2 and "fp32, fp16 or uint8" in refused.err
    refused = cli("edge", "web", stripes_cnn / "cnn.pt2", tmp_path / "bundle", "--mean", "127.5")
    assert refused.code == 2 and "--mean and --std go together" in refused.err
    assert listing(tmp_path) == before


def _serve_module():
    """examples/ort-web/serve.py under a name of its own (examples/tfjs-web has a serve.py too)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ort_web_serve", REPO / "examples" / "ort-web" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _open(browser, url):
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-state]", timeout=120_000)
    return page.evaluate("window.modelportResult"), page


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian chromium is not installed (apt-get install chromium)")
def test_the_page_classifies_in_headless_chromium_and_names_a_misserved_wasm(cli, tmp_path, stripes_cnn, labels):
    """The page reads the manifest, normalizes the pixels itself, runs ORT Web's wasm in Chromium
    (threaded when the server isolates the page), and shows the labels' top class with the scores
    ONNX Runtime computes for the same pixels. A server that answers the .wasm with its index page
    (a single-page-app fallback) gets a message naming the file and the fix, not ORT's magic word."""
    import onnxruntime as ort
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from modelport.demo_classifier import stripes
    assert CHROMIUM, "CI must have chromium: .ci/run installs it"
    out = tmp_path / "bundle"
    assert cli("edge", "web", stripes_cnn / "cnn.pt2", out, "--labels", labels, *NORMALIZE).code == 0
    reference = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    serve = _serve_module()
    rng = np.random.default_rng(11)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for kind in range(3):
                pixels = stripes(kind, rng)  # 32x32 as the input: no resizing in the page
                Image.fromarray(pixels).save(tmp_path / "picture.png")
                server, url = serve.serve_in_background(out, image=tmp_path / "picture.png")
                try:
                    shown, page = _open(browser, url + "?image=image.png")
                    table = page.inner_text("#result tbody")
                finally:
                    server.shutdown()
                assert "error" not in shown, shown
                assert shown["isolated"] and shown["threads"] >= 1
                feed = ((pixels.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
                expected = reference.run(None, {"input": feed})[0][0]
                np.testing.assert_allclose(shown["scores"], expected, atol=1e-4 * np.abs(expected).max())
                assert shown["top"][0]["label"] == LABELS[kind] == LABELS[int(np.argmax(expected))]
                assert table.split("\n")[0].startswith(LABELS[kind])
            # Without COOP/COEP the page says it runs one thread, and still classifies.
            server, url = serve.serve_in_background(out, image=tmp_path / "picture.png", isolation=False)
            try:
                shown, page = _open(browser, url + "?image=image.png")
                assert shown["threads"] == 1 and not shown["isolated"] and "top" in shown
                assert "Cross-Origin-Embedder-Policy" in page.inner_text("#threads")
            finally:
                server.shutdown()
            # A server whose fallback answers the .wasm with the page.
            table = serve.routes(out) | {"/ort-wasm-simd-threaded.wasm": out / "index.html"}
            server, url = serve.serve_in_background(out, table=table)
            try:
                shown, _ = _open(browser, url)
            finally:
                server.shutdown()
            assert "ort-wasm-simd-threaded.wasm did not come back as WebAssembly" in shown["error"]
            assert "application/wasm" in shown["error"]
        finally:
            browser.close()
