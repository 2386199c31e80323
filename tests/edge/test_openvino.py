"""OpenVINO IR: `convert model.onnx model.xml` (fp32 weights unless --dtype fp16, whatever
save_model's own default) and `edge openvino` (fp32, fp16, int8 by NNCF), every file run by
OpenVINO's CPU plugin at f32 inference precision against the source."""
from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.edge.bundle import sha256_of
from tests.conftest import listing
from tests.edge.conftest import NORMALIZE

pytest.importorskip("openvino")


def _constant_types(xml):
    import openvino as ov
    model = ov.Core().read_model(str(xml))
    return {op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"
            and op.get_output_size() and len(op.get_output_shape(0)) >= 2}  # weight tensors, not shapes


def test_convert_writes_fp32_weights_and_fp16_only_when_asked(cli, tmp_path, stripes_cnn):
    result = cli("convert", stripes_cnn / "cnn.pt2", tmp_path / "cnn.xml", "--json")
    assert result.code == 0, result.err
    hops = result.json()["hops"]
    assert [h["edge"] for h in hops] == ["pytorch->onnx", "onnx->openvino"] and hops[-1]["parity"]["passed"]
    assert (tmp_path / "cnn.bin").is_file() and _constant_types(tmp_path / "cnn.xml") == {"f32"}
    half = cli("convert", stripes_cnn / "cnn.pt2", tmp_path / "half.xml", "--dtype", "fp16", "--json")
    assert half.code == 0, half.err
    assert half.json()["hops"][-1]["parity"]["precision"] == "fp16" and _constant_types(tmp_path / "half.xml") == {"f16"}
    assert (tmp_path / "half.bin").stat().st_size < 0.6 * (tmp_path / "cnn.bin").stat().st_size
    # The IR is a model like any other: validated against the source, and a 1% conv defect fails it.
    assert cli("validate", stripes_cnn / "cnn.pt2", tmp_path / "cnn.xml").code == 0
    defect = cli("validate", stripes_cnn / "defect.pt2", tmp_path / "cnn.xml")
    assert defect.code == 1 and "FAIL" in defect.out


def test_sessions_compute_in_f32_though_the_cpu_plugin_would_pick_bf16(tmp_path, stripes_cnn, cli):
    assert cli("convert", stripes_cnn / "cnn.pt2", tmp_path / "cnn.xml").code == 0
    from modelport.formats import open_model
    with open_model(tmp_path / "cnn.xml") as session:
        assert session.format_name == "openvino" and session.precision == "fp32"
        assert str(session._compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")


def test_edge_bundle_fp32_fp16_int8_each_checked(cli, tmp_path, stripes_cnn):
    out = tmp_path / "bundle"
    result = cli("edge", "openvino", stripes_cnn / "cnn.pt2", out, "--quantize", "fp32,fp16,int8",
                 "--calibration", stripes_cnn / "images", *NORMALIZE, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["pytorch->onnx"]
    fp32, fp16, int8 = data["models"]
    assert [m["passed"] for m in data["models"]] == [True, True, True]
    assert fp32["report"]["precision"] == "fp32" and fp16["report"]["precision"] == "fp16"
    assert "FakeQuantize" in int8["ops"] and int8["report"]["outputs"][0]["top1_agreement"] >= 0.98
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "openvino" and manifest["inference_precision"] == "f32"
    assert manifest["files"]["model_int8.bin"] == sha256_of(out / "model_int8.bin")
    from modelport.formats import open_model
    with open_model(out / "model_fp32.xml") as session:
        got = session.run({"input": np.load(out / "inputs.npy")})["output"]
    np.testing.assert_allclose(got, np.load(out / "expected.npy"), atol=1e-5, rtol=1e-4)
    # On the labelled images the int8 IR keeps the classes (its values are judged by validate's int8
    # rule, which NNCF's per-tensor activations on this tiny CNN may exceed: the classes are the point).
    measured = cli("validate", stripes_cnn / "cnn.pt2", out / "model_int8.xml", "--data", stripes_cnn / "images",
                   *NORMALIZE, "--json").json()["dataset"]
    assert measured["agreement_top1"] >= 0.95 and measured["candidate_top1"] >= 0.9


@pytest.mark.slow
def test_a_keras_classifier_reaches_openvino_through_onnx(cli, tmp_path, keras_cnn):
    source, calibration = keras_cnn
    result = cli("edge", "openvino", source, tmp_path / "bundle", "--quantize", "fp32,int8", "--calibration",
                 calibration, "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["conversion"]] == ["keras->onnx"]
    assert [m["passed"] for m in result.json()["models"]] == [True, True]


def test_bad_input_is_exit_2_and_writes_nothing(cli, tmp_path, stripes_cnn):
    before = listing(tmp_path)
    refused = cli("edge", "openvino", stripes_cnn / "cnn.pt2", tmp_path / "bundle", "--quantize", "int8")
    assert refused.code == 2 and "needs calibration data" in refused.err
    refused = cli("convert", stripes_cnn / "cnn.pt2", tmp_path / "cnn.onnx", "--dtype", "fp16")
    assert refused.code == 2 and "--dtype goes with" in refused.err
    assert listing(tmp_path) == before
    assert cli("convert", stripes_cnn / "cnn.pt2", tmp_path / "cnn.xml").code == 0
    (tmp_path / "cnn.bin").rename(tmp_path / "elsewhere.bin")
    lone = cli("info", tmp_path / "cnn.xml")
    assert lone.code == 2 and "'cnn.bin'" in lone.err
    (tmp_path / "page.xml").write_text("<html><body>Not found</body></html>")
    page = cli("info", tmp_path / "page.xml")
    assert page.code == 2 and "HTML/XML page" in page.err


def test_without_openvino_installed_the_pip_line_is_given(tmp_path, stripes_cnn):
    import subprocess
    import sys
    for args in (["edge", "openvino", str(stripes_cnn / "cnn.pt2"), str(tmp_path / "out")],
                 ["convert", str(stripes_cnn / "cnn.pt2"), str(tmp_path / "out.xml")]):
        code = ("import sys; sys.modules['openvino'] = None\n"
                "from modelport.cli import main\n"
                f"sys.exit(main({args!r}))")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert run.returncode == 2 and "modelport[openvino]" in run.stderr, run.stderr
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.xml").exists()

