"""Serving fixtures: real ONNX models on disk, `modelport serve` in a subprocess on 127.0.0.1, and
the real clients (tritonclient, kserve, requests) run from their own venv (.venv/peers/clients)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENTS_PYTHON = REPO / ".venv" / "peers" / "clients" / "bin" / "python"
CLIENT_SCRIPT = Path(__file__).resolve().parent / "clients" / "client.py"
_LISTENING = re.compile(r"HTTP on ([\d.]+):(\d+), gRPC on ([\d.]+):(\d+)")


def build_multi_io(path: Path, factor: float = 2.0) -> Path:
    """Two inputs of two dtypes (FP32 features, INT64 ids) and two outputs (FP32 score, BOOL positive):
    score = features * factor + sum(ids over axis 1), positive = score > 0."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Mul", ["features", "two"], ["doubled"]),
         helper.make_node("ReduceSum", ["ids", "axis1"], ["id_sum"], keepdims=1),
         helper.make_node("Cast", ["id_sum"], ["id_sum_f"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["doubled", "id_sum_f"], ["score"]),
         helper.make_node("Greater", ["score", "zero"], ["positive"])],
        "multi_io",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 2])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("positive", TensorProto.BOOL, ["batch", 4])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [factor]),
         helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
         helper.make_tensor("axis1", TensorProto.INT64, [1], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_slow(path: Path, matmuls: int = 24) -> Path:
    """A model that takes a noticeable time per run (a few large MatMuls) and has a fixed batch of 1,
    so requests queue behind each other: for draining, queue-full and timeout tests."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((1024, 1024)) / 32).astype(np.float32)
    nodes = [helper.make_node("ConstantOfShape", ["rows"], ["base"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
             helper.make_node("Add", ["base", "x"], ["h0"])]
    for i in range(matmuls):
        nodes += [helper.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]), helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"])]
    nodes.append(helper.make_node("ReduceMean", [f"h{matmuls}", "axis0"], ["y"], keepdims=1))
    graph = helper.make_graph(
        nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array([768, 1024], np.int64), "rows"),
         numpy_helper.from_array(np.array([0], np.int64), "axis0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory) -> dict[str, Path]:
    """cnn.onnx (PyTorch SmallCNN through modelport's converter), multi.onnx, slow.onnx."""
    import modelport
    from modelport.formats.input_specs import parse_input_specs
    folder = tmp_path_factory.mktemp("serve-models")
    modelport.convert("tests.zoo_torch:small_cnn", folder / "cnn.onnx", input_specs=parse_input_specs(["1,3,32,32"]))
    return {"cnn": folder / "cnn.onnx", "multi": build_multi_io(folder / "multi.onnx"),
            "slow": build_slow(folder / "slow.onnx")}


def repository_of(root: Path, model: Path, configs: dict[str, str | None]) -> Path:
    """A repository in Triton's layout: each name a copy of ``model`` as version 1, with the given
    config.pbtxt text (None: no config)."""
    import shutil
    for name, config in configs.items():
        (root / name / "1").mkdir(parents=True)
        shutil.copy(model, root / name / "1" / "model.onnx")
        if config is not None:
            (root / name / "config.pbtxt").write_text(config)
    return root


def ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference: ONNX Runtime in this process, not the server."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


@dataclass
class Server:
    process: subprocess.Popen
    http_port: int
    grpc_port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http}"

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the server did not stop within {timeout} s of SIGTERM:\n{self.log()}")


def start_server(args: list, log_path: Path, *, wait_ready: bool = True, timeout: float = 120) -> Server:
    """`modelport serve ARGS --http-port 0 --grpc-port 0` in a subprocess; returns once it has
    reported its ports (and, with wait_ready, finished loading its models)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "modelport.cli", "serve", *map(str, args),
                                "--http-port", "0", "--grpc-port", "0"],
                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        match = _LISTENING.search(text)
        if match and (not wait_ready or re.search(r"^(ready|serving \(some models are not ready\))$", text, re.M)):
            return Server(process, int(match.group(2)), int(match.group(4)), log_path)
        if process.poll() is not None:
            raise AssertionError(f"modelport serve exited with {process.returncode}:\n{text}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"modelport serve did not start within {timeout} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def cnn_server(serve_models, tmp_path_factory):
    """One server with the CNN and the two-input model, batching up to 8 rows."""
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    server = start_server([serve_models["cnn"], serve_models["multi"], "--max-batch-size", "8"], log)
    yield server
    code = server.stop()
    assert code == 0, server.log()


def run_client(*args, timeout: float = 180) -> dict:
    """Run tests/serve/clients/client.py in the clients' venv; its stdout is one JSON object."""
    if not CLIENTS_PYTHON.exists():
        pytest.fail(f"{CLIENTS_PYTHON} is missing: run `make install` (it creates the clients' venv)")
    result = subprocess.run([str(CLIENTS_PYTHON), str(CLIENT_SCRIPT), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert result.returncode == 0, f"client failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def build_reshaper(path: Path) -> Path:
    """Reshape(x, target) with the target shape an input: a request with a target that does not fit
    x passes every check the server can make and then fails inside ONNX Runtime."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "target"], ["y"])], "reshaper",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6]),
         helper.make_tensor_value_info("target", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", "cols"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
