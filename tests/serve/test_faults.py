"""The faults a server must survive: a full queue (503, then recovery), a request timeout (504), a
model failing at run time (500 for that request only), oversize bodies (413), model control
switched off (403), and SIGTERM with requests in flight (all answered, then exit 0)."""
from __future__ import annotations

import gzip
import json
import threading
import time

import numpy as np
import pytest
import requests

from tests.serve.conftest import build_reshaper, ort_outputs, start_server

SLOW_INPUT = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1024], "data": [0.01] * 1024}]}


@pytest.fixture(scope="module")
def fault_server(serve_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    reshaper = build_reshaper(folder / "reshaper.onnx")
    server = start_server([serve_models["slow"], reshaper, "--max-queue-size", "2", "--max-body-mb", "1",
                           "--no-model-control"], folder / "server.log")
    yield server
    assert server.stop() == 0, server.log()


def _post(server, model, body, timeout=60, **kwargs):
    return requests.post(f"{server.url}/v2/models/{model}/infer", data=json.dumps(body), timeout=timeout, **kwargs)


def _concurrently(count, call):
    answers, threads = [None] * count, []
    for i in range(count):
        def work(i=i):
            answers[i] = call()
        threads.append(threading.Thread(target=work))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return answers


def test_full_queue_answers_503_then_recovers(fault_server, serve_models):
    answers = _concurrently(8, lambda: _post(fault_server, "slow", SLOW_INPUT))
    codes = sorted(a.status_code for a in answers)
    assert 503 in codes and 200 in codes, codes
    refused = next(a for a in answers if a.status_code == 503)
    assert "queued" in refused.json()["error"] and "--max-queue-size" in refused.json()["error"]
    answer = _post(fault_server, "slow", SLOW_INPUT)
    assert answer.status_code == 200
    want = ort_outputs(serve_models["slow"], {"x": np.full((1, 1024), 0.01, np.float32)})["y"]
    np.testing.assert_array_equal(np.array(answer.json()["outputs"][0]["data"], np.float32).reshape(1, 1024), want)


def test_request_timeout_gives_504(fault_server):
    answers = _concurrently(2, lambda: _post(fault_server, "slow", {**SLOW_INPUT, "parameters": {"timeout": 50_000}}))
    late = [a for a in answers if a.status_code == 504]
    assert late, [a.status_code for a in answers]
    assert "within 0.05 s" in late[0].json()["error"]
    assert _post(fault_server, "slow", SLOW_INPUT).status_code == 200


def test_model_failing_at_run_time_fails_only_that_request(fault_server):
    def request(target):
        return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 6], "data": list(range(6))},
                           {"name": "target", "datatype": "INT64", "shape": [2], "data": target}]}
    bad = _post(fault_server, "reshaper", request([4, 4]))
    assert bad.status_code == 500, bad.text
    assert "failed to run this request" in bad.json()["error"]
    good = _post(fault_server, "reshaper", request([3, 2]))
    assert good.status_code == 200, good.text
    assert good.json()["outputs"][0]["shape"] == [3, 2]
    stats = requests.get(f"{fault_server.url}/v2/models/reshaper/stats", timeout=10).json()["model_stats"][0]
    assert stats["inference_stats"]["fail"]["count"] == 1 and stats["inference_stats"]["success"]["count"] == 1


def test_oversize_bodies_get_413(fault_server):
    big = b"0" * (1 << 20 + 1)
    answer = requests.post(f"{fault_server.url}/v2/models/slow/infer", data=big, timeout=30)
    assert answer.status_code == 413 and "--max-body-mb" in answer.json()["error"]
    bomb = gzip.compress(b" " * (3 << 20))   # 3 KiB on the wire, 3 MiB inflated
    answer = requests.post(f"{fault_server.url}/v2/models/slow/infer", data=bomb, timeout=30,
                           headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413 and "inflated" in answer.json()["error"]

    def chunks():   # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"0" * 65536
    answer = requests.post(f"{fault_server.url}/v2/models/slow/infer", data=chunks(), timeout=30)
    assert answer.status_code == 413


def test_model_control_can_be_switched_off(fault_server):
    for verb in ("load", "unload"):
        answer = requests.post(f"{fault_server.url}/v2/repository/models/slow/{verb}", timeout=10)
        assert answer.status_code == 403 and "--no-model-control" in answer.json()["error"]
    assert requests.get(f"{fault_server.url}/v2/models/slow/ready", timeout=10).status_code == 200


def test_sigterm_answers_accepted_requests_then_exits(serve_models, tmp_path):
    """Four requests queue on a model that takes ~0.2 s a run; SIGTERM arrives while they wait:
    every one is answered with its outputs, later connections are refused, and the exit code is 0."""
    server = start_server([serve_models["slow"]], tmp_path / "server.log")
    session_answers = []

    def send():
        session_answers.append(_post(server, "slow", SLOW_INPUT, timeout=120))
    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)   # all four are accepted (and some queued) by now
    started = time.monotonic()
    code = server.stop()
    for thread in threads:
        thread.join()
    assert code == 0, server.log()
    assert [a.status_code for a in session_answers] == [200] * 4, [a.text for a in session_answers]
    assert "draining" in server.log()
    assert time.monotonic() - started < 30
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/v2/health/live", timeout=5)


def test_oversize_grpc_message_is_refused(fault_server):
    import grpc

    from modelport.serve.proto import grpc_service_pb2 as pb
    from modelport.serve.proto import grpc_service_pb2_grpc as pb_grpc
    request = pb.ModelInferRequest(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 1024])
    request.raw_input_contents.append(b"\0" * (2 << 20))
    with grpc.insecure_channel(fault_server.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        request.raw_input_contents[0] = np.full(1024, 0.01, np.float32).tobytes()   # and the next one is served
        assert stub.ModelInfer(request, timeout=30).outputs[0].shape == [1, 1024]


def test_clients_that_disconnect_free_their_queue_slots(serve_models, tmp_path):
    """Six clients send a request to a model that takes ~0.2 s a run, then hang up at once: their
    requests are dropped from the queue instead of run, and the next client is served."""
    import socket
    server = start_server([serve_models["slow"], "--max-queue-size", "16"], tmp_path / "server.log")
    try:
        body = json.dumps(SLOW_INPUT).encode()
        raw = (f"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
                sock.sendall(raw)
            time.sleep(0.02)
        time.sleep(0.5)
        assert _post(server, "slow", SLOW_INPUT).status_code == 200
        stats = requests.get(f"{server.url}/v2/models/slow/stats", timeout=10).json()["model_stats"][0]
        assert stats["execution_count"] <= 3, stats   # the good request and at most the runs already started
    finally:
        assert server.stop() == 0, server.log()


def _rss_mib(pid: int) -> float:
    status = open(f"/proc/{pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


@pytest.mark.slow
def test_memory_stays_flat_over_10000_requests(serve_models, tmp_path):
    """1,000 requests to warm up, then 10,000 more (REST JSON, REST binary and gRPC in turn): the
    server's resident memory may not grow by more than a few MiB."""
    import grpc

    from modelport.serve.proto import grpc_service_pb2 as pb
    from modelport.serve.proto import grpc_service_pb2_grpc as pb_grpc
    server = start_server([serve_models["multi"]], tmp_path / "server.log")
    try:
        features = np.arange(8, dtype=np.float32).reshape(2, 4)
        ids = np.ones((2, 2), np.int64)
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4], "data": features.ravel().tolist()},
                           {"name": "ids", "datatype": "INT64", "shape": [2, 2], "data": ids.ravel().tolist()}]}
        header = json.dumps({"inputs": [
            {"name": "features", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}},
            {"name": "ids", "datatype": "INT64", "shape": [2, 2], "parameters": {"binary_data_size": 32}}],
            "parameters": {"binary_data_output": True}}).encode()
        binary = header + features.tobytes() + ids.tobytes()
        request = pb.ModelInferRequest(model_name="multi")
        request.inputs.add(name="features", datatype="FP32", shape=[2, 4])
        request.inputs.add(name="ids", datatype="INT64", shape=[2, 2])
        request.raw_input_contents.extend([features.tobytes(), ids.tobytes()])
        session = requests.Session()
        url = f"{server.url}/v2/models/multi/infer"
        with grpc.insecure_channel(server.grpc) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)

            def one(i):
                if i % 3 == 0:
                    assert session.post(url, json=body, timeout=30).status_code == 200
                elif i % 3 == 1:
                    answer = session.post(url, data=binary, timeout=30,
                                          headers={"Inference-Header-Content-Length": str(len(header))})
                    assert answer.status_code == 200
                else:
                    assert stub.ModelInfer(request, timeout=30).outputs[0].shape == [2, 4]
            for i in range(1000):
                one(i)
            before = _rss_mib(server.process.pid)
            for i in range(10000):
                one(i)
            after = _rss_mib(server.process.pid)
        print(f"server RSS after 1,000 requests {before:.1f} MiB, after 10,000 more {after:.1f} MiB")
        assert after - before < 8, (before, after)
    finally:
        assert server.stop() == 0, server.log()


def test_binds_loopback_unless_told(fault_server):
    log = fault_server.log()
    assert f"HTTP on 127.0.0.1:{fault_server.http_port}, gRPC on 127.0.0.1:{fault_server.grpc_port}" in log
