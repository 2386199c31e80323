"""OpenVINO IR (model.xml + model.bin) and ExecuTorch programs behind the same server, asked by
tritonclient over HTTP and gRPC, each answer equal to what the runtime computes when called
directly here (OpenVINO's own compiled model, ExecuTorch's own Method), not through modelport."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import requests

from tests.serve.conftest import run_client, start_server

pytest.importorskip("openvino")
pytest.importorskip("executorch.runtime")


@pytest.fixture(scope="module")
def runtimes_server(tmp_path_factory):
    import torch
    from modelport.cli import main
    from modelport.demo_classifier import SIZE, trained_cnn
    work = tmp_path_factory.mktemp("edge-runtimes")
    torch.export.save(torch.export.export(trained_cnn(60).eval(), (torch.zeros(2, 3, SIZE, SIZE),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), work / "cnn.pt2")
    assert main(["convert", str(work / "cnn.pt2"), str(work / "cnn.xml")]) == 0
    assert main(["edge", "executorch", str(work / "cnn.pt2"), str(work / "et"), "--max-batch", "4"]) == 0
    root = work / "repo"
    (root / "ir_cnn" / "1").mkdir(parents=True)
    shutil.copy(work / "cnn.xml", root / "ir_cnn" / "1" / "model.xml")
    shutil.copy(work / "cnn.bin", root / "ir_cnn" / "1" / "model.bin")
    (root / "pte_cnn" / "1").mkdir(parents=True)
    shutil.copy(work / "et" / "model_fp32.pte", root / "pte_cnn" / "1" / "model.pte")
    server = start_server([root], work / "server.log", timeout=300)
    yield server, root, work
    assert server.stop() == 0, server.log()


def _openvino_direct(xml, x):
    import openvino as ov
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled({"input": x})[compiled.outputs[0]]


def _executorch_direct(pte, x):
    import torch
    from executorch.runtime import Runtime
    method = Runtime.get().load_program(str(pte)).load_method("forward")
    return np.concatenate([method.execute([torch.from_numpy(x[i:i + 4])])[0].numpy() for i in range(0, len(x), 4)])


def test_openvino_and_executorch_models_answer_as_their_runtimes_do(runtimes_server, tmp_path):
    server, root, _ = runtimes_server
    x = np.random.default_rng(0).uniform(-1, 1, (6, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "feeds.npz", input=x)
    expected = {"ir_cnn": _openvino_direct(root / "ir_cnn" / "1" / "model.xml", x),
                "pte_cnn": _executorch_direct(root / "pte_cnn" / "1" / "model.pte", x)}
    for model, reference in expected.items():
        metadata = requests.get(f"{server.url}/v2/models/{model}", timeout=10).json()
        assert metadata["platform"] == {"ir_cnn": "openvino", "pte_cnn": "modelport_executorch"}[model]
        assert metadata["inputs"][0]["shape"] == [-1, 3, 32, 32]
        run_client("infer", server.http, server.grpc, model, tmp_path / "feeds.npz", tmp_path / "out.npz")
        answers = np.load(tmp_path / "out.npz")
        modes = {key.split("/")[0] for key in answers.files}
        assert {"http-binary", "http-json", "grpc"} <= modes
        for mode in modes:
            np.testing.assert_allclose(answers[f"{mode}/output"], reference, rtol=1e-5, atol=1e-6, err_msg=f"{model} {mode}")


def test_a_bad_request_is_refused_before_the_runtime_runs(runtimes_server):
    server, _, _ = runtimes_server
    for model in ("ir_cnn", "pte_cnn"):
        before = _executions(server, model)
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 16, 16], "data": [0.0] * 768}]}
        answer = requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)
        assert answer.status_code == 400 and "input" in answer.json()["error"]
        assert _executions(server, model) == before


def _executions(server, model) -> int:
    return requests.get(f"{server.url}/v2/models/{model}/stats", timeout=10).json()["model_stats"][0]["execution_count"]
