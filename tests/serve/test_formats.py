"""Formats other than ONNX behind the same server: a Keras file, a SavedModel folder and a TFLite
file in one Triton-layout repository, each answered as its own runtime (called directly here:
Keras, TensorFlow's SavedModel signature, LiteRT's interpreter) computes it."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import requests

from tests.serve.conftest import start_server


@pytest.fixture(scope="module")
def tf_server(keras_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("tf-repo")
    for name, source, target in (("keras_cnn", "cnn_bn.keras", "model.keras"),
                                 ("saved_two_io", "two_io_savedmodel", "model.savedmodel"),
                                 ("lite_cnn", "cnn_bn.tflite", "model.tflite")):
        (root / name / "1").mkdir(parents=True)
        copy = shutil.copytree if keras_models[source].is_dir() else shutil.copy
        copy(keras_models[source], root / name / "1" / target)
    server = start_server([root], tmp_path_factory.mktemp("tf-log") / "server.log", timeout=300)
    yield server
    assert server.stop() == 0, server.log()


def _infer(server, model, feeds):
    body = {"inputs": [{"name": name, "datatype": "FP32", "shape": list(value.shape), "data": value.ravel().tolist()}
                       for name, value in feeds.items()]}
    answer = requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return {o["name"]: np.array(o["data"], np.float32).reshape(o["shape"]) for o in answer.json()["outputs"]}


def _metadata(server, model):
    return requests.get(f"{server.url}/v2/models/{model}", timeout=10).json()


def test_keras_model(tf_server, keras_models):
    from modelport.formats._tf import import_keras
    meta = _metadata(tf_server, "keras_cnn")
    assert meta["platform"] == "tensorflow_keras" and meta["inputs"][0]["shape"] == [-1, 16, 16, 3]
    image = np.random.default_rng(6).standard_normal((3, 16, 16, 3)).astype(np.float32)
    got = _infer(tf_server, "keras_cnn", {meta["inputs"][0]["name"]: image})
    want = np.asarray(import_keras().models.load_model(keras_models["cnn_bn.keras"])(image))
    np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-5, atol=1e-5)


def test_savedmodel_two_inputs_two_outputs(tf_server, keras_models):
    import tensorflow as tf
    meta = _metadata(tf_server, "saved_two_io")
    assert meta["platform"] == "tensorflow_savedmodel"
    rng = np.random.default_rng(7)
    feeds = {"pixels": rng.standard_normal((2, 12, 12, 3)).astype(np.float32),
             "extra": rng.standard_normal((2, 5)).astype(np.float32)}
    assert {i["name"] for i in meta["inputs"]} == set(feeds)
    got = _infer(tf_server, "saved_two_io", feeds)
    signature = tf.saved_model.load(str(keras_models["two_io_savedmodel"])).signatures["serving_default"]
    want = {name: value.numpy() for name, value in signature(**{k: tf.constant(v) for k, v in feeds.items()}).items()}
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_tflite_model(tf_server, keras_models):
    from ai_edge_litert.interpreter import Interpreter
    meta = _metadata(tf_server, "lite_cnn")
    assert meta["platform"] == "tflite"
    image = np.random.default_rng(8).standard_normal((1, 16, 16, 3)).astype(np.float32)
    got = _infer(tf_server, "lite_cnn", {meta["inputs"][0]["name"]: image})
    interpreter = Interpreter(model_path=str(keras_models["cnn_bn.tflite"]))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    want = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_array_equal(next(iter(got.values())), want)
