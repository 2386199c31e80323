"""Triton's system shared memory extension, as tritonclient's own shm utilities use it over HTTP and
gRPC: inputs read from a registered region, outputs written into another, bit for bit ONNX Runtime's
answer; regions listed and unregistered. Every region and tensor placement is checked before a model
runs (a key outside /dev/shm, a link, another user's object, an offset or size past the end, a size
that does not fit the tensor: 400/403 naming it); CUDA shared memory is answered as not implemented;
a server not started with --allow-client-shm refuses to register."""
from __future__ import annotations

import os
from multiprocessing import shared_memory

import numpy as np
import pytest
import requests

from tests.serve.conftest import ort_outputs, run_client, start_server


@pytest.fixture(scope="module")
def shm_server(serve_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("shm-log") / "server.log"
    server = start_server([serve_models["cnn"], serve_models["multi"], "--allow-client-shm"], log)
    yield server
    assert server.stop() == 0, server.log()


@pytest.mark.parametrize("model", ["cnn", "multi"])
def test_tritonclient_shared_memory_over_http_and_grpc(shm_server, serve_models, model, tmp_path):
    rng = np.random.default_rng(3)
    feeds = ({"image": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)} if model == "cnn" else
             {"features": rng.standard_normal((3, 4)).astype(np.float32),
              "ids": rng.integers(-5, 5, (3, 2)).astype(np.int64)})
    np.savez(tmp_path / "in.npz", **feeds)
    statuses = run_client("shm", shm_server.http, shm_server.grpc, model, tmp_path / "in.npz", tmp_path / "out.npz",
                          256)
    answers = np.load(tmp_path / "out.npz")
    want = ort_outputs(serve_models[model], feeds)
    for mode in ("http", "grpc"):
        for name, value in want.items():
            np.testing.assert_array_equal(answers[f"{mode}/{name}"], value, err_msg=f"{mode} {name}")
    listed = {region["name"]: region for region in statuses["http"]}
    assert listed["in_http"]["byte_size"] == sum(v.nbytes for v in feeds.values())
    assert listed["in_http"]["key"].startswith("/modelport_in_http_")
    assert set(statuses["grpc"]["regions"]) == {"in_grpc", "out_grpc"}
    assert statuses["http-after"] == [] and not statuses["grpc-after"].get("regions")
    assert "UNIMPLEMENTED" in statuses["grpc-cuda"] and "system shared memory" in statuses["grpc-cuda"]


def test_regions_and_placements_are_checked_before_a_model_runs(shm_server, tmp_path):
    url = shm_server.url
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    block = shared_memory.SharedMemory(create=True, size=image.nbytes + 64)
    out = shared_memory.SharedMemory(create=True, size=16)
    links = []
    try:
        np.ndarray(image.shape, image.dtype, buffer=block.buf)[:] = image

        def register(name, key, size, offset=0):
            return requests.post(f"{url}/v2/systemsharedmemory/region/{name}/register",
                                 json={"key": key, "offset": offset, "byte_size": size}, timeout=10)

        def infer(inputs, outputs=None):
            body = {"inputs": inputs, **({"outputs": outputs} if outputs else {})}
            return requests.post(f"{url}/v2/models/cnn/infer", json=body, timeout=30)

        refused = register("escape", "/../etc/passwd", 10)
        assert refused.status_code == 400 and "/dev/shm only" in refused.json()["error"]
        link = f"/dev/shm/modelport_link_{os.getpid()}"
        os.symlink("/etc/hostname", link)
        links.append(link)
        refused = register("link", f"/modelport_link_{os.getpid()}", 4)
        assert refused.status_code == 400 and "cannot open" in refused.json()["error"]
        if os.geteuid() == 0:   # only root can give a file away
            other = shared_memory.SharedMemory(create=True, size=64)
            try:
                os.chown(f"/dev/shm/{other.name}", 65534, 65534)
                refused = register("other", f"/{other.name}", 64)
                assert refused.status_code == 403 and "another user" in refused.json()["error"]
            finally:
                other.close()
                other.unlink()
        refused = register("big", f"/{block.name}", image.nbytes + 65)
        assert refused.status_code == 400 and "runs past the end" in refused.json()["error"]

        assert register("input", f"/{block.name}", image.nbytes + 64).status_code == 200
        assert register("output", f"/{out.name}", 16).status_code == 200
        tensor = {"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32"}
        stats_before = requests.get(f"{url}/v2/models/cnn/stats", timeout=10).json()["model_stats"][0]
        for parameters, says in (
                ({"shared_memory_region": "input", "shared_memory_byte_size": 100}, "takes 12288 bytes"),
                ({"shared_memory_region": "input", "shared_memory_byte_size": image.nbytes,
                  "shared_memory_offset": 128}, "runs past the end of region"),
                ({"shared_memory_region": "nowhere", "shared_memory_byte_size": image.nbytes}, "no shared memory region"),
                ({"shared_memory_region": "input"}, "needs both")):
            answer = infer([{**tensor, "parameters": parameters}])
            assert answer.status_code == 400 and says in answer.json()["error"], (parameters, answer.text)
        stats_after = requests.get(f"{url}/v2/models/cnn/stats", timeout=10).json()["model_stats"][0]
        assert stats_after["execution_count"] == stats_before["execution_count"]   # nothing ran
        placed = {**tensor, "parameters": {"shared_memory_region": "input", "shared_memory_byte_size": image.nbytes}}
        small = infer([placed], [{"name": "output", "parameters": {"shared_memory_region": "output",
                                                                    "shared_memory_byte_size": 16}}])
        assert small.status_code == 400 and "takes 40 bytes" in small.json()["error"]
        answer = infer([placed])   # the input from shared memory, the output in the response
        assert answer.status_code == 200, answer.text
        status = requests.get(f"{url}/v2/systemsharedmemory/status", timeout=10).json()
        assert {r["name"] for r in status} == {"input", "output"}
        cuda = requests.get(f"{url}/v2/cudasharedmemory/status", timeout=10)
        assert cuda.status_code == 501 and "system shared memory" in cuda.json()["error"]
    finally:
        requests.post(f"{url}/v2/systemsharedmemory/unregister", timeout=10)
        for link in links:
            os.unlink(link)
        for region in (block, out):
            region.close()
            region.unlink()


def test_a_server_without_the_flag_registers_nothing(cnn_server):
    block = shared_memory.SharedMemory(create=True, size=64)
    try:
        refused = requests.post(f"{cnn_server.url}/v2/systemsharedmemory/region/r/register",
                                json={"key": f"/{block.name}", "offset": 0, "byte_size": 64}, timeout=10)
        assert refused.status_code == 403 and "--allow-client-shm" in refused.json()["error"]
        assert requests.get(f"{cnn_server.url}/v2/systemsharedmemory/status", timeout=10).json() == []
    finally:
        block.close()
        block.unlink()
