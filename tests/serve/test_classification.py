"""Triton's classification extension: tritonclient's InferRequestedOutput(name, class_count=K) over
HTTP and gRPC, and the JSON form, answered with the top K as "score:index:label" strings whose
scores and order are ONNX Runtime's own, labels from config.pbtxt's label_filename or labels.txt."""
from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.serve.conftest import ort_outputs, repository_of, run_client, start_server

LABELS = [f"class_{i}" for i in range(10)]


@pytest.fixture(scope="module")
def labelled_server(serve_models, tmp_path_factory):
    root = repository_of(tmp_path_factory.mktemp("labelled-repo"), serve_models["cnn"], {
        "configured": 'max_batch_size: 4\n'
                      'output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] label_filename: "names.txt" } ]\n',
        "default": None})
    (root / "configured" / "names.txt").write_text("\n".join(LABELS) + "\n")
    (root / "default" / "labels.txt").write_text("\n".join(label.upper() for label in LABELS) + "\n")
    server = start_server([root], tmp_path_factory.mktemp("labelled-log") / "server.log")
    yield server
    assert server.stop() == 0, server.log()


def _expected(serve_models, image, count, labels):
    scores = ort_outputs(serve_models["cnn"], {"image": image})["output"]
    rows = []
    for row in scores:
        order = np.argsort(-row.astype(np.float64), kind="stable")[:count]
        rows.append([f"{row[i]:f}:{i}:{labels[i]}" for i in order])
    return rows


def test_tritonclient_class_count_over_http_and_grpc(labelled_server, serve_models, tmp_path):
    image = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", image=image)
    answer = run_client("classify", labelled_server.http, labelled_server.grpc, "configured", "output", 3,
                        tmp_path / "inputs.npz")
    expected = _expected(serve_models, image, 3, LABELS)
    assert answer["http"] == expected and answer["grpc"] == expected


def test_json_classification_with_the_default_labels_file(labelled_server, serve_models):
    image = np.random.default_rng(4).standard_normal((1, 3, 32, 32)).astype(np.float32)
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": image.ravel().tolist()}],
            "outputs": [{"name": "output", "parameters": {"classification": 5}}]}
    answer = requests.post(f"{labelled_server.url}/v2/models/default/infer", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    output = answer.json()["outputs"][0]
    assert output["datatype"] == "BYTES" and output["shape"] == [1, 5]
    assert [output["data"]] == _expected(serve_models, image, 5, [label.upper() for label in LABELS])


@pytest.mark.parametrize("count, says", [(0, "positive integer"), (11, "has 10 classes"), ("3", "positive integer")])
def test_a_bad_class_count_is_refused(labelled_server, count, says):
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0.0] * 3072}],
            "outputs": [{"name": "output", "parameters": {"classification": count}}]}
    answer = requests.post(f"{labelled_server.url}/v2/models/configured/infer", json=body, timeout=60)
    assert answer.status_code == 400 and says in answer.json()["error"], answer.text
