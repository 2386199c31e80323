"""Triton's ensembles: a `platform: "ensemble"` config runs a preprocessing model, a trained classifier
(the demo's stripes CNN) and a softmax as one pipeline server-side, answering tritonclient over HTTP and gRPC exactly as the three
models chained in ONNX Runtime do; its metadata and statistics are the ensemble's, each step counted in
its own model; an ensemble that cannot run (a step model missing, a tensor nothing makes, steps
waiting on each other) is not loaded, and its reason says why."""
from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.serve.conftest import ort_outputs, repository_of, run_client, start_server

PIPELINE = """name: "pipeline"
platform: "ensemble"
max_batch_size: 8
input [ { name: "RAW" data_type: TYPE_UINT8 dims: [ 32, 32, 3 ] } ]
output [ { name: "PROBS" data_type: TYPE_FP32 dims: [ 3 ] } ]
ensemble_scheduling { step [
  { model_name: "pre" model_version: -1 input_map { key: "raw" value: "RAW" }
    output_map { key: "normalized" value: "pixels" } },
  { model_name: "cnn" model_version: -1 input_map { key: "input" value: "pixels" }
    output_map { key: "output" value: "logits" } },
  { model_name: "post" model_version: -1 input_map { key: "logits" value: "logits" }
    output_map { key: "probabilities" value: "PROBS" } } ] }
"""


def _onnx(path, nodes, inputs, outputs, initializers=()):
    import onnx
    from onnx import helper
    model = helper.make_model(helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _pre(path):
    """uint8 NHWC pixels -> float NCHW in [-1, 1]."""
    from onnx import TensorProto, helper
    return _onnx(path, [helper.make_node("Cast", ["raw"], ["f"], to=TensorProto.FLOAT),
                        helper.make_node("Sub", ["f", "half"], ["centred"]),
                        helper.make_node("Div", ["centred", "half"], ["scaled"]),
                        helper.make_node("Transpose", ["scaled"], ["normalized"], perm=[0, 3, 1, 2])],
                 [helper.make_tensor_value_info("raw", TensorProto.UINT8, ["batch", 32, 32, 3])],
                 [helper.make_tensor_value_info("normalized", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                 [helper.make_tensor("half", TensorProto.FLOAT, [], [127.5])])


def _post(path):
    from onnx import TensorProto, helper
    return _onnx(path, [helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
                 [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
                 [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])])


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    import modelport
    from modelport import demo_classifier
    folder = tmp_path_factory.mktemp("steps")
    demo_classifier.save_program(demo_classifier.trained_cnn(), folder / "cnn.pt2")
    modelport.convert(folder / "cnn.pt2", folder / "cnn.onnx")
    return {"pre": _pre(folder / "pre.onnx"), "cnn": folder / "cnn.onnx", "post": _post(folder / "post.onnx")}


def _repository(root, steps, pipeline):
    repository_of(root, steps["cnn"], {"cnn": None})
    repository_of(root, steps["pre"], {"pre": None})
    repository_of(root, steps["post"], {"post": None})
    (root / "pipeline" / "1").mkdir(parents=True)
    (root / "pipeline" / "config.pbtxt").write_text(pipeline)
    return root


def test_an_ensemble_runs_its_steps_as_onnx_runtime_chains_them(steps, tmp_path):
    root = _repository(tmp_path / "repo", steps, PIPELINE)
    server = start_server([root], tmp_path / "server.log")
    try:
        from modelport import demo_classifier
        rng = np.random.default_rng(5)
        kinds = [0, 1, 2, 1]
        raw = np.stack([demo_classifier.stripes(kind, rng) for kind in kinds])   # uint8 HWC pictures
        pixels = ort_outputs(steps["pre"], {"raw": raw})["normalized"]
        logits = ort_outputs(steps["cnn"], {"input": pixels})["output"]
        want = ort_outputs(steps["post"], {"logits": logits})["probabilities"]
        np.savez(tmp_path / "in.npz", RAW=raw)
        result = run_client("infer", server.http, server.grpc, "pipeline", tmp_path / "in.npz", tmp_path / "out.npz")
        answers = np.load(tmp_path / "out.npz")
        for mode in ("http-binary", "grpc"):
            assert mode in result["modes"]
            np.testing.assert_allclose(answers[f"{mode}/PROBS"], want, rtol=0, atol=1e-6, err_msg=mode)
        assert list(want.argmax(axis=1)) == kinds and float(want.max(axis=1).min()) > 0.8   # it classifies them
        metadata = requests.get(f"{server.url}/v2/models/pipeline", timeout=10).json()
        assert metadata["platform"] == "ensemble"
        assert metadata["inputs"] == [{"name": "RAW", "datatype": "UINT8", "shape": [-1, 32, 32, 3]}]
        stats = {s["name"]: s for s in requests.get(f"{server.url}/v2/models/stats", timeout=10).json()["model_stats"]}
        requests_sent = len(result["modes"])
        assert stats["pipeline"]["inference_stats"]["success"]["count"] == requests_sent
        for step in ("pre", "cnn", "post"):
            assert stats[step]["inference_stats"]["success"]["count"] == requests_sent, (step, stats[step])
        bad = requests.post(f"{server.url}/v2/models/pipeline/infer", json={"inputs": [
            {"name": "RAW", "datatype": "FP32", "shape": [1, 32, 32, 3], "data": [0.0] * 3072}]}, timeout=10)
        assert bad.status_code == 400 and "UINT8" in bad.json()["error"]
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("change, reason", [
    (("model_name: \"post\"", "model_name: \"absent\""), "'absent', which is not in the repository"),
    (("input_map { key: \"logits\" value: \"logits\" }", "input_map { key: \"logits\" value: \"scores\" }"),
     "no input or step makes ['scores']"),
    (("input_map { key: \"raw\" value: \"RAW\" }", "input_map { key: \"raw\" value: \"logits\" }"),
     "wait on each other in a cycle"),
])
def test_an_ensemble_that_cannot_run_is_not_loaded(steps, tmp_path, change, reason):
    root = _repository(tmp_path / "repo", steps, PIPELINE.replace(*change))
    server = start_server([root], tmp_path / "server.log")
    try:
        index = {row["name"]: row for row in
                 requests.post(f"{server.url}/v2/repository/index", json={}, timeout=10).json()}
        assert index["cnn"]["state"] == "READY"
        assert index["pipeline"]["state"] == "UNAVAILABLE" and reason in index["pipeline"]["reason"], index
    finally:
        assert server.stop() == 0, server.log()
