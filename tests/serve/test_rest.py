"""Malformed and mismatched REST requests, OIP v2 and TF Serving: each gets its 4xx with a message
naming the problem, never a 500, and the server keeps answering."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import requests

from tests.serve.conftest import ort_outputs

IMAGE = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def expected(serve_models):
    """What ONNX Runtime, in this process, gives for IMAGE."""
    return ort_outputs(serve_models["cnn"], {"image": IMAGE})["output"]


def _infer(server, body: bytes | dict, model="cnn", headers=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return requests.post(f"{server.url}/v2/models/{model}/infer", data=data, headers=headers or {}, timeout=30)


def _binary(header: dict, blob: bytes, length: int | None = None):
    head = json.dumps(header).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head) if length is None else length),
                         "Content-Type": "application/octet-stream"}


def _image_input(**extra):
    return {"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], **extra}


CASES = {
    "not JSON": (b"{inputs: nope", 400, "not valid JSON"),
    "not an object": ([1, 2], 400, "JSON object"),
    "no inputs": ({"outputs": []}, 400, "'inputs'"),
    "input without data": ({"inputs": [_image_input()]}, 400, "neither 'data'"),
    "too few values": ({"inputs": [_image_input(data=[1.0, 2.0])]}, 400, "2 values, but shape [1, 3, 32, 32] holds 3072"),
    "strings for FP32": ({"inputs": [_image_input(data=["a"] * 3072)]}, 400, "FP32 data must be numbers"),
    "ragged data": ({"inputs": [_image_input(shape=[1, 3, 32, 32], data=[[1.0], [1.0, 2.0]])]}, 400, "ragged"),
    "negative dim": ({"inputs": [_image_input(shape=[-1, 3, 32, 32], data=[0.0])]}, 400, "has shape [-1, 3, 32, 32]"),
    "shape not integers": ({"inputs": [_image_input(shape=[1, 3, "32", 32], data=[0.0])]}, 400, "list of integers"),
    "unknown datatype": ({"inputs": [_image_input(datatype="FLOAT", data=[0.0])]}, 400, "FP32"),
    "input twice": ({"inputs": [_image_input(data=[0.0] * 3072), _image_input(data=[0.0] * 3072)]}, 400, "twice"),
    "unknown output": ({"inputs": [_image_input(data=[0.0] * 3072)], "outputs": [{"name": "logits"}]}, 400, "no output 'logits'"),
    "bad timeout": ({"inputs": [_image_input(data=[0.0] * 3072)], "parameters": {"timeout": "soon"}}, 400, "timeout"),
}


@pytest.mark.parametrize("case", CASES)
def test_malformed_json_requests_get_400(cnn_server, case):
    body, status, words = CASES[case]
    answer = _infer(cnn_server, body if isinstance(body, (bytes, dict)) else json.dumps(body).encode())
    assert answer.status_code == status, (case, answer.status_code, answer.text)
    assert words in answer.json()["error"], (case, answer.json())


def test_integer_input_refuses_fractions_and_out_of_range(cnn_server):
    features = {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
    for data, words in (([0.5, 1], "INT64 data must be integers"), ([2**70, 1], "")):
        answer = _infer(cnn_server, {"inputs": [features, {"name": "ids", "datatype": "INT64", "shape": [1, 2],
                                                           "data": data}]}, model="multi")
        assert answer.status_code == 400, answer.text
        assert words in answer.json()["error"]


def test_binary_tensor_byte_sizes_are_checked(cnn_server, expected):
    blob = IMAGE.tobytes()
    header = {"inputs": [_image_input(parameters={"binary_data_size": len(blob)})]}
    cases = [
        (_binary(header, blob[:-4]), "runs past"),                      # shorter than declared
        (_binary(header, blob + b"\0\0\0\0"), "belong to no input"),     # trailing bytes
        (_binary({"inputs": [_image_input(parameters={"binary_data_size": 12})]}, blob[:12]),
         "12 bytes of binary data, but shape [1, 3, 32, 32] of FP32 needs 12288"),
        (_binary(header, blob, length=10**9), "Inference-Header-Content-Length"),
        (_binary({"inputs": [_image_input(parameters={"binary_data_size": -5})]}, blob), "byte count"),
    ]
    for (body, headers), words in cases:
        answer = _infer(cnn_server, body, headers=headers)
        assert answer.status_code == 400, (words, answer.text)
        assert words in answer.json()["error"], (words, answer.json())
    body, headers = _binary({**header, "parameters": {"binary_data_output": True}}, blob)  # the right one is answered
    answer = _infer(cnn_server, body, headers=headers)
    assert answer.status_code == 200
    head = int(answer.headers["Inference-Header-Content-Length"])
    meta = json.loads(answer.content[:head])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 40
    got = np.frombuffer(answer.content[head:], np.float32).reshape(1, 10)
    np.testing.assert_array_equal(got, expected)


def test_unknown_models_routes_and_methods(cnn_server):
    answer = _infer(cnn_server, {"inputs": []}, model="resnet")
    assert answer.status_code == 404 and "'resnet'" in answer.json()["error"] and "'cnn'" in answer.json()["error"]
    assert requests.get(f"{cnn_server.url}/v2/models/cnn/versions/3", timeout=10).status_code == 404
    answer = requests.get(f"{cnn_server.url}/v3/nothing", timeout=10)
    assert answer.status_code == 404 and "error" in answer.json()
    answer = requests.get(f"{cnn_server.url}/v2/models/cnn/infer", timeout=10)
    assert answer.status_code == 405 and "error" in answer.json()


def test_compressed_bodies(cnn_server, expected):
    body = json.dumps({"inputs": [_image_input(data=IMAGE.ravel().tolist())]}).encode()
    answer = _infer(cnn_server, gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(np.array(answer.json()["outputs"][0]["data"], np.float32).reshape(1, 10),
                                  expected)
    answer = _infer(cnn_server, b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "gzip" in answer.json()["error"]
    answer = _infer(cnn_server, body, headers={"Content-Encoding": "br"})
    assert answer.status_code == 415


TF_CASES = {
    "both formats": ({"instances": [1], "inputs": [1]}, "exactly one of"),
    "neither": ({"signature_name": "serving_default"}, "exactly one of"),
    "other signature": ({"signature_name": "classify", "instances": [[1]]}, "'classify'"),
    "empty instances": ({"instances": []}, "non-empty list"),
    "b64 for FP32": ({"instances": [{"b64": "AAAA"}]}, "string inputs only"),
    "wrong shape": ({"instances": [[1.0, 2.0]]}, "has shape [1, 2]"),
    "ragged": ({"instances": [[[1.0]], [[1.0, 2.0]]]}, "ragged"),
    "strings": ({"instances": [["a", "b"]]}, "sends strings"),
}


@pytest.mark.parametrize("case", TF_CASES)
def test_tf_serving_refusals(cnn_server, case):
    body, words = TF_CASES[case]
    answer = requests.post(f"{cnn_server.url}/v1/models/cnn:predict", json=body, timeout=30)
    assert answer.status_code == 400, (case, answer.text)
    assert words in answer.json()["error"], (case, answer.json())


def test_tf_serving_multi_input_rows_and_status(cnn_server, serve_models):
    url = f"{cnn_server.url}/v1/models/multi"
    answer = requests.post(f"{url}:predict", json={"instances": [{"features": [1, 2, 3, 4]}]}, timeout=30)
    assert answer.status_code == 400 and "'ids'" in answer.json()["error"]
    answer = requests.post(f"{url}:predict", json={"instances": [[1, 2, 3, 4]]}, timeout=30)
    assert answer.status_code == 400 and "object naming them" in answer.json()["error"]
    answer = requests.post(f"{url}/versions/1:predict", timeout=30,
                           json={"instances": [{"features": [1, -2, 3, -4], "ids": [1, 0]}]})
    assert answer.status_code == 200, answer.text
    want = ort_outputs(serve_models["multi"], {"features": np.array([[1, -2, 3, -4]], np.float32),
                                               "ids": np.array([[1, 0]], np.int64)})
    assert answer.json()["predictions"] == [{"score": want["score"][0].tolist(), "positive": want["positive"][0].tolist()}]
    status = requests.get(url, timeout=10).json()
    assert status == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                "status": {"error_code": "OK", "error_message": ""}}]}
    assert requests.get(f"{url}/versions/1", timeout=10).status_code == 200
    assert requests.get(f"{cnn_server.url}/v1/models/nope", timeout=10).status_code == 404
    assert requests.post(f"{url}:classify", json={"instances": [1]}, timeout=10).status_code == 404
    signature = requests.get(f"{url}/metadata", timeout=10).json()["metadata"]["signature_def"]["signature_def"]
    inputs = signature["serving_default"]["inputs"]
    assert inputs["ids"]["dtype"] == "DT_INT64"
    assert [d["size"] for d in inputs["features"]["tensor_shape"]["dim"]] == ["-1", "4"]


def test_still_healthy_after_all_that(cnn_server):
    assert requests.get(f"{cnn_server.url}/v2/health/ready", timeout=10).status_code == 200
    answer = _infer(cnn_server, {"inputs": [_image_input(data=IMAGE.ravel().tolist())]})
    assert answer.status_code == 200
