"""modelport edge ort: ONNX Runtime Mobile's format, converted by ORT's own tool and run in ORT
against the source; the bundle's operator config is what a reduced ORT build takes."""
from __future__ import annotations

import json

import numpy as np

from modelport.edge.bundle import sha256_of


def test_pytorch_source_becomes_an_ort_bundle_checked_in_ort(cli, tmp_path):
    out = tmp_path / "bundle"
    result = cli("edge", "ort", "tests.zoo_torch:small_cnn", out, "--input-shape", "image:1,3,32,32", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["pytorch->onnx"] and data["passed"]
    assert (out / "model.ort").read_bytes()[4:8] == b"ORTM"
    config = (out / "required_operators.config").read_text()
    assert "ai.onnx;" in config and "Conv" in config
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["models"]
    assert entry["sha256"] == sha256_of(out / "model.ort") and "ai.onnx:Gemm" in entry["ops"]
    assert "com.microsoft:FusedConv" in entry["ops"]  # optimizations fixed for the CPU: Conv + Relu fused
    assert manifest["files"]["required_operators.config"] == sha256_of(out / "required_operators.config")
    # The .ort file is a model modelport opens like any other: validate it against PyTorch.
    check = cli("validate", "tests.zoo_torch:small_cnn", out / "model.ort", "--input-shape", "image:1,3,32,32")
    assert check.code == 0, check.err
    from modelport.formats import open_model
    golden = np.load(out / "inputs.npy")
    with open_model(out / "model.ort") as session:
        got = next(iter(session.run({session.inputs[0].name: golden}).values()))
    np.testing.assert_allclose(got, np.load(out / "expected.npy"), atol=1e-4, rtol=1e-4)


def test_onnx_source_with_given_inputs_and_a_bad_destination(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weight = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["y"])],
                              "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                              [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "mlp.onnx"))
    np.savez(tmp_path / "feeds.npz", x=np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32))
    result = cli("edge", "ort", tmp_path / "mlp.onnx", tmp_path / "bundle", "--inputs", tmp_path / "feeds.npz", "--json")
    assert result.code == 0, result.err
    assert result.json()["conversion"] == [] and result.json()["models"][0]["report"]["batch_sizes"] == [5]
    (tmp_path / "file").write_text("in the way")
    refused = cli("edge", "ort", tmp_path / "mlp.onnx", tmp_path / "file")
    assert refused.code == 2 and "is a file" in refused.err and (tmp_path / "file").read_text() == "in the way"
