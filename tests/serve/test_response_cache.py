"""Triton's response cache: a model whose config.pbtxt says `response_cache { enable: true }` answers
a request it has seen from memory (tritonclient over HTTP and gRPC gets ONNX Runtime's own answer,
bit for bit, and the model does not run again), counts hits and misses in its statistics and on
/metrics as Triton does, drops the least recently used answer when the cache is full, and is refused
a load, with the flag to use, on a server started without a cache."""
from __future__ import annotations

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import ort_outputs, repository_of, run_client, start_server

CACHED_CONFIG = 'max_batch_size: 4\nresponse_cache { enable: true }\n'


@pytest.fixture(scope="module")
def repository(serve_models, tmp_path_factory):
    return repository_of(tmp_path_factory.mktemp("cache-repo"), serve_models["cnn"],
                         {"cached": CACHED_CONFIG, "plain": None})


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 32, 32)).astype(np.float32)


def _infer(server, model: str, image: np.ndarray) -> np.ndarray:
    body = {"inputs": [{"name": "image", "shape": list(image.shape), "datatype": "FP32",
                        "data": image.reshape(-1).tolist()}]}
    answer = requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    output = answer.json()["outputs"][0]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def _stats(server, model: str) -> dict:
    return requests.get(f"{server.url}/v2/models/{model}/stats", timeout=10).json()["model_stats"][0]


def test_identical_requests_come_from_the_cache_and_the_oldest_answer_goes_first(repository, serve_models, tmp_path):
    # 104 bytes: two answers of 10 float32 scores each, not three.
    server = start_server([repository, "--cache-size-mb", "0.0001"], tmp_path / "server.log")
    try:
        first = _image(1)
        want = ort_outputs(serve_models["cnn"], {"image": first})["output"]
        np.testing.assert_array_equal(_infer(server, "cached", first), want)  # a miss: the model runs
        np.savez(tmp_path / "in.npz", image=first)
        result = run_client("infer", server.http, server.grpc, "cached", tmp_path / "in.npz", tmp_path / "out.npz")
        answers = np.load(tmp_path / "out.npz")
        for mode in ("http-binary", "grpc"):  # tritonclient over both protocols, answered from the cache
            assert mode in result["modes"]
            np.testing.assert_array_equal(answers[f"{mode}/output"], want, err_msg=mode)
        stats = _stats(server, "cached")
        hits, misses = stats["inference_stats"]["cache_hit"]["count"], stats["inference_stats"]["cache_miss"]["count"]
        assert misses == 1 and hits >= 2 and hits == stats["inference_stats"]["success"]["count"] - 1, stats
        assert stats["execution_count"] == 1, stats   # the model ran once for all of them
        seen = run_client("meta", server.http, server.grpc, "cached")   # tritonclient's statistics calls
        for protocol in ("http", "grpc"):
            counted = seen[protocol]["stats"]["model_stats"][0]["inference_stats"]["cache_hit"]["count"]
            assert int(counted) == hits, (protocol, seen[protocol]["stats"])

        # Two more distinct requests fill the cache; the first answer, least recently used, is dropped.
        for seed in (2, 3):
            _infer(server, "cached", _image(seed))
        assert _stats(server, "cached")["inference_stats"]["cache_miss"]["count"] == 3
        _infer(server, "cached", _image(3))   # still there
        np.testing.assert_array_equal(_infer(server, "cached", first), want)   # gone: runs again
        stats = _stats(server, "cached")["inference_stats"]
        assert stats["cache_miss"]["count"] == 4 and stats["cache_hit"]["count"] == hits + 1, stats

        # A model whose config does not ask for the cache runs every request.
        for _ in range(3):
            np.testing.assert_array_equal(_infer(server, "plain", first), want)
        plain = _stats(server, "plain")
        assert plain["execution_count"] == 3 and plain["inference_stats"]["cache_hit"]["count"] == 0, plain

        families = {f.name: f for f in text_string_to_metric_families(
            requests.get(f"{server.url}/metrics", timeout=10).text)}
        scraped = {s.labels["model"]: s.value for s in families["nv_cache_num_hits_per_model"].samples}
        assert scraped == {"cached": hits + 1, "plain": 0}
        assert {s.labels["model"]: s.value for s in families["nv_cache_num_misses_per_model"].samples}["cached"] == 4
    finally:
        assert server.stop() == 0, server.log()


def test_a_cached_model_needs_a_server_with_a_cache(repository, tmp_path):
    server = start_server([repository], tmp_path / "server.log")
    try:
        index = {row["name"]: row for row in
                 requests.post(f"{server.url}/v2/repository/index", json={}, timeout=10).json()}
        assert index["plain"]["state"] == "READY"
        assert index["cached"]["state"] == "UNAVAILABLE" and "--cache-size-mb" in index["cached"]["reason"]
        answer = requests.post(f"{server.url}/v2/models/cached/infer", json={"inputs": []}, timeout=10)
        assert answer.status_code in (400, 503) and "--cache-size-mb" in answer.text
    finally:
        assert server.stop() == 0, server.log()
