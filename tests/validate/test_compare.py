"""Parity metrics on arrays whose differences are known, and the staged, collect-everything report."""
import json

import numpy as np
import pytest

from modelport.validate.compare import ParityAccumulator, ParityReport, match_names
from modelport.validate.inputs import generate_feeds, load_feeds
from modelport.validate.tolerances import DEFAULT_TOLERANCES, Tolerance, tolerances_for
from modelport.errors import UsageError
from modelport.tensors import TensorSpec


def _report(ref, cand, atol=1e-4, rtol=1e-3, relative_to="element"):
    acc = ParityAccumulator(match_names(list(ref), list(cand))[0], Tolerance(atol, rtol, relative_to))
    acc.add(ref, cand)
    report = ParityReport("ref", "cand", atol, rtol, 1, [1], relative_to=relative_to)
    report.outputs = acc.finish()
    return report


def test_metrics_match_hand_computation():
    ref = {"y": np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)}
    cand = {"y": np.array([[1.0, 2.0, 3.0, 4.5]], np.float32)}
    out = _report(ref, cand).outputs[0]
    assert out.max_abs == pytest.approx(0.5)
    assert out.mean_abs == pytest.approx(0.125)
    assert out.rmse == pytest.approx(np.sqrt(0.25 / 4))
    assert out.max_rel == pytest.approx(0.125)
    assert out.out_of_tolerance == pytest.approx(0.25)
    assert out.cosine == pytest.approx(np.dot([1, 2, 3, 4], [1, 2, 3, 4.5]) / (np.linalg.norm([1, 2, 3, 4]) * np.linalg.norm([1, 2, 3, 4.5])))
    assert out.top1_agreement == 1.0
    assert not out.passed and "1 of 4 values" in out.problems[0]


def test_within_tolerance_passes_and_bool():
    ref = {"y": np.linspace(-1, 1, 50, dtype=np.float32).reshape(5, 10)}
    cand = {"y": ref["y"] + 5e-5}
    report = _report(ref, cand)
    assert report and report.passed and report.outputs[0].top5_agreement == 1.0
    assert "parity passed" in report.summary()


def test_every_failure_is_collected():
    ref = {"a": np.zeros((2, 3), np.float32), "b": np.ones(4, np.float32), "c": np.array([1.0, np.nan], np.float32)}
    cand = {"a": np.ones((2, 3), np.float32), "b": np.ones(5, np.float32), "c": np.array([np.nan, 1.0], np.float32)}
    report = _report(ref, cand)
    assert not report
    failures = report.all_failures()
    assert any("'a'" in f and "beyond tolerance" in f for f in failures)
    assert any("'b'" in f and "shape [5]" in f for f in failures)
    assert any("'c'" in f and "NaN/Inf" in f for f in failures)
    text = report.summary()
    assert text.count("  - ") == 3


def test_scale_rule_judges_small_values_by_the_output_scale():
    ref = {"y": np.array([[10.0, 0.01]], np.float32)}
    cand = {"y": np.array([[10.0, 0.03]], np.float32)}  # 200% off a tiny value, 0.2% of the scale
    assert not _report(ref, cand, atol=0, rtol=1e-2)
    scaled = _report(ref, cand, atol=0, rtol=1e-2, relative_to="scale")
    assert scaled and "max |reference|" in scaled.summary()
    assert not _report(ref, {"y": np.array([[10.2, 0.01]], np.float32)}, atol=0, rtol=1e-2, relative_to="scale")


def test_outputs_matched_by_position_with_warning():
    pairs, warnings = match_names(["prob", "box"], ["out0", "out1"])
    assert pairs == [("prob", "out0"), ("box", "out1")] and "position" in warnings[0]


def test_report_json_is_strict_json():
    report = _report({"y": np.ones(3, np.float32)}, {"y": np.ones(3, np.float32)})
    data = json.loads(report.to_json())
    assert data["schema_version"] == 1 and data["passed"] is True and data["outputs"][0]["passed"] is True


def test_generated_feeds_are_seeded_and_dtype_aware():
    specs = [TensorSpec("x", (None, 3), np.float32), TensorSpec("ids", (None, None), np.int64),
             TensorSpec("mask", (2,), np.bool_)]
    a = generate_feeds(specs, seed=1, batch=3, dims={"ids": 5})
    b = generate_feeds(specs, seed=1, batch=3, dims={"ids": 5})
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["x"].shape == (3, 3) and a["x"].dtype == np.float32
    assert a["ids"].shape == (3, 5) and a["ids"].dtype == np.int64 and a["ids"].min() >= 0
    assert a["mask"].dtype == np.bool_


def test_load_feeds_refuses_pickles(tmp_path):
    path = tmp_path / "feeds.npz"
    np.savez(path, x=np.array([object()], dtype=object))
    with pytest.raises(Exception, match="cannot read inputs"):
        load_feeds(path)
    np.savez(path, x=np.ones(2))
    assert load_feeds(path)["x"].tolist() == [1.0, 1.0]


def test_tolerances_are_data():
    assert tolerances_for("fp32") == Tolerance(**DEFAULT_TOLERANCES["fp32"])
    assert tolerances_for("fp16", atol=0.5) == Tolerance(0.5, DEFAULT_TOLERANCES["fp16"]["rtol"], "scale")
    assert tolerances_for("fp32", relative_to="scale").relative_to == "scale"
    with pytest.raises(UsageError, match="element or scale"):
        tolerances_for("fp32", relative_to="nearby")
    with pytest.raises(UsageError, match="unknown precision 'fp8'"):
        tolerances_for("fp8")


# -- the fp32 rule: on the output's scale, raised to the reference's own noise floor -------------------
def _adaptive_report(ref, cand, moved):
    tolerance = tolerances_for("fp32")
    acc = ParityAccumulator(match_names(list(ref), list(cand))[0], tolerance)
    acc.add(ref, cand)
    acc.add_noise(ref, moved)
    return acc.finish()[0]


def test_fp32_default_is_the_scale_rule_raised_by_the_noise_floor():
    tolerance = tolerances_for("fp32")
    assert tolerance.relative_to == "scale" and tolerance.adaptive
    ref = {"y": np.linspace(-4, 4, 40).reshape(4, 10)}
    off = {"y": ref["y"] + 4e-4}  # 1e-4 of the scale: 5x the floor rtol of 2e-5
    quiet = _adaptive_report(ref, off, {"y": ref["y"] + 4e-7})  # the reference hardly moves: 1e-7
    assert not quiet.passed and quiet.rtol == pytest.approx(2e-5) and quiet.noise_floor == pytest.approx(1e-7)
    noisy = _adaptive_report(ref, off, {"y": ref["y"] + 2e-4})  # one ulp in moves it by 5e-5 of its scale
    assert noisy.passed and noisy.rtol == pytest.approx(5e-4)
    # However noisy the reference, the rule never allows more than NOISE_CEILING of the scale.
    wild = _adaptive_report(ref, {"y": ref["y"] + 0.04}, {"y": ref["y"] + 4.0})
    assert not wild.passed and wild.rtol == pytest.approx(1e-3)


def test_a_tolerance_the_user_sets_does_not_adapt():
    assert not tolerances_for("fp32", rtol=1e-4).adaptive
    assert not tolerances_for("fp32", relative_to="element").adaptive
    assert tolerances_for("fp32", atol=1e-3).adaptive  # atol alone keeps the rtol rule
    assert not any(tolerances_for(p).adaptive for p in ("fp16", "int8", "uint8-weights"))


def test_integer_outputs_must_be_equal():
    ref = {"ids": np.array([[50000, 3]], np.int64)}
    report = _report(ref, {"ids": np.array([[50001, 3]], np.int64)}, atol=1, rtol=1e-3, relative_to="scale")
    assert not report and "1 of 2 values" in report.outputs[0].problems[0]
    assert _report(ref, {"ids": ref["ids"].copy()}, relative_to="scale")


def test_generated_feeds_follow_the_declared_range():
    from modelport.tensors import ValueRange
    from modelport.validate.inputs import describe_generated, parse_input_ranges
    spec = TensorSpec("pixels", (None, 4, 4, 3), np.float32, value_range=ValueRange(0, 255, "a Rescaling layer"))
    feed = generate_feeds([spec], seed=0, batch=2)["pixels"]
    assert feed.min() >= 0 and feed.max() <= 255 and feed.max() > 200
    assert describe_generated(spec) == "uniform in [0, 255] (a Rescaling layer)"
    assert "standard normal" in describe_generated(TensorSpec("x", (1, 3), np.float32))
    assert parse_input_ranges(["0,255", "mask:-1,1"]) == {"": ValueRange(0, 255), "mask": ValueRange(-1, 1)}
    for bad in ("255,0", "0-255", "x:1", "a:b,c"):
        with pytest.raises(UsageError, match="--input-range"):
            parse_input_ranges([bad])


def test_an_explicit_layout_change_leaves_inputs_it_does_not_fit_alone():
    from modelport.validate.layout import layout_permutation
    assert layout_permutation((None, 3, 32, 32), (None, 32, 32, 3), "NCHW:NHWC") == (0, 2, 3, 1)
    # Whisper's mel features beside an image-free model's NHWC hop: [?, 16, 64] stays as it is.
    assert layout_permutation((None, 16, 64), (None, 16, 64), "NCHW:NHWC") is None
    assert layout_permutation((None, 4, 4, 4), (None, 4, 4, 4), "NCHW:NHWC") == (0, 2, 3, 1)  # ambiguous: as told
