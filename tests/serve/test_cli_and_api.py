"""`modelport serve` refuses bad command lines with exit 2 before serving anything, and
`modelport.serving()` runs the same server in a thread."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from tests.serve.conftest import REPO, ort_outputs


def _serve(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "modelport.cli", "serve", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.mark.parametrize("args,words", [
    (["/no/such/model.onnx"], "no such model file or folder"),
    (["{cnn}", "--max-queue-size", "0"], "--max-queue-size must be at least 1"),
    (["{cnn}", "--batch-delay-ms", "-1"], "--batch-delay-ms must not be negative"),
    (["{cnn}", "{cnn}"], "would both be named 'cnn'"),
])
def test_bad_command_lines_exit_2(serve_models, args, words):
    result = _serve(*[a.format(cnn=serve_models["cnn"]) for a in args])
    assert result.returncode == 2, result.stderr
    assert words in result.stderr, result.stderr


def test_a_taken_port_exits_2(serve_models):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(serve_models["cnn"], "--http-port", port, "--grpc-port", 0)
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--http-port" in result.stderr


def test_serving_api_in_a_thread(serve_models):
    import modelport
    image = np.random.default_rng(5).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with modelport.serving(serve_models["cnn"], max_batch_size=4) as server:
        body = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 3, 32, 32],
                                       "data": image.ravel().tolist()}]}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{server.url}/v2/models/cnn/infer", body), timeout=30) as r:
            answer = json.load(r)["outputs"][0]
        with urllib.request.urlopen(f"{server.url}/v2/models/cnn/config", timeout=30) as r:
            assert json.load(r)["max_batch_size"] == 4
    got = np.array(answer["data"], np.float32).reshape(answer["shape"])
    np.testing.assert_array_equal(got, ort_outputs(serve_models["cnn"], {"image": image})["output"])
    with pytest.raises(OSError):   # stopped: nothing listens any more
        urllib.request.urlopen(f"{server.url}/v2/health/live", timeout=5)


def test_a_folder_holding_one_model_is_served_under_the_given_name(serve_models, tmp_path):
    """KServe's layout: the storage initializer puts the model file in /mnt/models, and the runtime
    serves it under the InferenceService's name (--model-name)."""
    import shutil

    import modelport
    (tmp_path / "mnt").mkdir()
    shutil.copy(serve_models["cnn"], tmp_path / "mnt" / "classifier.onnx")
    with modelport.serving(tmp_path / "mnt", model_name="resnet18-isvc") as server:
        with urllib.request.urlopen(f"{server.url}/v2/models/resnet18-isvc", timeout=30) as r:
            assert json.load(r)["inputs"][0]["name"] == "image"
    result = _serve(tmp_path / "mnt", serve_models["multi"], "--model-name", "x")
    assert result.returncode == 2 and "--model-name names the one model" in result.stderr


def test_pickled_models_are_not_unpickled(tmp_path):
    """A whole-model torch.save file is a pickle: the server refuses to load it (the model is
    UNAVAILABLE with the reason) rather than run its code."""
    import torch

    import modelport
    from tests import zoo_torch
    torch.save(zoo_torch.small_cnn(), tmp_path / "whole.pt")
    with modelport.serving(tmp_path / "whole.pt") as server:
        with urllib.request.urlopen(urllib.request.Request(f"{server.url}/v2/repository/index", b""), timeout=30) as r:
            (row,) = json.load(r)
    assert row["name"] == "whole" and row["state"] == "UNAVAILABLE"
    assert "pickle" in row["reason"].lower(), row


def test_serving_in_process_leaves_the_hosts_logging_alone(serve_models):
    """uvicorn configures logging with dictConfig by default, which closes every logging handler of
    the process; the server must not do that to the application that embeds it."""
    import io
    import logging

    import modelport

    class Recording(logging.StreamHandler):
        closed = False

        def close(self):
            self.closed = True
            super().close()
    handler = Recording(io.StringIO())
    host = logging.getLogger("host-application")
    host.addHandler(handler)
    host.setLevel(logging.INFO)
    try:
        with modelport.serving(serve_models["cnn"]):
            host.info("while serving")
        host.info("after serving")
        assert not handler.closed
        assert handler.stream.getvalue().splitlines() == ["while serving", "after serving"]
    finally:
        host.removeHandler(handler)
