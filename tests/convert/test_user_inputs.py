"""What users give on the command line: dynamic dims, input names, dtypes, fixed batches, and the
mistakes in their models or environment, each reported as theirs to fix (exit 2)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests import zoo_hf, zoo_torch
from tests.parity import assert_outputs_match


def _dims(path) -> dict[str, list]:
    model = onnx.load(str(path))
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)}


def test_minus_one_means_a_dynamic_dim(cli, tmp_path):
    """x:1,3,-1,-1 once exported height and width 1; they are symbolic now and run at any size."""
    dst = tmp_path / "cnn.onnx"
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "image:1,3,-1,-1", "--json")
    assert result.code == 0, result.err
    assert _dims(dst)["image"] == ["batch", 3, "image_dim2", "image_dim3"]
    model, session = zoo_torch.small_cnn(), ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    for size in (20, 37):
        x = np.random.default_rng(size).standard_normal((2, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        assert_outputs_match({"output": expected}, {"output": session.run(None, {"image": x})[0]})


def test_named_dims_stay_dynamic_and_are_checked_at_two_sizes(cli, tmp_path, monkeypatch):
    """BERT with input_ids and token_type_ids (the attention mask skipped: passed by keyword)."""
    from modelport.validate import inputs
    seen = []
    real = inputs.generate_feeds
    monkeypatch.setattr("modelport.validate.parity.generate_feeds",
                        lambda specs, **kw: seen.append(kw["default_dim"]) or real(specs, **kw))
    dst = tmp_path / "bert.onnx"
    result = cli("convert", "tests.zoo_hf:bert", dst, "--input-shape", "input_ids:1,seq:int64",
                 "--input-shape", "token_type_ids:1,seq:int64", "--json")
    assert result.code == 0, result.err
    assert sorted(set(seen)) == [8, 12]  # the sequence length took two sizes in the check
    dims = _dims(dst)
    assert dims["input_ids"] == dims["token_type_ids"] == ["batch", "seq"]
    assert dims["last_hidden_state"] == ["batch", "seq", 32]
    model, session = zoo_hf.bert(), ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    for length in (5, 23):
        ids = np.random.default_rng(length).integers(0, 100, (2, length))
        types = np.random.default_rng(length + 1).integers(0, 2, (2, length))
        with torch.no_grad():
            expected = model(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(types))
        got = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"input_ids": ids, "token_type_ids": types})))
        assert_outputs_match({k: v.numpy() for k, v in expected.items()}, got)


def test_gpt2_cache_is_left_out_with_a_warning(cli, tmp_path):
    dst = tmp_path / "gpt2.onnx"
    result = cli("convert", "tests.zoo_hf:gpt2", dst, "--input-shape", "input_ids:1,seq:int64", "--json")
    assert result.code == 0, result.err
    assert [o["candidate_name"] for o in result.json()["hops"][0]["parity"]["outputs"]] == ["logits"]
    assert any("use_cache" in w for w in result.json()["warnings"])


@pytest.mark.parametrize("args,says", [
    (["tests.zoo_hf:bert"], "takes only optional arguments"),
    (["tests.zoo_hf:bert", "--input-shape", "input_idz:1,8:int64"], "did you mean 'input_ids'"),
    (["tests.zoo_torch:small_cnn", "--input-shape", "imgae:1,3,8,8", "--input-shape", "extra:1,4"], "does not take"),
    (["tests.zoo_torch:broken_factory"], "raised RuntimeError: checkpoint directory not configured"),
    (["tests.zoo_torch:small_cnn", "--input-shape", "image:1,3,8"], "fails on inputs shaped"),
    (["tests.zoo_torch:small_cnn", "--input-shape", "image:1,3,8,8:complex_thing"], "unknown dtype"),
    (["tests.zoo_torch:small_cnn", "--input-shape", "image:1,3,8,8", "--opset", "99"], "writes ONNX opsets 7 to"),
])
def test_mistakes_in_the_model_or_flags_are_exit_2(cli, tmp_path, args, says):
    dst = tmp_path / "out.onnx"
    result = cli("convert", args[0], dst, *args[1:])
    assert result.code == 2, result.err
    assert says in result.err and "internal error" not in result.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("destination,says", [("/dev/null/out.onnx", "cannot write"),  # a file in the way
                                              ("/sys/out.onnx", "Operation not permitted")])  # EPERM, even for root
def test_unwritable_destination_is_exit_2(cli, destination, says):
    result = cli("convert", "tests.zoo_torch:small_cnn", destination, "--input-shape", "1,3,8,8")
    assert result.code == 2 and says in result.err, result.err


@pytest.mark.parametrize("name", ["cnn_bn.keras", "cnn_bn.tflite", "two_io_savedmodel"])
def test_fixed_batch_pins_keras_savedmodel_and_tflite(cli, keras_models, tmp_path, name):
    dst = tmp_path / "fixed.onnx"
    result = cli("convert", keras_models[name], dst, "--fixed-batch", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [1]
    assert all(dims[0] == 1 for dims in _dims(dst).values())


def test_opset_beyond_tf2onnx_is_exit_2_naming_the_range(cli, keras_models, tmp_path):
    result = cli("convert", keras_models["cnn_bn.keras"], tmp_path / "x.onnx", "--opset", "20")
    assert result.code == 2 and "keras->onnx writes ONNX opsets 7 to 18" in result.err
    assert "make_sure" not in result.err and list(tmp_path.iterdir()) == []


def test_opset_below_18_uses_the_torchscript_exporter(cli, tmp_path):
    dst = tmp_path / "cnn12.onnx"
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "1,3,8,8", "--opset", "12", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["exporter"] == "torchscript"
    assert {o.domain: o.version for o in onnx.load(str(dst)).opset_import}[""] == 12
