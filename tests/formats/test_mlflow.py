"""MLflow model folders in and out: folders written by MLflow itself (pytorch pt2, a state_dict with
--factory, keras, onnx flavors) are sources every command takes; `--mlflow DIR` writes an MLflow
model that mlflow.pyfunc loads and predicts with; `serve` answers for MLflow folders; pipelines
take MLflow sources and `mlflow: true` targets; folders that cannot be opened safely exit 2."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
torch = pytest.importorskip("torch")

from tests import zoo_torch  # noqa: E402
from tests.conftest import listing  # noqa: E402

IMAGES = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)


def _torch_outputs(images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return zoo_torch.small_cnn()(torch.from_numpy(images)).numpy()


@pytest.fixture(scope="module")
def mlflow_models(tmp_path_factory):
    """MLflow model folders as mlflow's own save_model writes them."""
    import mlflow.pytorch
    from mlflow.models import infer_signature
    root = tmp_path_factory.mktemp("mlflow")
    model = zoo_torch.small_cnn()
    signature = infer_signature(IMAGES, _torch_outputs(IMAGES))
    mlflow.pytorch.save_model(model, str(root / "pt2"), signature=signature, input_example=IMAGES,
                              pip_requirements=["torch"])  # pt2: 3.x's default
    # (torch.export traces at the example's batch: this program takes batches of 4, whatever the signature says)
    mlflow.pytorch.save_model(model, str(root / "pickled"), signature=signature, serialization_format="pickle",
                              pip_requirements=["torch"])
    shutil.copytree(root / "pickled", root / "state_dict")
    torch.save(model.state_dict(), root / "state_dict" / "data" / "model.pth")
    return root


def test_mlflow_pytorch_folders_are_sources(cli, tmp_path, mlflow_models):
    info = cli("info", mlflow_models / "pt2", "--json")
    assert info.code == 0, info.err
    described = info.json()
    assert "MLflow model (pytorch flavor" in json.dumps(described)
    converted = cli("convert", mlflow_models / "pt2", tmp_path / "pt2.onnx", "--json")
    assert converted.code == 0, converted.err
    assert converted.json()["source_format"] == "pytorch" and converted.json()["passed"]
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / "pt2.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: IMAGES})[0], _torch_outputs(IMAGES),
                               rtol=1e-4, atol=1e-5)
    # data/model.pth holding a state_dict: the weights of what --factory builds; the signature gives the shape.
    bare = cli("convert", mlflow_models / "state_dict", tmp_path / "sd.onnx")
    assert bare.code == 2 and "--factory" in bare.err and not (tmp_path / "sd.onnx").exists()
    built = cli("convert", mlflow_models / "state_dict", tmp_path / "sd.onnx", "--factory", "tests.zoo_torch:small_cnn")
    assert built.code == 0, built.err
    session = ort.InferenceSession(str(tmp_path / "sd.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: IMAGES})[0], _torch_outputs(IMAGES),
                               rtol=1e-4, atol=1e-5)
    # A pickled module runs code when loaded: refused by default, as a bare .pth is.
    pickled = cli("convert", mlflow_models / "pickled", tmp_path / "p.onnx")
    assert pickled.code == 2 and "--trust-pickle" in pickled.err and not (tmp_path / "p.onnx").exists()


def test_mlflow_keras_and_onnx_folders_are_sources(cli, tmp_path):
    import mlflow.keras
    import mlflow.onnx
    import onnx
    from tests import zoo_keras
    keras_model = zoo_keras.cnn_batchnorm()
    zoo_keras.calibrate_batchnorm(keras_model, np.random.default_rng(0).uniform(0, 1, (32, 16, 16, 3)).astype(np.float32))
    mlflow.keras.save_model(keras_model, str(tmp_path / "keras_flavor"), pip_requirements=["keras"])
    result = cli("convert", tmp_path / "keras_flavor", tmp_path / "k.onnx", "--json")
    assert result.code == 0, result.err
    assert result.json()["source_format"] == "keras" and result.json()["passed"]
    # The onnx flavor, written by mlflow.onnx around an ONNX file torch.onnx wrote: on to TFLite.
    torch.onnx.export(zoo_torch.small_cnn(), (torch.from_numpy(IMAGES[:1]),), str(tmp_path / "cnn.onnx"),
                      input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "n"}}, dynamo=False)
    mlflow.onnx.save_model(onnx.load(str(tmp_path / "cnn.onnx")), str(tmp_path / "onnx_flavor"), pip_requirements=["onnx"])
    lite = cli("convert", tmp_path / "onnx_flavor", tmp_path / "cnn.tflite", "--json")
    assert lite.code == 0, lite.err
    assert lite.json()["source_format"] == "onnx" and lite.json()["passed"]


def test_mlflow_folders_that_cannot_be_opened_safely_exit_2(cli, tmp_path, mlflow_models):
    outside = shutil.copytree(mlflow_models / "pt2", tmp_path / "outside")
    text = (outside / "MLmodel").read_text().replace("model_data: data", "model_data: ../../etc")
    (outside / "MLmodel").write_text(text)
    result = cli("info", outside)
    assert result.code == 2 and "outside its folder" in result.err
    other = tmp_path / "sklearn_flavor"
    other.mkdir()
    (other / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n")
    result = cli("convert", other, tmp_path / "x.onnx")
    assert result.code == 2 and "sklearn" in result.err and "onnx, pytorch, keras, tensorflow" in result.err
    assert not (tmp_path / "x.onnx").exists()


def test_convert_writes_an_mlflow_model_that_pyfunc_loads(cli, tmp_path, mlflow_models):
    import mlflow.pyfunc
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "cnn.onnx", "--input-shape", "image:1,3,32,32",
                 "--mlflow", tmp_path / "registry", "--json")
    assert result.code == 0, result.err
    assert result.json()["mlflow"] == str(tmp_path / "registry")
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "registry"))
    schema = loaded.metadata.get_input_schema()
    assert schema.input_names() == ["image"] and list(schema.inputs[0].shape) == [-1, 3, 32, 32]
    predicted = loaded.predict({"image": IMAGES})
    np.testing.assert_allclose(next(iter(predicted.values())), _torch_outputs(IMAGES), rtol=1e-4, atol=1e-5)
    assert "onnxruntime==" in (tmp_path / "registry" / "requirements.txt").read_text()
    # What modelport wrote is a source again, and a folder to serve (below).
    again = cli("convert", tmp_path / "registry", tmp_path / "again.tflite")
    assert again.code == 0, again.err
    # --mlflow goes with ONNX results, and never replaces a folder that is not an MLflow model.
    before = listing(tmp_path)
    refused = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "cnn.tflite", "--input-shape", "image:1,3,32,32",
                  "--mlflow", tmp_path / "m2")
    assert refused.code == 2 and "onnx flavor" in refused.err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    kept = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "c2.onnx", "--input-shape", "image:1,3,32,32",
               "--mlflow", tmp_path / "mine")
    assert kept.code == 2 and "not an MLflow model folder" in kept.err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert listing(tmp_path) == sorted(before + ["mine", "mine/notes.txt"])


def test_serve_answers_for_mlflow_folders(cli, tmp_path, mlflow_models):
    import requests

    from tests.serve.conftest import start_server
    assert cli("convert", mlflow_models / "pt2", tmp_path / "cnn.onnx", "--mlflow", tmp_path / "cnn_onnx").code == 0
    server = start_server([tmp_path / "cnn_onnx", mlflow_models / "pt2"], tmp_path / "server.log")
    try:
        for name in ("cnn_onnx", "pt2"):
            meta = requests.get(f"{server.url}/v2/models/{name}", timeout=10).json()
            assert meta["inputs"][0]["shape"][1:] == [3, 32, 32], meta
            body = {"inputs": [{"name": meta["inputs"][0]["name"], "datatype": "FP32", "shape": list(IMAGES.shape),
                                "data": IMAGES.ravel().tolist()}]}
            answer = requests.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=60)
            assert answer.status_code == 200, answer.text
            output = answer.json()["outputs"][0]
            np.testing.assert_allclose(np.array(output["data"], np.float32).reshape(output["shape"]),
                                       _torch_outputs(IMAGES), rtol=1e-4, atol=1e-5)
    finally:
        assert server.stop() == 0, server.log()


def test_a_pipeline_reads_mlflow_sources_and_writes_mlflow_targets(cli, tmp_path, mlflow_models):
    import mlflow.pyfunc
    shutil.copytree(mlflow_models / "pt2", tmp_path / "registry_model")
    (tmp_path / "pipeline.yaml").write_text(
        "output: out/\nmodels:\n  - name: cnn\n    source: registry_model\n"
        "targets: [{target: onnx, mlflow: true}]\n")
    result = cli("pipeline", tmp_path / "pipeline.yaml", "--json")
    assert result.code == 0, result.err
    assert result.json()["counts"]["pass"] == 1
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "out" / "cnn" / "onnx" / "mlflow"))
    np.testing.assert_allclose(next(iter(loaded.predict({"image": IMAGES}).values())), _torch_outputs(IMAGES),
                               rtol=1e-4, atol=1e-5)
    (tmp_path / "bad.yaml").write_text(
        "output: out/\nmodels:\n  - name: cnn\n    source: registry_model\n"
        "targets:\n  - {target: tflite, mlflow: true}\n")
    refused = cli("pipeline", tmp_path / "bad.yaml")
    assert refused.code == 2 and "bad.yaml line 5" in refused.err and "onnx flavor" in refused.err
