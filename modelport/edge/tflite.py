"""``modelport edge tflite``: one TFLite file per quantization mode, each run in LiteRT against the
source model and judged by its mode's rule, packed with a manifest and golden data.

A mode is data (``MODES``): how it configures ``tf.lite.TFLiteConverter``, whether it needs
calibration data, and how its file is judged. Float modes must match the source within a
tolerance; integer modes cannot, so they are judged by agreement: the cosine similarity of every
output and, for classifier-shaped outputs, how often the top-1 class is the same.
"""
from __future__ import annotations

import re
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._atomic import atomic_output
from .._console import Steps, captured_output
from ..errors import ConversionError, ParityError, UsageError, first_line
from ..validate.tolerances import Tolerance
from .bundle import BundleFile, write_goldens, write_manifest

# Integer modes pass when every output keeps this cosine similarity to the source's, and the
# top-1 class of classifier outputs agrees this often.
MIN_COSINE = 0.99
MIN_TOP1 = 0.98
CALIBRATION_SAMPLES = 100  # at most, fed one at a time to the converter's calibration


@dataclass(frozen=True)
class Mode:
    name: str
    summary: str
    configure: Callable  # (tf, converter, representative_dataset | None) -> None
    calibrated: bool = False
    tolerance: Tolerance | None = None  # float modes; None: judged by agreement

    @property
    def rule(self) -> str:
        if self.tolerance is not None:
            return f"every value within {self.tolerance.describe()}"
        return f"cosine >= {MIN_COSINE} per output, top-1 agreement >= {MIN_TOP1:.0%} for classifier outputs"


MODES: dict[str, Mode] = {}


def mode(name: str, summary: str, *, calibrated: bool = False, tolerance: Tolerance | None = None):
    """Register a quantization mode by the function configuring the converter for it."""
    def register(configure: Callable) -> Callable:
        MODES[name] = Mode(name, summary, configure, calibrated, tolerance)
        return configure
    return register


@mode("fp32", "float32, as the source computes", tolerance=Tolerance(1e-5, 1e-5, "scale"))
def _fp32(tf, converter, dataset) -> None:
    pass


@mode("fp16", "float16 weights (half the size), float32 compute", tolerance=Tolerance(1e-5, 1e-3, "scale"))
def _fp16(tf, converter, dataset) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


@mode("dynamic", "int8 weights, activations quantized on the fly (no calibration)")
def _dynamic(tf, converter, dataset) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


@mode("int8", "int8 weights and activations, ranges from calibration data (float input/output)", calibrated=True)
def _int8(tf, converter, dataset) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


@mode("int16x8", "int16 activations, int8 weights, from calibration data", calibrated=True)
def _int16x8(tf, converter, dataset) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


def parse_modes(text: str | Sequence[str]) -> list[str]:
    """``fp32,int8`` (or a list) as known mode names, in order, without repeats; UsageError otherwise."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in MODES]
    if unknown or not names:
        raise UsageError(f"--quantize {','.join(unknown) or text!r}: unknown mode",
                         hint=f"choose among {', '.join(MODES)} (several: fp32,int8)")
    return list(dict.fromkeys(names))


@dataclass
class EdgeResult:
    """What ``export_tflite`` wrote and measured."""
    out_dir: str
    source: str
    files: list[BundleFile] = field(default_factory=list)
    conversion: list[dict[str, Any]] = field(default_factory=list)  # the hops to the SavedModel
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(f.passed is not False for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "source": self.source, "passed": self.passed,
                "seconds": round(self.seconds, 3), "conversion": self.conversion,
                "models": [f.to_dict() | {"report": f.report} for f in self.files]}


def export_tflite(source: str | Path, out_dir: str | Path, *, quantize: str | Sequence[str] = ("fp32",),
                  calibration: Mapping[str, np.ndarray] | None = None, input_specs=None, weights=None,
                  trust_pickle: bool = False, seed: int = 0, steps: Steps | None = None) -> EdgeResult:
    """Write a TFLite bundle of ``source`` to ``out_dir``: one file per mode of ``quantize``, each
    checked in LiteRT against the source. ``calibration`` (inputs by name, batch first) is needed by
    int8 and int16x8 and is the check's data when given.

    Raises:
        UsageError: unknown mode, calibration missing or not matching the inputs (nothing written).
        ParityError: a file failed its check; the bundle was written and says so.
    """
    from ..formats import open_model
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    names = parse_modes(quantize)
    needing = [n for n in names if MODES[n].calibrated]
    if needing and not calibration:
        raise UsageError(f"--quantize {','.join(needing)} needs calibration data",
                         hint="give --calibration inputs.npz (arrays by input name, batch first; ~100 typical inputs)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{str(out_dir)!r} exists and is a file; a bundle is a folder")
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle)
    try:
        if calibration is not None:
            _check_calibration(reference, calibration)
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            folder.mkdir()
            tf_source = _tensorflow_source(source, reference, Path(scratch), result, weights, input_specs,
                                           trust_pickle, steps)
            feeds = _check_feeds(reference, calibration, seed)
            for name in names:
                result.files.append(_export_mode(MODES[name], tf_source, reference, feeds, calibration, folder,
                                                 seed, steps))
            golden = {k: v[:1] for k, v in feeds.items()}
            extra = write_goldens(folder, golden, reference.run(golden))
            for bundle_file in result.files:
                report_name = f"reports/{Path(bundle_file.name).stem}.json"
                (folder / "reports").mkdir(exist_ok=True)
                (folder / report_name).write_text(_json(bundle_file.report))
                extra.append(report_name)
            write_manifest(folder, target="tflite", source=str(source), files=result.files, extra=extra,
                           details={"inputs": [s.to_dict() for s in reference.inputs],
                                    "outputs": [s.to_dict() for s in reference.outputs]})
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    if not result.passed:
        failed = [f.name for f in result.files if f.passed is False]
        raise ParityError(None, f"{', '.join(failed)} failed the check against the source; the bundle was written "
                                f"to {str(out_dir)!r} and its manifest marks them", result=result)
    return result


def _json(value) -> str:
    import json
    return json.dumps(value, indent=1, default=str) + "\n"


def _check_calibration(reference, calibration: Mapping[str, np.ndarray]) -> None:
    expected = [spec.name for spec in reference.inputs]
    if sorted(calibration) != sorted(expected):
        raise UsageError(f"the calibration data holds {sorted(calibration)}; the model's inputs are {expected}",
                         hint="save the arrays under the input names: np.savez('calib.npz', **{name: batch})")
    sizes = {len(np.asarray(v)) for v in calibration.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise UsageError("the calibration arrays must hold the same number of samples (batch first), at least one")


def _check_feeds(reference, calibration, seed: int) -> dict[str, np.ndarray]:
    """The data every file is checked on: the calibration inputs, else 8 generated ones."""
    if calibration is not None:
        return {spec.name: np.asarray(calibration[spec.name], dtype=spec.dtype) for spec in reference.inputs}
    from ..validate.inputs import generate_feeds
    return generate_feeds(reference.inputs, seed=seed, batch=8)


def _tensorflow_source(source, reference, scratch: Path, result: EdgeResult, weights, input_specs, trust_pickle,
                       steps: Steps):
    """What TFLite's converter starts from: the Keras model or SavedModel itself, else a SavedModel
    planned from the source (PyTorch and Caffe through ONNX), every hop checked."""
    if reference.format_name in ("keras", "savedmodel"):
        return reference
    from ..convert import convert as run_convert
    from ..formats import open_model
    converted = run_convert(source, scratch / "savedmodel", to="savedmodel", weights=weights, input_specs=input_specs,
                            trust_pickle=trust_pickle, steps=steps)
    result.conversion = [hop.to_dict() for hop in converted.hops]
    return open_model(scratch / "savedmodel")


def _converter(tf, tf_source):
    if tf_source.format_name == "keras":
        return tf.lite.TFLiteConverter.from_keras_model(tf_source.model)
    return tf.lite.TFLiteConverter.from_saved_model(str(tf_source.path), signature_keys=[tf_source.signature_name])


def _export_mode(mode_: Mode, tf_source, reference, feeds, calibration, folder: Path, seed: int,
                 steps: Steps) -> BundleFile:
    from ..formats._tf import import_tf
    from ..formats.tflite import TFLiteSession
    from ..validate.parity import compare_sessions
    tf = import_tf()
    path = folder / f"model_{mode_.name}.tflite"
    with steps.step(f"Converting to TFLite {mode_.name} ({mode_.summary})"):
        dataset = _representative_dataset(reference, calibration) if mode_.calibrated else None
        try:
            with captured_output(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                converter = _converter(tf, tf_source)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
                mode_.configure(tf, converter, dataset)
                path.write_bytes(converter.convert())
        except Exception as exc:
            ops = sorted(set(re.findall(r"'(tf\.\w+)' op", str(exc))))
            detail = f"TensorFlow ops without a TFLite builtin: {', '.join(ops)}" if ops else first_line(exc)
            raise ConversionError(f"TFLite {mode_.name}: {detail}", hop=f"edge tflite {mode_.name}") from exc
    candidate = TFLiteSession(path, threads=1)
    try:
        with steps.step(f"Checking {path.name} in LiteRT"):
            tolerance = mode_.tolerance or Tolerance(np.inf, 0.0)  # agreement modes: every value "within"
            report = compare_sessions(reference, candidate, feeds=feeds, tolerance=tolerance,
                                      precision=mode_.name, samples=1, seed=seed)
        passed = report.passed if mode_.tolerance is not None else _agrees(report)
        latency = _latency_ms(candidate, {k: v[:1] for k, v in feeds.items()})
        ops = sorted(candidate.op_names())
        return BundleFile(path.name, mode_.name, [s.to_dict() | candidate.quantization_of(s.name)
                                                  for s in candidate.inputs],
                          [s.to_dict() | candidate.quantization_of(s.name) for s in candidate.outputs], ops,
                          path.stat().st_size, latency, passed, mode_.rule, report.to_dict())
    finally:
        candidate.close()


def _agrees(report) -> bool:
    for output in report.outputs:
        if output.cosine is None or output.cosine < MIN_COSINE:
            return False
        if output.top1_agreement is not None and output.top1_agreement < MIN_TOP1:
            return False
    return bool(report.outputs)


def _representative_dataset(reference, calibration: Mapping[str, np.ndarray]):
    """The converter's calibration generator: one sample at a time, in the signature's input order."""
    names = [spec.name for spec in reference.inputs]
    count = min(len(next(iter(calibration.values()))), CALIBRATION_SAMPLES)

    def samples():
        for i in range(count):
            yield [np.asarray(calibration[name][i:i + 1], dtype=np.float32) for name in names]
    return samples


def _latency_ms(session, feed: Mapping[str, np.ndarray], runs: int = 20) -> float:
    """Median LiteRT latency of one batch-1 inference, after a warm-up run."""
    session.run(feed)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        session.run(feed)
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)
