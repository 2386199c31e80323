"""PyTorch -> ONNX on several architectures, each checked independently: torch eager vs ONNX Runtime."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests import zoo_torch
from tests.parity import assert_outputs_match

CASES = {
    # factory, --input-shape, feeds for the independent check
    "cnn_batchnorm": ("small_cnn", ["image:1,3,32,32"], lambda rng, b: {"image": rng.standard_normal((b, 3, 32, 32))}),
    "gru": ("gru_classifier", ["sequence:1,12,8"], lambda rng, b: {"sequence": rng.standard_normal((b, 12, 8))}),
    "lstm_int_tokens": ("lstm_tagger", ["tokens:1,9:int64"], lambda rng, b: {"tokens": rng.integers(0, 50, (b, 9))}),
    "transformer_encoder": ("tiny_transformer", ["x:1,7,32"], lambda rng, b: {"x": rng.standard_normal((b, 7, 32))}),
}


def _independent_check(factory: str, onnx_path, make_feeds, atol=1e-4):
    """Torch's own outputs against ONNX Runtime's, without modelport in between."""
    model = getattr(zoo_torch, factory)()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(42)
    for batch in (1, 3):
        feeds = {k: v.astype(np.float32 if v.dtype.kind == "f" else np.int64) for k, v in make_feeds(rng, batch).items()}
        with torch.no_grad():
            expected = model(*[torch.from_numpy(v) for v in feeds.values()])
        expected = expected if isinstance(expected, dict) else {"output": expected}
        names = [o.name for o in session.get_outputs()]
        got = dict(zip(names, session.run(None, feeds)))
        assert set(got) == set(expected)
        assert_outputs_match({n: v.numpy() for n, v in expected.items()}, got, atol=atol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_architecture_converts_with_parity(cli, tmp_path, case):
    factory, shapes, make_feeds = CASES[case]
    dst = tmp_path / f"{case}.onnx"
    args = ["convert", f"tests.zoo_torch:{factory}", dst, "--json"]
    for shape in shapes:
        args += ["--input-shape", shape]
    result = cli(*args)
    assert result.code == 0, result.err
    data = result.json()
    hop = data["hops"][0]
    assert data["passed"] and hop["exporter"] == "dynamo"
    assert hop["parity"]["batch_sizes"] == [1, 3] and hop["parity"]["samples"] == 6
    model = onnx.load(str(dst))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param, "batch should be dynamic"
    _independent_check(factory, dst, make_feeds)


def test_table_output_and_report(cli, tmp_path):
    dst, report = tmp_path / "cnn.onnx", tmp_path / "parity.json"
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "1,3,16,16", "--report", report)
    assert result.code == 0, result.err
    assert "max abs" in result.out and "cosine" in result.out and "parity passed" in result.out
    assert "Converting pytorch -> onnx" in result.err  # progress goes to stderr
    data = json.loads(report.read_text())
    out = data["hops"][0]["parity"]["outputs"][0]
    assert out["passed"] and out["max_abs"] < 1e-4 and out["cosine"] > 0.9999 and out["top1_agreement"] == 1.0


def test_convert_report_html(cli, tmp_path):
    report = tmp_path / "parity.html"
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "c.onnx", "--input-shape", "1,3,8,8",
                 "--report", report)
    assert result.code == 0, result.err
    text = report.read_text()
    assert "PASSED" in text and 'id="outputs"' in text and "data:image/png;base64," in text


def test_opset_and_fixed_batch(cli, tmp_path):
    dst = tmp_path / "cnn.onnx"
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "2,3,16,16", "--opset", "18",
                 "--fixed-batch", "--json")
    assert result.code == 0, result.err
    model = onnx.load(str(dst))
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [2]


def test_torchscript_source_uses_fallback_exporter(cli, tmp_path):
    """A scripted Python loop (prim::Loop) that torch.export cannot take: the TorchScript exporter."""
    source = tmp_path / "loop.pt"
    torch.jit.script(zoo_torch.scripted_loop()).save(str(source))
    dst = tmp_path / "loop.onnx"
    result = cli("convert", source, dst, "--input-shape", "1,12,8", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["exporter"] == "torchscript"
    _independent_check("scripted_loop", dst, CASES["gru"][2])


def test_scripted_gru_keeps_a_dynamic_batch(cli, tmp_path):
    """torch.export captures the scripted GRU only at a fixed batch: the TorchScript exporter, which
    keeps the batch dynamic, is preferred to that."""
    source = tmp_path / "gru.pt"
    torch.jit.script(zoo_torch.gru_classifier()).save(str(source))
    dst = tmp_path / "gru.onnx"
    result = cli("convert", source, dst, "--input-shape", "1,12,8", "--json")
    assert result.code == 0, result.err
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [1, 3]
    _independent_check("gru_classifier", dst, CASES["gru"][2])


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_traced_torchscript_with_attention_converts_through_torch_export(cli, tmp_path):
    """Traced TorchScript holding MultiheadAttention, GroupNorm, ConvTranspose2d and a bilinear
    resize: the TorchScript exporter fails on it ("unknown rank"); it goes through torch's
    TorchScript -> ExportedProgram converter and the dynamo exporter, with a dynamic batch."""
    model = zoo_torch.attention_block()
    source = tmp_path / "model_ts.pt"
    torch.jit.trace(model, torch.rand(2, 3, 32, 32), check_trace=False).save(str(source))
    dst = tmp_path / "model.onnx"
    result = cli("convert", source, dst, "--input-shape", "x:2,3,32,32", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] and data["hops"][0]["exporter"] == "dynamo"
    assert data["hops"][0]["parity"]["batch_sizes"] == [1, 3]
    _independent_check("attention_block", dst, lambda rng, b: {"x": rng.standard_normal((b, 3, 32, 32))})
    with torch.no_grad():
        scale = model(torch.rand(3, 3, 32, 32)).abs().max().item()
    assert scale > 1e-2, "the outputs are near zero: the check above would prove nothing"


def test_exported_program_source(cli, tmp_path):
    program = torch.export.export(zoo_torch.small_cnn(), (torch.rand(2, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    source = tmp_path / "cnn.pt2"
    torch.export.save(program, str(source))
    dst = tmp_path / "cnn.onnx"
    assert cli("convert", source, dst).code == 0
    _independent_check("small_cnn", dst, CASES["cnn_batchnorm"][2])


@pytest.mark.slow
def test_resnet18_parity_at_1e4(cli, tmp_path):
    dst = tmp_path / "resnet18.onnx"
    result = cli("convert", "tests.zoo_torch:resnet18", dst, "--input-shape", "image:1,3,224,224",
                 "--atol", "1e-4", "--samples", "1", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]
    _independent_check("resnet18", dst, lambda rng, b: {"image": rng.standard_normal((b, 3, 224, 224))})
