"""A model repository in Triton's layout: config.pbtxt and config.json honoured, versions and their
policy, a corrupt model UNAVAILABLE with its reason while the others serve, load/unload through
the API, names and links that would leave the repository refused, gRPC health per model."""
from __future__ import annotations

import json
import shutil

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.serve.conftest import build_multi_io, start_server

CNN_CONFIG = """
name: "cnn"
platform: "onnxruntime_onnx"
max_batch_size: 4
input [ { name: "image" data_type: TYPE_FP32 dims: [ 3, 32, 32 ] } ]
dynamic_batching { max_queue_delay_microseconds: 2000 preserve_ordering: true }
instance_group [ { count: 2 kind: KIND_CPU } ]
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
optimization { graph { level: 1 } }
"""


@pytest.fixture(scope="module")
def repository(serve_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    (root / "cnn" / "1").mkdir(parents=True)
    shutil.copy(serve_models["cnn"], root / "cnn" / "1" / "model.onnx")
    (root / "cnn" / "config.pbtxt").write_text(CNN_CONFIG)
    for version, factor in (("1", 2.0), ("2", 3.0), ("3", 4.0)):
        (root / "multi" / version).mkdir(parents=True)
        build_multi_io(root / "multi" / version / "model.onnx", factor)
    (root / "multi" / "config.json").write_text(json.dumps({"version_policy": {"specific": {"versions": [1, 2]}}}))
    (root / "unbatched" / "1").mkdir(parents=True)
    build_multi_io(root / "unbatched" / "1" / "model.onnx")
    (root / "unbatched" / "config.json").write_text(json.dumps({"max_batch_size": 0}))
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"\x08\x07garbage that is no protobuf" * 10)
    outside = tmp_path_factory.mktemp("outside")
    shutil.copy(serve_models["cnn"], outside / "model.onnx")
    (root / "escape" / "1").mkdir(parents=True)
    (root / "escape" / "1" / "model.onnx").symlink_to(outside / "model.onnx")
    return root


@pytest.fixture(scope="module")
def repo_server(repository, tmp_path_factory):
    server = start_server([repository], tmp_path_factory.mktemp("repo-log") / "server.log")
    yield server
    assert server.stop() == 0, server.log()


def _index(server):
    return {(row["name"], row["version"]): row for row in
            requests.post(f"{server.url}/v2/repository/index", timeout=10).json()}


def test_index_states_and_reasons(repo_server):
    index = _index(repo_server)
    assert set(index) == {("cnn", "1"), ("multi", "1"), ("multi", "2"), ("unbatched", "1"), ("broken", "1"),
                          ("escape", "1")}
    assert index[("cnn", "1")]["state"] == "READY"
    assert index[("multi", "2")]["state"] == "READY"
    assert index[("broken", "1")]["state"] == "UNAVAILABLE"
    assert "not a valid ONNX model" in index[("broken", "1")]["reason"]
    assert index[("escape", "1")]["state"] == "UNAVAILABLE"
    assert "outside the model repository" in index[("escape", "1")]["reason"]
    ready_only = requests.post(f"{repo_server.url}/v2/repository/index", json={"ready": True}, timeout=10).json()
    assert {row["name"] for row in ready_only} == {"cnn", "multi", "unbatched"}


def test_broken_model_is_not_ready_and_the_others_serve(repo_server):
    url = repo_server.url
    assert requests.get(f"{url}/v2/health/live", timeout=10).status_code == 200
    assert requests.get(f"{url}/v2/health/ready", timeout=10).status_code == 503   # strict: not every model is ready
    assert requests.get(f"{url}/v2/models/broken/ready", timeout=10).status_code == 503
    answer = requests.post(f"{url}/v2/models/broken/infer", json={"inputs": []}, timeout=10)
    assert answer.status_code == 503 and "not a valid ONNX model" in answer.json()["error"]
    image = {"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0.5] * 3072}
    assert requests.post(f"{url}/v2/models/cnn/infer", json={"inputs": [image]}, timeout=10).status_code == 200


def test_config_files_are_honoured(repo_server):
    config = requests.get(f"{repo_server.url}/v2/models/cnn/config", timeout=10).json()
    assert config["max_batch_size"] == 4
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]
    assert config["parameters"]["intra_op_thread_count"]["string_value"] == "1"
    image = {"name": "image", "datatype": "FP32", "shape": [5, 3, 32, 32], "data": [0.5] * 3072 * 5}
    answer = requests.post(f"{repo_server.url}/v2/models/cnn/infer", json={"inputs": [image]}, timeout=10)
    assert answer.status_code == 400 and "max_batch_size 4" in answer.json()["error"]


def test_max_batch_size_0_in_a_config_turns_batching_off(repo_server):
    config = requests.get(f"{repo_server.url}/v2/models/unbatched/config", timeout=10).json()
    assert config.get("max_batch_size", 0) == 0 and [i["dims"] for i in config["input"]] == [[-1, 4], [-1, 2]]
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [20, 4], "data": [1.0] * 80},
                       {"name": "ids", "datatype": "INT64", "shape": [20, 2], "data": [0] * 40}]}
    answer = requests.post(f"{repo_server.url}/v2/models/unbatched/infer", json=body, timeout=10)
    assert answer.status_code == 200 and answer.json()["outputs"][0]["shape"] == [20, 4]


def _score(server, version=""):
    path = f"/versions/{version}" if version else ""
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]},
                       {"name": "ids", "datatype": "INT64", "shape": [1, 2], "data": [0, 0]}],
            "outputs": [{"name": "score"}]}
    answer = requests.post(f"{server.url}/v2/models/multi{path}/infer", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["outputs"][0]["data"], answer.json()["model_version"]


def test_versions_follow_the_policy(repo_server):
    assert _score(repo_server, "1") == ([2.0] * 4, "1")
    assert _score(repo_server, "2") == ([3.0] * 4, "2")
    assert _score(repo_server) == ([3.0] * 4, "2")          # no version: the newest loaded
    assert requests.get(f"{repo_server.url}/v2/models/multi/versions/3", timeout=10).status_code == 404
    assert requests.get(f"{repo_server.url}/v2/models/multi", timeout=10).json()["versions"] == ["1", "2"]


def test_unload_and_load_through_the_api(repo_server, repository):
    url = repo_server.url
    assert requests.post(f"{url}/v2/repository/models/multi/unload", timeout=30).status_code == 200
    assert requests.get(f"{url}/v2/models/multi/ready", timeout=10).status_code == 503
    answer = requests.post(f"{url}/v2/models/multi/infer", json={"inputs": []}, timeout=10)
    assert answer.status_code == 503 and "unloaded" in answer.json()["error"]
    # a new policy on disk is read on load
    (repository / "multi" / "config.json").write_text(json.dumps({"version_policy": {"latest": {"num_versions": 1}}}))
    assert requests.post(f"{url}/v2/repository/models/multi/load", timeout=60).status_code == 200
    assert requests.get(f"{url}/v2/models/multi", timeout=10).json()["versions"] == ["3"]
    assert _score(repo_server) == ([4.0] * 4, "3")
    for name, status in (("..", 400), ("nope", 404), ("a%2Fb", 400)):
        answer = requests.post(f"{url}/v2/repository/models/{name}/load", timeout=10)
        assert answer.status_code in (status, 404), (name, answer.status_code, answer.text)
        assert "error" in answer.json()


def test_grpc_health_per_model(repo_server):
    with grpc.insecure_channel(repo_server.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status = health_pb2.HealthCheckResponse
        assert stub.Check(health_pb2.HealthCheckRequest(service="cnn")).status == status.SERVING
        assert stub.Check(health_pb2.HealthCheckRequest(service="broken")).status == status.NOT_SERVING
        assert stub.Check(health_pb2.HealthCheckRequest(service="")).status == status.NOT_SERVING
