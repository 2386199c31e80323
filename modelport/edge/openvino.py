"""``modelport edge openvino``: OpenVINO IR for Intel CPUs (and iGPUs/NPUs, which take the same IR).
The source is planned to ONNX (every hop checked) and converted with OpenVINO's ONNX frontend; one
IR per mode (``model_<mode>.xml`` + ``.bin``), each run by OpenVINO's CPU plugin against the source.

Modes: fp32 (weights as the source holds them), fp16 (weights stored in half precision, computed in
f32: what ``openvino.save_model`` writes by default), int8 (NNCF's post-training quantization,
ranges from the calibration data), judged like the other targets' int8 files (cosine and top-1
agreement). Files are checked and timed at f32 inference precision; the CPU plugin's default is
bf16 on CPUs that have it, so the manifest tells apps to ask for f32 to get the checked numbers.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._atomic import atomic_output
from .._console import Steps, captured_output
from ..errors import ConversionError, UsageError, first_line
from ..validate.tolerances import Tolerance
from .bundle import (BundleFile, EdgeResult, latency_ms, raise_if_failed, write_goldens, write_manifest,
                     write_reports)
from .source import AGREEMENT_RULE, agrees, bundle_folder, check_data, onnx_source
from .source import calibrated_modes
from .source import parse_modes as parse_mode_list

CALIBRATION_SAMPLES = 300  # NNCF's default subset size


@dataclass(frozen=True)
class Mode:
    name: str
    summary: str
    calibrated: bool = False
    agreement: bool = False  # judged by agreement (int8); else by the tolerance of its precision


MODES = {mode.name: mode for mode in (
    Mode("fp32", "float32 weights, as the source holds them"),
    Mode("fp16", "float16 weights (half the size), computed in f32"),
    Mode("int8", "NNCF post-training quantization, ranges from calibration", calibrated=True, agreement=True),
)}


def parse_modes(text: str | Sequence[str]) -> list[str]:
    return parse_mode_list(text, MODES, "OpenVINO", "fp32,fp16,int8")


def export_openvino(source: str | Path, out_dir: str | Path, *, quantize: str | Sequence[str] = ("fp32",),
                    calibration: Mapping[str, np.ndarray] | str | Path | None = None,
                    image_size: tuple[int, int] | None = None, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, input_specs=None, weights=None,
                    dims: Mapping[str, int] | None = None, trust_pickle: bool = False, seed: int = 0,
                    steps: Steps | None = None) -> EdgeResult:
    """Write an OpenVINO bundle of ``source`` to ``out_dir``: ``model_<mode>.xml`` + ``.bin`` per
    mode of ``quantize``, each run by OpenVINO against the source. ``calibration`` (as for
    ``export_tflite``) is needed by int8 and is the check's data when given.

    Raises:
        UsageError: unknown mode, calibration missing or not matching, OpenVINO not installed (nothing written).
        ConversionError: OpenVINO's frontend or NNCF refused the model (nothing written).
        ParityError: a file failed its check; the bundle was written and says so.
    """
    from ..formats import open_model
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    names = parse_modes(quantize)
    needing = calibrated_modes(names, MODES, calibration)
    _import_openvino(needing)
    out_dir = bundle_folder(out_dir, mean, std)
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle, dims=dims)
    try:
        data, feeds, _ = check_data(reference, calibration, image_size=image_size, mean=mean, std=std,
                                    limit=CALIBRATION_SAMPLES, labels=None, seed=seed, dims=dims)
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            folder.mkdir()
            onnx_path = onnx_source(source, reference, Path(scratch), result, weights, input_specs, trust_pickle,
                                     steps, dims)
            with steps.step("Converting with OpenVINO's ONNX frontend"):
                model = _read(onnx_path, reference)
            for name in names:
                result.files.append(_export_mode(MODES[name], model, reference, feeds, data, folder, seed, steps))
            golden = {k: v[:1] for k, v in feeds.items()}
            extra = write_goldens(folder, golden, reference.run(golden))
            extra += [Path(f.name).with_suffix(".bin").name for f in result.files] + write_reports(folder, result.files)
            write_manifest(folder, target="openvino", source=str(source), files=result.files, extra=extra,
                           details={"source_inputs": [s.to_dict() for s in reference.inputs],
                                    "source_outputs": [s.to_dict() for s in reference.outputs],
                                    "device": "CPU", "inference_precision": "f32",
                                    "note": "checked and timed at f32 inference precision; OpenVINO's CPU plugin "
                                            f"defaults to {_default_precision()} here: set INFERENCE_PRECISION_HINT "
                                            "to f32 to get the checked numbers"})
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    raise_if_failed(result, out_dir)
    return result


def _import_openvino(needing) -> None:
    try:
        import openvino  # noqa: F401
        if needing:
            import nncf  # noqa: F401
    except ModuleNotFoundError as exc:
        raise UsageError(f"OpenVINO bundles need {exc.name!r}, which is not installed",
                         hint="pip install 'modelport[openvino]'") from None


def _read(onnx_path: Path, reference):
    import openvino as ov
    from ..formats.openvino import write_ranges
    from ..formats.value_ranges import ranges_of
    try:
        with captured_output():
            model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise ConversionError(f"OpenVINO's ONNX frontend refused the model: {first_line(exc)}", hop="edge openvino",
                              hint="the op it names has no OpenVINO conversion; see OpenVINO's supported ONNX "
                                   "operations, or rewrite the model around it") from exc
    write_ranges(model, ranges_of(reference.inputs))
    return model


def _export_mode(mode: Mode, model, reference, feeds, data, folder: Path, seed: int, steps: Steps) -> BundleFile:
    import openvino as ov
    from ..formats.openvino import OpenVinoSession
    from ..validate.parity import check_artifact
    path = folder / f"model_{mode.name}.xml"
    with steps.step(f"Writing OpenVINO {mode.name} ({mode.summary})"):
        written = _quantized(model, reference, data) if mode.calibrated else model
        with captured_output():
            ov.save_model(written, str(path), compress_to_fp16=mode.name == "fp16")
    candidate = OpenVinoSession(path, threads=1)
    try:
        with steps.step(f"Checking {path.name} in OpenVINO (CPU, f32 inference precision)"):
            tolerance = Tolerance(np.inf, 0.0) if mode.agreement else None  # agreement: every value "within"
            report = check_artifact(reference, candidate, feeds=feeds, tolerance=tolerance, precision=mode.name,
                                    samples=1, seed=seed)
        passed = agrees(report) if mode.agreement else report.passed
        rule = AGREEMENT_RULE if mode.agreement else \
            f"every value within {Tolerance(report.atol, report.rtol, report.relative_to).describe()}"
        latency = latency_ms(candidate, {k: v[:1] for k, v in feeds.items()})
        ops = sorted({op.get_type_name() for op in candidate.model.get_ops()})
        size = path.stat().st_size + path.with_suffix(".bin").stat().st_size
        return BundleFile(path.name, mode.name, [s.to_dict() for s in candidate.inputs],
                          [s.to_dict() for s in candidate.outputs], ops, size, latency, passed, rule, report.to_dict())
    finally:
        candidate.close()


def _quantized(model, reference, data):
    """NNCF's post-training quantization of ``model``, its ranges from ``data`` one sample at a time."""
    import nncf
    count = min(len(next(iter(data.values()))), CALIBRATION_SAMPLES)
    samples = [{spec.name: np.ascontiguousarray(data[spec.name][i:i + 1], dtype=spec.dtype) for spec in reference.inputs}
               for i in range(count)]
    try:
        with captured_output():
            return nncf.quantize(model, nncf.Dataset(samples), subset_size=count)
    except Exception as exc:
        raise ConversionError(f"NNCF could not quantize the model: {first_line(exc)}", hop="edge openvino int8") from exc


def _default_precision() -> str:
    """The inference precision OpenVINO's CPU plugin picks here when not told (bf16 on CPUs with AMX)."""
    import openvino as ov
    return str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name())
