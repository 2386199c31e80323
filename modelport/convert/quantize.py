"""``modelport quantize``: an ONNX model in int8 or half precision for servers, with ONNX Runtime's
own tools, checked against its source on held-out calibration data.

Modes (MODES, a registry: each says what it needs and how it writes):

- ``int8``: static QDQ quantization (``quantize_static``), per-channel int8 weights, int8
  activations calibrated on ``--calibration`` data (MinMax, Entropy or Percentile);
- ``int8-dynamic``: int8 weights, activations quantized at run time (``quantize_dynamic``): what
  MatMul/Gemm-heavy models (transformers) take;
- ``fp16``: float16 weights and compute (``convert_float_to_float16``), fp32 inputs and outputs.

The calibration data (an .npz by input name, samples first; or a folder of images, or of class
folders of images, normalized by ``--mean/--std`` or the range the model declares) is split: the
first three quarters calibrate, the last quarter (at least one sample) is held out and the check
runs on it, by the rule of the result's precision (int8, uint8-weights, fp16). A source in another
format is converted to ONNX first (checked as any conversion). The result is written atomically,
also when it fails its check (exit 1), as ``convert`` does: beside a model already at the
destination as ``NAME.parity-failed.onnx``, never over it.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._atomic import commit, staging_path
from .._console import Steps
from ..errors import ParityError, UsageError
from ..formats import detect

HELD_OUT_SHARE = 0.25
LATENCY_RUNS = 20


@dataclass(frozen=True)
class Mode:
    description: str
    needs_calibration: bool
    write: Callable[..., None]  # (source, destination, calibration feeds, method, keep_io_types) -> None
    left_in_float: Callable[[Any], dict[str, int]]  # the written model -> op type: nodes it left in float


@dataclass
class QuantizeResult:
    source: str
    destination: str
    mode: str
    precision: str
    calibration: str  # what calibrated, what was held out
    report: Any = None  # the check's ParityReport
    sizes: dict[str, int] = field(default_factory=dict)  # bytes: source, quantized
    # ORT milliseconds per run: {"source"|"quantized": {"b1 1 thread": ms, "b1 all threads": ..., "b8 ...": ...}}
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # op type -> nodes left in float: int8's unquantized Conv/MatMul/Gemm, fp16's ops ORT keeps in fp32
    float_nodes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.report is None or self.report.passed

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "mode": self.mode,
                "precision": self.precision, "calibration": self.calibration, "sizes": self.sizes,
                "latency_ms": self.latency_ms, "float_nodes": self.float_nodes, "seconds": round(self.seconds, 3),
                "passed": self.passed, "parity": self.report.to_dict() if self.report is not None else None}


class _Reader:
    """ONNX Runtime's calibration interface over feeds held in memory, one sample at a time."""

    def __init__(self, feeds: Mapping[str, np.ndarray]):
        count = len(next(iter(feeds.values())))
        self._samples = iter([{name: value[i:i + 1] for name, value in feeds.items()} for i in range(count)])

    def get_next(self):
        return next(self._samples, None)


def _static_int8(source: Path, destination: Path, feeds, method: str, keep_io_types: bool) -> None:
    import logging
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    # ORT's pre-processing first (shape inference, graph optimizations that fold BatchNorm into the
    # convolutions before their weights are quantized); a model it cannot take is quantized as it is.
    prepared = destination.with_name(destination.stem + ".prepared.onnx")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    except Exception:
        prepared = source
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its "consider pre-processing"
    try:
        quantize_static(str(prepared), str(destination), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method])
    finally:
        if prepared != source:
            prepared.unlink(missing_ok=True)


def _dynamic_int8(source: Path, destination: Path, feeds, method: str, keep_io_types: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(source), str(destination), weight_type=QuantType.QInt8)


def _half(source: Path, destination: Path, feeds, method: str, keep_io_types: bool) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=keep_io_types), str(destination))


def _kept_in_float(model) -> dict[str, int]:
    """fp16: the op types ORT's converter keeps in fp32 (its block list: Range, TopK, Upsample, ...)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST
    kept: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in DEFAULT_OP_BLOCK_LIST:
            kept[node.op_type] = kept.get(node.op_type, 0) + 1
    return kept


def _nothing_left(model) -> dict[str, int]:
    return {}


METHODS = ("minmax", "entropy", "percentile")


def quantize(source: str | Path, destination: str | Path, *, mode: str, calibration: str | Path | None = None,
             method: str = "minmax", mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             image_size: tuple[int, int] | None = None, keep_io_types: bool = True,
             steps: Steps | None = None) -> QuantizeResult:
    """Quantize ``source`` into ``destination`` (an .onnx) and check it on held-out calibration data.

    Raises:
        ParityError: the result was written but fails its check.
        ModelportError: bad input; nothing was written.
    """
    steps = steps or Steps(enabled=False)
    started = time.perf_counter()
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r} is not a quantization mode", hint="modes: " + ", ".join(MODES))
    if method not in METHODS:
        raise UsageError(f"--method {method!r}: one of {', '.join(METHODS)}")
    destination = Path(destination)
    if destination.suffix != ".onnx":
        raise UsageError(f"{str(destination)!r}: quantize writes an ONNX model (NAME.onnx)")
    chosen = MODES[mode]
    if chosen.needs_calibration and calibration is None:
        raise UsageError(f"--mode {mode} calibrates its activations on data: give --calibration DATA.npz or an image folder")
    with tempfile.TemporaryDirectory(prefix="modelport-quantize-") as scratch:
        onnx_source = _as_onnx(Path(source) if not isinstance(source, Path) else source, Path(scratch), steps)
        from ..formats import open_model
        with open_model(onnx_source) as reference:
            feeds, described = _calibration(calibration, reference, mean, std, image_size)
            calibrating, held_out, split = _split(feeds)
            result = QuantizeResult(str(source), str(destination), mode, "?", split + described)
            from .pipeline import _final_path
            with staging_path(destination) as staged:
                with steps.step(f"Quantizing ({mode}: {chosen.description})"):
                    try:
                        chosen.write(onnx_source, Path(staged), calibrating, method, keep_io_types)
                    except Exception as exc:
                        raise UsageError(f"ONNX Runtime's quantizer cannot quantize {str(source)!r} ({mode}): "
                                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                         hint="try another --mode; int8-dynamic suits MatMul-heavy models") from None
                with open_model(staged) as candidate:
                    result.precision = candidate.precision
                    from ..validate.parity import check_artifact, choose_tolerance
                    precision, tolerance = choose_tolerance(candidate)
                    with steps.step(f"Checking it on {described_count(held_out)} held-out sample(s) "
                                    f"({precision}: {tolerance.describe()})"):
                        result.report = check_artifact(reference, candidate, feeds=held_out, tolerance=tolerance,
                                                       precision=precision)
                    with steps.step("Timing both in ONNX Runtime (batch 1 and 8, one thread and all)"):
                        result.latency_ms = {"source": _latencies(onnx_source, held_out),
                                             "quantized": _latencies(Path(staged), held_out)}
                    result.float_nodes = chosen.left_in_float(candidate.model)
                result.sizes = {"source": Path(onnx_source).stat().st_size, "quantized": Path(staged).stat().st_size}
                final = _final_path(destination, result.report)
                commit(staged, final)
                result.destination = str(final)
    result.seconds = time.perf_counter() - started
    if not result.passed:
        raise ParityError(result.report, result.report.summary() + f"\n  the result was kept: {str(final)!r}",
                          result=result)
    return result


def described_count(feeds: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(feeds.values())))


def _as_onnx(source: Path, scratch: Path, steps: Steps) -> Path:
    fmt = detect(source)
    if fmt.name == "onnx":
        return source
    from .pipeline import convert
    with steps.step(f"Converting {source.name} ({fmt.title}) to ONNX first"):
        convert(source, scratch / "source.onnx")
    return scratch / "source.onnx"


def _calibration(calibration, reference, mean, std, image_size) -> tuple[dict[str, np.ndarray], str]:
    """The calibration samples by input name (samples first), and what they are."""
    from ..validate.inputs import generate_feeds, image_folder_feeds, load_feeds
    if calibration is None:  # modes that need none: the check runs on seeded samples
        feeds = generate_feeds(reference.inputs, seed=0, batch=8)
        return feeds, "8 seeded generated samples (no --calibration given)"
    path = Path(calibration)
    if path.is_dir() and any(p.is_dir() for p in path.iterdir()):  # class folders: their images, labels unused
        from ..validate.dataset import load_labelled
        data = load_labelled(path, reference.inputs, size=image_size, mean=mean, std=std)
        return data.inputs, data.source
    if path.is_dir():
        feeds = image_folder_feeds(path, reference.inputs, size=image_size, mean=mean, std=std, limit=100_000)
        return dict(feeds), next(iter(feeds.notes.values()))
    feeds = load_feeds(path)
    expected = {spec.name: spec for spec in reference.inputs}
    missing, unknown = sorted(set(expected) - set(feeds)), sorted(set(feeds) - set(expected))
    if missing or unknown:
        raise UsageError(f"the calibration data {str(path)!r} does not match the model's inputs: "
                         + (f"missing {missing}; " if missing else "") + (f"unknown {unknown}; " if unknown else "")
                         + f"expected {sorted(expected)}")
    for name, spec in expected.items():
        value = feeds[name]
        fixed = [d for d in (spec.shape or ())[1:]]
        if spec.shape is not None and (value.ndim != len(spec.shape) or any(
                want is not None and want != got for want, got in zip(fixed, value.shape[1:]))):
            raise UsageError(f"calibration input {name!r} has shape {list(value.shape)}; the model takes "
                             f"{spec.shape_str()} (samples first)")
        if value.dtype != spec.dtype:
            raise UsageError(f"calibration input {name!r} is {value.dtype}; the model takes {spec.dtype}")
    counts = {len(value) for value in feeds.values()}
    if len(counts) != 1:
        raise UsageError(f"the calibration inputs disagree on the number of samples: {sorted(counts)}")
    return feeds, f"{counts.pop()} samples from {str(path)!r}"


def _split(feeds: Mapping[str, np.ndarray]) -> tuple[dict, dict, str]:
    """Every fourth sample held out for the check (strided, so that class folders read one after the
    other are all represented on both sides), the rest calibrate."""
    count = described_count(feeds)
    if count < 2:
        raise UsageError(f"the calibration data holds {count} sample(s); at least 2 (some calibrate, some are held "
                         "out for the check)")
    stride = round(1 / HELD_OUT_SHARE)
    held = np.arange(count) % stride == stride - 1 if count >= stride else np.arange(count) == count - 1
    from ..validate.inputs import GivenFeeds
    held_out = GivenFeeds({name: value[held] for name, value in feeds.items()},
                          {name: f"{int(held.sum())} held-out calibration sample(s)" for name in feeds})
    return ({name: value[~held] for name, value in feeds.items()}, held_out,
            f"{int((~held).sum())} samples calibrate, every {stride}th ({int(held.sum())}) is held out for the check; ")


def _latencies(path: Path, samples: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Median ms per run in ONNX Runtime at batch 1 and 8 (samples repeated to fill it), with one
    intra-op thread and with all of them."""
    from ..formats.onnx import OnnxSession
    count = described_count(samples)
    timings = {}
    for threads, label in ((1, "1 thread"), (0, "all threads")):
        session = OnnxSession(path, threads=threads)
        try:
            for batch in (1, 8):
                rows = np.arange(batch) % count
                feed = {name: value[rows] for name, value in samples.items()}
                session.run(feed)
                runs = []
                for _ in range(LATENCY_RUNS):
                    start = time.perf_counter()
                    session.run(feed)
                    runs.append(time.perf_counter() - start)
                timings[f"b{batch} {label}"] = round(float(np.median(runs)) * 1000, 3)
        finally:
            session.close()
    return timings


def _float_nodes(model) -> dict[str, int]:
    """Op types with nodes whose weights or activations stayed float: no DequantizeLinear feeds them."""
    produced_by_dequantize = {out for node in model.graph.node if node.op_type == "DequantizeLinear"
                              for out in node.output}
    quantizable = {"Conv", "MatMul", "Gemm", "ConvTranspose"}
    left: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in quantizable and not any(name in produced_by_dequantize for name in node.input[:2]):
            left[node.op_type] = left.get(node.op_type, 0) + 1
    return left


MODES: dict[str, Mode] = {
    "int8": Mode("static QDQ int8 (per-channel weights, calibrated activations)", True, _static_int8, _float_nodes),
    "int8-dynamic": Mode("int8 weights, activations quantized at run time", False, _dynamic_int8, _nothing_left),
    "fp16": Mode("float16 weights and compute, fp32 inputs and outputs", False, _half, _kept_in_float),
}
