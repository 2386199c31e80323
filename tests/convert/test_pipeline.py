"""The conversion pipeline on top of the one comparator: per-hop tolerance from the candidate's
precision, hop reports with formats and timings, --no-check opening nothing, multi-hop reports."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.convert import EDGES
from modelport.convert.registry import Edge
from modelport.formats import FORMATS

FP16_SCALE = 1.002  # a 0.2 % error: beyond fp32 tolerances (rtol 1e-3), within fp16's (1e-2 of the scale)


def _scale_output_in_fp16(path) -> None:
    """Rewrite an exported ONNX so that its output is multiplied by an fp16 constant: an fp16 model
    to ONNX Runtime and to precision detection, off by 0.2 %."""
    model = onnx.load(str(path))
    output = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{output}_fp32" if o == output else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(FP16_SCALE, np.float16), "scale_fp16"))
    model.graph.node.extend([
        helper.make_node("Cast", ["scale_fp16"], ["scale_fp32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{output}_fp32", "scale_fp32"], [output])])
    onnx.save(model, str(path))


@pytest.fixture
def fp16_edge(monkeypatch):
    """The pytorch->onnx edge, followed by the fp16 rewrite above."""
    real = EDGES[("pytorch", "onnx")]

    def export_then_fp16(session, dst, options):
        real.func(session, dst, options)
        _scale_output_in_fp16(dst)
        return dst
    monkeypatch.setitem(EDGES, ("pytorch", "onnx"), Edge("pytorch", "onnx", export_then_fp16, "export, then fp16"))


def test_hop_tolerance_comes_from_the_candidate_precision(cli, tmp_path, fp16_edge):
    dst = tmp_path / "cnn.onnx"
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "image:1,3,32,32", "--json")
    assert result.code == 0, result.err
    parity = result.json()["hops"][0]["parity"]
    assert parity["precision"] == "fp16" and parity["relative_to"] == "scale" and parity["rtol"] == 1e-2
    assert parity["reference_format"] == "pytorch" and parity["candidate_format"] == "onnx"
    assert {"convert", "open_candidate", "compare"} <= set(parity["seconds"])
    assert parity["outputs"][0]["max_rel"] > 1e-3  # the 0.2 % is there, and fp16 tolerances accept it
    # The same model judged at fp32 (as `modelport validate --precision fp32` would) fails.
    strict = cli("validate", "tests.zoo_torch:small_cnn", dst, "--input-shape", "image:1,3,32,32",
                 "--precision", "fp32", "--json")
    assert strict.code == 1 and strict.json()["precision"] == "fp32"


def test_no_check_opens_no_candidate(cli, tmp_path, monkeypatch):
    opened = []
    onnx_format = FORMATS["onnx"]
    real_opener = onnx_format.opener
    monkeypatch.setattr(onnx_format, "opener", lambda path, **kw: opened.append(path) or real_opener(path, **kw))
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "c.onnx", "--input-shape", "1,3,8,8",
                 "--no-check", "--json")
    assert result.code == 0, result.err
    assert opened == [] and result.json()["hops"][0]["unchecked"] == "--no-check"
    assert cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "d.onnx", "--input-shape", "1,3,8,8").code == 0
    assert len(opened) == 1  # with the check, the artifact is opened once, to run it


def test_multi_hop_html_report_shows_every_hop(tmp_path, keras_models):
    """Two comparisons rendered as the hops of one conversion: one section each, numbered ids."""
    from modelport import validate
    from modelport.validate.report import write_report
    first = validate(keras_models["two_io.keras"], keras_models["two_io.h5"])
    second = validate(keras_models["two_io.h5"], keras_models["two_io_savedmodel"])
    report = tmp_path / "hops.html"
    write_report(report, [("keras->keras", first), ("keras->savedmodel", second)], title="two hops")
    text = report.read_text()
    assert "Hop 1: keras-&gt;keras" in text and "Hop 2: keras-&gt;savedmodel" in text
    assert 'id="outputs"' in text and 'id="outputs-2"' in text and text.count("verdict pass") == 3


def test_optimize_is_one_more_hop_checked_against_the_unoptimized_model(cli, tmp_path, keras_models):
    """--optimize: onnxslim after tf2onnx, and that hop compared (ORT vs ORT) like any other."""
    import onnxruntime as ort
    plain, slim = tmp_path / "plain.onnx", tmp_path / "slim.onnx"
    assert cli("convert", keras_models["cnn_bn.keras"], plain).code == 0
    result = cli("convert", keras_models["cnn_bn.keras"], slim, "--optimize", "--json")
    assert result.code == 0, result.err
    first, second = result.json()["hops"]
    assert first["edge"] == "keras->onnx" and first["artifact"] is None  # intermediate, not kept
    assert second["edge"] == "onnx->onnx" and second["exporter"].startswith("onnxslim")
    assert second["parity"]["reference_format"] == second["parity"]["candidate_format"] == "onnx"
    assert second["parity"]["passed"] and second["artifact"] == str(slim)
    assert len(onnx.load(str(slim)).graph.node) < len(onnx.load(str(plain)).graph.node)
    # Independently: the optimized model computes what the plain one does.
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (plain, slim)}
    outputs = {p: s.run(None, {s.get_inputs()[0].name: x})[0] for p, s in run.items()}
    from tests.parity import assert_outputs_match
    assert_outputs_match({"logits": outputs[plain]}, {"logits": outputs[slim]})
