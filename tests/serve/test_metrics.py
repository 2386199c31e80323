"""Prometheus /metrics with Triton's metric names (parsed by prometheus_client's own parser), on the
HTTP port and on --metrics-port, and JSON access logs with request id, model, status and latency."""
from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from modelport.serve.proto import grpc_service_pb2 as pb
from modelport.serve.proto import grpc_service_pb2_grpc as pb_grpc
from tests.serve.conftest import start_server

TRITON_COUNTERS = ["nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
                   "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                   "nv_inference_compute_infer_duration_us"]


@pytest.fixture(scope="module")
def observed(serve_models, tmp_path_factory):
    """A server with JSON logs and a metrics port, after 3 good REST requests (2 + 3 + 1 rows), one
    refused request and one gRPC request; yields (server, metrics port, /metrics texts, log lines)."""
    log = tmp_path_factory.mktemp("metrics") / "server.log"
    server = start_server([serve_models["cnn"], serve_models["multi"], "--metrics-port", "0", "--log-format", "json"],
                          log, wait_ready=False)
    deadline = time.monotonic() + 120
    while requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    metrics_port = int(next(json.loads(line)["message"].rsplit(":", 1)[1] for line in server.log().splitlines()
                            if "metrics on" in line))
    answers = []
    for rows in (2, 3, 1):
        body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [rows, 3, 32, 32], "data": [0.1] * 3072 * rows}]}
        answers.append(requests.post(f"{server.url}/v2/models/cnn/infer", json=body, timeout=30,
                                     headers={"X-Request-ID": f"req-{rows}"}))
    answers.append(requests.post(f"{server.url}/v2/models/cnn/infer", timeout=30,
                                 json={"inputs": [{"name": "image", "datatype": "FP64", "shape": [1], "data": [1]}]}))
    request = pb.ModelInferRequest(model_name="cnn", id="grpc-1")
    request.inputs.add(name="image", datatype="FP32", shape=[1, 3, 32, 32])
    request.raw_input_contents.append(np.zeros((1, 3, 32, 32), np.float32).tobytes())
    with grpc.insecure_channel(server.grpc) as channel:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    texts = [requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10) for port in (server.http_port, metrics_port)]
    yield server, answers, texts
    assert server.stop() == 0, server.log()


def _families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family, suffix="", **labels) -> float:
    # the parser files a counter's samples under NAME_total whether or not the text says _total
    names = {family.name + suffix} | ({family.name + "_total"} if family.type == "counter" else set())
    return next(s.value for s in family.samples
                if s.name in names and all(s.labels.get(k) == v for k, v in labels.items()))


def test_triton_metric_names_and_values(observed):
    server, answers, texts = observed
    assert [a.status_code for a in answers] == [200, 200, 200, 400]
    for page in texts:
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "nv_inference_request_success{" in page.text            # Triton's name, no _total
        families = _families(page.text)
        for name in TRITON_COUNTERS:
            assert families[name].type == "counter", name
        cnn = {"model": "cnn", "version": "1"}
        assert _value(families["nv_inference_request_success"], **cnn) == 4      # 3 REST + 1 gRPC
        assert _value(families["nv_inference_request_failure"], **cnn) == 1
        assert _value(families["nv_inference_count"], **cnn) == 7               # 2 + 3 + 1 + 1 rows
        executions = _value(families["nv_inference_exec_count"], **cnn)
        assert 1 <= executions <= 4
        assert _value(families["nv_inference_compute_infer_duration_us"], **cnn) > 0
        assert _value(families["nv_inference_request_duration_us"], **cnn) >= \
            _value(families["nv_inference_compute_infer_duration_us"], **cnn)
        assert _value(families["nv_inference_request_success"], model="multi", version="1") == 0
        batch = families["modelport_batch_size"]
        assert batch.type == "histogram"
        assert _value(batch, "_count", **cnn) == executions and _value(batch, "_sum", **cnn) == 7
        assert _value(batch, "_bucket", le="2.0", **cnn) >= 1                 # the 1- and 2-row runs
        assert _value(families["modelport_queue_depth"], "_count", **cnn) == 4
        assert _value(families["modelport_model_ready"], **cnn) == 1


def test_json_access_lines(observed):
    server, answers, _ = observed
    assert answers[0].headers["x-request-id"] == "req-2"
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "modelport.serve.access"]
    infer = {r["request_id"]: r for r in access if r["target"] == "/v2/models/cnn/infer"}
    assert infer["req-3"]["status"] == 200 and infer["req-3"]["model"] == "cnn" and infer["req-3"]["protocol"] == "http"
    assert infer["req-3"]["latency_ms"] > 0
    refused = [r for r in access if r["target"] == "/v2/models/cnn/infer" and r["status"] == 400]
    assert len(refused) == 1 and len(refused[0]["request_id"]) == 32            # made up when not given
    grpc_line = next(r for r in access if r["protocol"] == "grpc")
    assert grpc_line["target"].endswith("/ModelInfer") and grpc_line["status"] == "OK"
    assert grpc_line["model"] == "cnn" and grpc_line["request_id"] == "grpc-1"
