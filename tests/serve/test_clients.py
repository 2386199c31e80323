"""Triton's tritonclient (HTTP JSON/binary/gzip, gRPC raw/typed/stream, sync and aio), KServe's v2
clients and TF Serving REST calls against `modelport serve` in a subprocess; every output must
equal ONNX Runtime's, run here in-process, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from tests.serve.conftest import ort_outputs, run_client, start_server

MODES = ["http-binary", "http-json", "http-gzip", "http-version", "http-aio", "grpc", "grpc-aio",
         "grpc-stream-a", "grpc-stream-b", "grpc-contents", "kserve-rest", "kserve-grpc",
         "tfserving-row", "tfserving-columnar"]


def _client_outputs(server, model, feeds, folder):
    np.savez(folder / "in.npz", **feeds)
    outputs, modes = {}, []
    for command in ("infer", "infer-kserve"):
        result = run_client(command, server.http, server.grpc, model, folder / "in.npz", folder / f"{command}.npz")
        modes += result["modes"]
        outputs.update(np.load(folder / f"{command}.npz"))
    assert sorted(modes) == sorted(MODES)
    return outputs


@pytest.fixture(scope="module")
def cnn_outputs(cnn_server, serve_models, tmp_path_factory):
    feeds = {"image": np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)}
    return _client_outputs(cnn_server, "cnn", feeds, tmp_path_factory.mktemp("cnn")), ort_outputs(serve_models["cnn"], feeds)


@pytest.fixture(scope="module")
def multi_outputs(cnn_server, serve_models, tmp_path_factory):
    rng = np.random.default_rng(1)
    feeds = {"features": rng.standard_normal((4, 4)).astype(np.float32),
             "ids": rng.integers(-3, 3, (4, 2)).astype(np.int64)}
    return _client_outputs(cnn_server, "multi", feeds, tmp_path_factory.mktemp("multi")), ort_outputs(serve_models["multi"], feeds)


def _same(got: np.ndarray, want: np.ndarray, mode: str) -> None:
    # JSON carries float32 values in their shortest decimal form, which reads back exactly.
    got = np.asarray(got).astype(want.dtype) if mode.startswith(("tfserving", "http-json", "kserve")) else got
    assert got.dtype == want.dtype, (mode, got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want, err_msg=mode)


@pytest.mark.parametrize("mode", MODES)
def test_cnn_outputs_equal_onnx_runtime(cnn_outputs, mode):
    outputs, reference = cnn_outputs
    assert float(np.abs(reference["output"]).mean()) > 0.05  # real signal, not ~0
    for name, want in reference.items():
        _same(outputs[f"{mode}/{name}"], want, mode)


@pytest.mark.parametrize("mode", MODES)
def test_two_inputs_two_dtypes_equal_onnx_runtime(multi_outputs, mode):
    outputs, reference = multi_outputs
    assert reference["positive"].any() and not reference["positive"].all()
    for name, want in reference.items():
        _same(outputs[f"{mode}/{name}"], want, mode)


def test_metadata_config_statistics_and_repository(cnn_server, cnn_outputs):
    data = run_client("meta", cnn_server.http, cnn_server.grpc, "cnn")
    for protocol in ("http", "grpc"):
        seen = data[protocol]
        assert seen["live"] is True and seen["ready"] is True and seen["model_ready"] is True, protocol
        assert seen["server"]["name"] == "modelport"
        assert "binary_tensor_data" in seen["server"]["extensions"]
        model = seen["model"]
        assert model["name"] == "cnn" and model["platform"] == "onnxruntime_onnx"
        assert model["inputs"] == [{"name": "image", "datatype": "FP32", "shape": ["-1", "3", "32", "32"]
                                    if protocol == "grpc" else [-1, 3, 32, 32]}]
        config = seen["config"]["config"] if protocol == "grpc" else seen["config"]
        assert int(config["max_batch_size"]) == 8
        assert [int(d) for d in config["input"][0]["dims"]] == [3, 32, 32]
        stats = seen["stats"]["model_stats"][0]
        assert int(stats["inference_count"]) >= 3 * len(MODES) - 6  # the rows the clients sent
        assert int(stats["inference_stats"]["success"]["count"]) >= len(MODES)
        names = {row["name"] for row in (seen["index"]["models"] if protocol == "grpc" else seen["index"])}
        assert names == {"cnn", "multi"}


def test_refusals_name_what_is_wrong(cnn_server):
    seen = run_client("errors", cnn_server.http, cnn_server.grpc)
    expected = {"unknown-model": ("404", "NOT_FOUND", "'nope'"),
                "wrong-dtype": ("400", "INVALID_ARGUMENT", "FP64"),
                "wrong-shape": ("400", "INVALID_ARGUMENT", "[1, 3, 31, 32]"),
                "batch-too-large": ("400", "INVALID_ARGUMENT", "max_batch_size 8"),
                "unknown-input": ("400", "INVALID_ARGUMENT", "'picture'"),
                "missing-input": ("400", "INVALID_ARGUMENT", "'ids'"),
                "unknown-version": ("404", "NOT_FOUND", "version '7'")}
    for case, (http_status, grpc_code, words) in expected.items():
        assert seen[f"{case}/http"]["status"] == http_status, (case, seen[f"{case}/http"])
        assert seen[f"{case}/grpc"]["status"] == f"StatusCode.{grpc_code}", (case, seen[f"{case}/grpc"])
        for protocol in ("http", "grpc"):
            assert words in seen[f"{case}/{protocol}"]["message"], (case, protocol, seen[f"{case}/{protocol}"])


def test_concurrent_clients_are_batched_and_get_their_own_rows(serve_models, tmp_path):
    """16 clients at once (half HTTP, half gRPC), each with its own row, into a server that waits
    up to 300 ms to fill a batch: runs merge several requests, and every client gets exactly the
    outputs ONNX Runtime gives its row alone."""
    server = start_server([serve_models["cnn"], "--max-batch-size", "16", "--batch-delay-ms", "300"],
                          tmp_path / "server.log")
    try:
        rows = np.random.default_rng(2).standard_normal((16, 3, 32, 32)).astype(np.float32)
        np.savez(tmp_path / "in.npz", image=rows)
        run_client("concurrent", server.http, server.grpc, "cnn", tmp_path / "in.npz", tmp_path / "out.npz")
        outputs = dict(np.load(tmp_path / "out.npz"))
        for i in range(16):
            alone = ort_outputs(serve_models["cnn"], {"image": rows[i:i + 1]})["output"]
            np.testing.assert_array_equal(outputs[f"row{i}/output"], alone, err_msg=f"row {i}")
        import requests
        stats = requests.get(f"{server.url}/v2/models/cnn/stats", timeout=10).json()["model_stats"][0]
        assert stats["inference_count"] == 16
        assert stats["execution_count"] < 16, stats
        assert max(entry["batch_size"] for entry in stats["batch_stats"]) > 1, stats
    finally:
        assert server.stop() == 0, server.log()
