"""``modelport quantize``: an ONNX model in int8 or half precision for servers, with ONNX Runtime's
own tools, checked against its source on held-out calibration data.

Modes (MODES, a registry: each says what it needs and how it writes):

- ``int8``: static QDQ quantization (``quantize_static``), per-channel int8 weights, int8
  activations calibrated on ``--calibration`` data (MinMax, Entropy or Percentile);
- ``int8-dynamic``: int8 weights, activations quantized at run time (``quantize_dynamic``): what
  MatMul/Gemm-heavy models (transformers) take;
- ``fp16``: float16 weights and compute (``convert_float_to_float16``), fp32 inputs and outputs;
- ``int4-weights``: MatMul weights in 4 bits, blocks of INT4_BLOCK sharing a scale (MatMulNBits,
  ``MatMulNBitsQuantizer``), float activations: transformers' weight-only quantization.

An int8 result that fails its check gets the nodes where its error enters named
(``validate.localize.error_entry_points``: each quantized node ranked by the error it adds, the
QDQ model run against the float one tensor by tensor); ``auto_exclude`` quantizes again with the
worst of them kept in float (1, 2, 4, ... nodes) until the check passes, recording each attempt.

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._atomic import commit, staging_path
from .._console import Steps
from ..errors import ModelportError, ParityError, UsageError
from ..formats import detect

HELD_OUT_SHARE = 0.25
LATENCY_RUNS = 20


@dataclass(frozen=True)
class WriteOptions:
    method: str = "minmax"          # int8 calibration method
    keep_io_types: bool = True      # fp16: fp32 inputs and outputs
    exclude: tuple[str, ...] = ()   # node names kept in float (int8's --auto-exclude)


@dataclass(frozen=True)
class Mode:
    description: str
    needs_calibration: bool
    write: Callable[..., None]  # (prepared source, destination, calibration feeds, WriteOptions) -> None
    left_in_float: Callable[[Any], dict[str, int]]  # the written model -> op type: nodes it left in float
    # (source, scratch folder) -> the model the writer takes, whose node names --auto-exclude reports
    prepare: Callable[[Path, Path], Path] = lambda source, scratch: source
    excludes: bool = False  # can keep named nodes in float: --auto-exclude works for it


@dataclass
class Attempt:
    """One try of --auto-exclude: the nodes kept in float, and what came of it."""
    excluded: list[str]
    passed: bool
    worst: float | None          # the check's largest max |error| / output scale
    agreement: float | None      # top-1 agreement with the source, where the outputs are scores
    latency_ms: float            # ORT, batch 8, one thread

    def to_dict(self) -> dict[str, Any]:
        return {"excluded": self.excluded, "passed": self.passed, "worst": self.worst, "agreement": self.agreement,
                "b8_1_thread_ms": self.latency_ms}


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
    # int8 whose check failed: the nodes that add most of the error, most first (node, op_type, added)
    entry_points: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)  # --auto-exclude's tries, in order
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.report is None or self.report.passed

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "mode": self.mode,
                "precision": self.precision, "calibration": self.calibration, "sizes": self.sizes,
                "latency_ms": self.latency_ms, "float_nodes": self.float_nodes, "entry_points": self.entry_points,
                "attempts": [a.to_dict() for a in self.attempts], "seconds": round(self.seconds, 3),
                "passed": self.passed, "parity": self.report.to_dict() if self.report is not None else None}


class _Reader:
    """ONNX Runtime's calibration interface over feeds held in memory, one sample at a time."""

    def __init__(self, feeds: Mapping[str, np.ndarray]):
        count = len(next(iter(feeds.values())))
        self._samples = iter([{name: value[i:i + 1] for name, value in feeds.items()} for i in range(count)])

    def get_next(self):
        return next(self._samples, None)


def _pre_process(source: Path, scratch: Path) -> Path:
    """ORT's pre-processing (shape inference, graph optimizations that fold BatchNorm into the
    convolutions before their weights are quantized); a model it cannot take is quantized as it is."""
    from onnxruntime.quantization import quant_pre_process
    prepared = scratch / "prepared.onnx"
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    except Exception:
        return source
    return prepared


def _static_int8(source: Path, destination: Path, feeds, options: WriteOptions) -> None:
    import logging
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its "consider pre-processing"
    quantize_static(str(source), str(destination), _Reader(feeds), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=methods[options.method], nodes_to_exclude=list(options.exclude))


def _dynamic_int8(source: Path, destination: Path, feeds, options: WriteOptions) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(source), str(destination), weight_type=QuantType.QInt8)


def _half(source: Path, destination: Path, feeds, options: WriteOptions) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=options.keep_io_types), str(destination))


# int4 weight-only: blocks of INT4_BLOCK weights along the input dimension share one fp32 scale,
# symmetric (no zero point); activations stay float (accuracy level 4 lets ORT's CPU kernel compute
# the product in int8, its fastest path). Measured on a briefly trained 4-layer BERT (hidden 128):
# block 32 symmetric moves the logits by 1.9e-5 of their scale and the hidden states by 1.4e-2 to
# 5.7e-2 (block 128: 2.1e-2 to 3.8e-2, asymmetric block 32: 2.0e-2 to 4.6e-2): hence the int4-weights
# tolerance of 0.15 x scale in validate/tolerances.py.
INT4_BLOCK = 32


def _int4_weights(source: Path, destination: Path, feeds, options: WriteOptions) -> None:
    import logging
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=4, block_size=INT4_BLOCK, is_symmetric=True,
                                     accuracy_level=4)
    quantizer.process()
    if not any(node.op_type == "MatMulNBits" for node in quantizer.model.model.graph.node):
        raise UsageError(f"int4-weights found no MatMul with a constant weight of at least {INT4_BLOCK} rows to "
                         "quantize (it is weight-only quantization for transformers' MatMuls; convolutions and Gemm "
                         "stay as they are)", hint="use --mode int8 for a CNN, int8-dynamic for Gemm models")
    quantizer.model.save_model_to_file(str(destination), False)


def _float_matmuls(model) -> dict[str, int]:
    """int4-weights: MatMuls left in float (their weight is computed, not constant, or too small)."""
    count = sum(node.op_type == "MatMul" for node in model.graph.node)
    return {"MatMul": count} if count else {}


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


# --auto-exclude: tries after the first; each keeps in float as many more nodes as it already keeps
# (at least one), those that add most of the error first: 1, 2, 4, 8, ... nodes.
AUTO_EXCLUDE_ROUNDS = 5


def quantize(source: str | Path, destination: str | Path, *, mode: str, calibration: str | Path | None = None,
             method: str = "minmax", mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             image_size: tuple[int, int] | None = None, keep_io_types: bool = True, auto_exclude: bool = False,
             steps: Steps | None = None) -> QuantizeResult:
    """Quantize ``source`` into ``destination`` (an .onnx) and check it on held-out calibration data.

    When an int8 result fails its check, the nodes where its error enters are named
    (``result.entry_points``); with ``auto_exclude`` it is quantized again with the worst of them kept
    in float, until it passes or AUTO_EXCLUDE_ROUNDS more tries are spent (``result.attempts``).

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
    if auto_exclude and not chosen.excludes:
        raise UsageError(f"--auto-exclude keeps nodes in float, which --mode {mode} cannot choose",
                         hint="it works with --mode int8")
    from ..formats import open_model
    from .pipeline import _final_path
    with tempfile.TemporaryDirectory(prefix="modelport-quantize-") as scratch:
        onnx_source = _as_onnx(Path(source), Path(scratch), steps)
        with open_model(onnx_source) as reference:
            feeds, described = _calibration(calibration, reference, mean, std, image_size)
            calibrating, held_out, split = _split(feeds)
            result = QuantizeResult(str(source), str(destination), mode, "?", split + described)
            prepared = chosen.prepare(onnx_source, Path(scratch))
            options = WriteOptions(method=method, keep_io_types=keep_io_types)
            with staging_path(destination) as staged:
                staged = Path(staged)
                for _ in range(1 + (AUTO_EXCLUDE_ROUNDS if auto_exclude else 0)):
                    _quantize_once(chosen, mode, source, prepared, staged, calibrating, held_out, reference,
                                   options, result, steps)
                    if auto_exclude:
                        result.attempts.append(_attempt(result.report, options.exclude, staged, held_out))
                    if result.passed or not auto_exclude or not result.entry_points:
                        break
                    more = [name for e in result.entry_points[:max(1, len(options.exclude))] for name in e["nodes"]]
                    options = replace(options, exclude=options.exclude + tuple(dict.fromkeys(more)))
                with steps.step("Timing both in ONNX Runtime (batch 1 and 8, one thread and all)"):
                    result.latency_ms = {"source": _latencies(onnx_source, held_out),
                                         "quantized": _latencies(staged, held_out)}
                result.sizes = {"source": Path(onnx_source).stat().st_size, "quantized": staged.stat().st_size}
                final = _final_path(destination, result.report)
                commit(staged, final)
                result.destination = str(final)
    result.seconds = time.perf_counter() - started
    if not result.passed:
        raise ParityError(result.report, result.report.summary() + _entry_point_text(result)
                          + f"\n  the result was kept: {str(final)!r}", result=result)
    return result


def _quantize_once(chosen: Mode, mode: str, source, prepared: Path, staged: Path, calibrating, held_out, reference,
                   options: WriteOptions, result: QuantizeResult, steps: Steps) -> None:
    """Write the quantized model once and check it; on a failed check of a mode that can keep nodes in
    float, rank the nodes where its error enters."""
    from ..formats import open_model
    from ..validate.parity import check_artifact, choose_tolerance
    kept = f"; {len(options.exclude)} node(s) kept in float" if options.exclude else ""
    with steps.step(f"Quantizing ({mode}: {chosen.description}{kept})"):
        try:
            chosen.write(prepared, staged, calibrating, options)
        except ModelportError:
            raise
        except Exception as exc:
            raise UsageError(f"ONNX Runtime's quantizer cannot quantize {str(source)!r} ({mode}): "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                             hint="try another --mode; int8-dynamic suits MatMul-heavy models") from None
    with open_model(staged) as candidate:
        result.precision = candidate.precision
        precision, tolerance = choose_tolerance(candidate)
        with steps.step(f"Checking it on {described_count(held_out)} held-out sample(s) "
                        f"({precision}: {tolerance.describe()})"):
            result.report = check_artifact(reference, candidate, feeds=held_out, tolerance=tolerance,
                                           precision=precision)
        result.float_nodes = chosen.left_in_float(candidate.model)
        result.entry_points = []
        if not result.report.passed and chosen.excludes:
            from ..validate.localize import error_entry_points
            with steps.step("Finding where the error enters (each quantized node against the float model)"):
                with open_model(prepared) as float_model:
                    quantized = _quantized_nodes(candidate.model) - set(options.exclude)
                    result.entry_points = error_entry_points(float_model, candidate, dict(held_out),
                                                             among=quantized)[:ENTRY_POINTS_SHOWN]


ENTRY_POINTS_SHOWN = 16


def _quantized_nodes(model) -> set[str]:
    """Names of the nodes that take a DequantizeLinear output: those int8 runs in integers."""
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return {node.name for node in model.graph.node
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(i in dequantized for i in node.input)}


def _attempt(report, excluded: Sequence[str], staged: Path, held_out) -> Attempt:
    worst = max((o.max_abs / o.scale for o in report.outputs if o.max_abs is not None and o.scale), default=None)
    agreements = [o.top1_agreement for o in report.outputs if o.top1_agreement is not None]
    timing = _latencies(staged, held_out, configurations=((1, "1 thread"),), batches=(8,))
    return Attempt(list(excluded), report.passed, worst, min(agreements) if agreements else None,
                   timing["b8 1 thread"])


def _entry_point_text(result: QuantizeResult) -> str:
    if not result.entry_points:
        return ""
    named = ", ".join(f"{e['node']} ({e['op_type']}, +{e['added']:.2g})" for e in result.entry_points[:5])
    advice = ("" if result.attempts else
              "\n  retry with --auto-exclude to keep the worst of them in float")
    return f"\n  the error enters most at: {named}{advice}"


def described_count(feeds: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(feeds.values())))


def _as_onnx(source: Path, scratch: Path, steps: Steps) -> Path:
    fmt = detect(source)
    if fmt.name == "onnx":
        from ..formats.mlflow import model_path
        return model_path(source)
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


def _latencies(path: Path, samples: Mapping[str, np.ndarray],
               configurations=((1, "1 thread"), (0, "all threads")), batches=(1, 8)) -> dict[str, float]:
    """Median ms per run in ONNX Runtime at batch 1 and 8 (samples repeated to fill it), with one
    intra-op thread and with all of them."""
    from ..formats.onnx import OnnxSession
    count = described_count(samples)
    timings = {}
    for threads, label in configurations:
        session = OnnxSession(path, threads=threads)
        try:
            for batch in batches:
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
    "int8": Mode("static QDQ int8 (per-channel weights, calibrated activations)", True, _static_int8, _float_nodes,
                 prepare=_pre_process, excludes=True),
    "int8-dynamic": Mode("int8 weights, activations quantized at run time", False, _dynamic_int8, _nothing_left),
    "fp16": Mode("float16 weights and compute, fp32 inputs and outputs", False, _half, _kept_in_float),
    "int4-weights": Mode(f"int4 MatMul weights in blocks of {INT4_BLOCK} (MatMulNBits), float activations", False,
                         _int4_weights, _float_matmuls),
}
