"""``modelport edge tflite``: one TFLite file per quantization mode, each run in LiteRT against the
source model and judged by its mode's rule, packed with a manifest and golden data.

A mode is data (``MODES``): how it configures ``tf.lite.TFLiteConverter``, whether it needs
calibration data, and how its file is judged. Float modes must match the source within a
tolerance; integer modes cannot, so they are judged by agreement: the cosine similarity of every
output and, for classifier-shaped outputs, how often the top-1 class is the same.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._atomic import atomic_output
from .._console import Steps, captured_output
from ..errors import UsageError
from ..validate.tolerances import Tolerance
from .bundle import (BundleFile, EdgeResult, latency_ms, raise_if_failed, write_goldens, write_manifest,
                     write_reports)
from .metadata import ModelInfo, TensorInfo, attach, build_metadata
from .source import (AGREEMENT_RULE, agrees, bundle_folder, check_data, in_candidate_layout, input_layout,
                     is_image, read_labels, tensorflow_source)
from .source import calibrated_modes
from .source import parse_modes as parse_mode_list

CALIBRATION_SAMPLES = 100  # at most, fed one at a time to the converter's calibration


@dataclass(frozen=True)
class Mode:
    name: str
    summary: str
    configure: Callable  # (tf, converter, representative_dataset | None, integer_io: bool) -> None
    calibrated: bool = False
    tolerance: Tolerance | None = None  # float modes; None: judged by agreement

    @property
    def rule(self) -> str:
        if self.tolerance is not None:
            return f"every value within {self.tolerance.describe()}"
        return AGREEMENT_RULE


MODES: dict[str, Mode] = {}


def mode(name: str, summary: str, *, calibrated: bool = False, tolerance: Tolerance | None = None):
    """Register a quantization mode by the function configuring the converter for it."""
    def register(configure: Callable) -> Callable:
        MODES[name] = Mode(name, summary, configure, calibrated, tolerance)
        return configure
    return register


# fp32: XNNPACK's kernels sum in another order than TensorFlow's: ~1e-5 of the logits' scale on a
# deep net (MobileNetV2), hence the rtol.
@mode("fp32", "float32, as the source computes", tolerance=Tolerance(1e-5, 1e-4, "scale", adaptive=True))
def _fp32(tf, converter, dataset, integer_io: bool) -> None:
    pass


@mode("fp16", "float16 weights (half the size), float32 compute", tolerance=Tolerance(1e-5, 1e-3, "scale"))
def _fp16(tf, converter, dataset, integer_io: bool) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


@mode("dynamic", "int8 weights, activations quantized on the fly (no calibration)")
def _dynamic(tf, converter, dataset, integer_io: bool) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


@mode("int8", "int8 weights and activations, ranges from calibration data", calibrated=True)
def _int8(tf, converter, dataset, integer_io: bool) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if integer_io:  # int8 tensors in and out (scale and zero point in the manifest and the file)
        converter.inference_input_type = converter.inference_output_type = tf.int8


@mode("int16x8", "int16 activations, int8 weights, from calibration data", calibrated=True)
def _int16x8(tf, converter, dataset, integer_io: bool) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if integer_io:
        converter.inference_input_type = converter.inference_output_type = tf.int16


def parse_modes(text: str | Sequence[str]) -> list[str]:
    return parse_mode_list(text, MODES)


def export_tflite(source: str | Path, out_dir: str | Path, *, quantize: str | Sequence[str] = ("fp32",),
                  calibration: Mapping[str, np.ndarray] | str | Path | None = None,
                  image_size: tuple[int, int] | None = None, labels: str | Path | None = None,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  description: str = "", integer_io: bool = False, allow_flex: bool = False,
                  input_specs=None, weights=None, dims: Mapping[str, int] | None = None,
                  trust_pickle: bool = False, seed: int = 0, steps: Steps | None = None) -> EdgeResult:
    """Write a TFLite bundle of ``source`` to ``out_dir``: one file per mode of ``quantize``, each
    carrying TFLite Model Metadata and checked in LiteRT against the source. ``calibration`` (arrays
    by input name, batch first; an .npz path; or a folder of images for a one-image-input model,
    resized to ``image_size`` or the input's size and normalized by ``mean``/``std``) is needed by
    int8 and int16x8 and is the check's data when given.
    ``labels`` (one per line) annotate the classifier output; ``mean``/``std`` are the normalization
    an app applies to image inputs before the model, recorded in the metadata and the manifest.
    Image inputs are channels-last (what phones' image APIs give), whatever the source's layout.
    ``integer_io`` makes the int8 (int16x8) files take and give int8 (int16) tensors.
    ``allow_flex`` lets ops without a TFLite builtin through as TensorFlow (Flex) ops; such a file
    cannot run in LiteRT's Python runtime, so it is written unchecked and marked "NOT validated".

    Raises:
        UsageError: unknown mode, calibration or labels missing, unreadable or not matching the
            model (nothing written).
        ParityError: a file failed its check; the bundle was written and says so.
    """
    from ..formats import open_model
    from ..formats.tflite import TFLiteFile
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    names = parse_modes(quantize)
    needing = calibrated_modes(names, MODES, calibration)
    out_dir = bundle_folder(out_dir, mean, std)
    label_lines = read_labels(labels) if labels is not None else None
    if integer_io and not needing:
        raise UsageError("--int8-io applies to the int8 and int16x8 modes", hint="add int8 to --quantize")
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle, dims=dims)
    try:
        calibration, feeds, labelled = check_data(reference, calibration, image_size=image_size, mean=mean, std=std,
                                                  limit=CALIBRATION_SAMPLES, labels=label_lines, seed=seed, dims=dims)
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            folder.mkdir()
            tf_source = tensorflow_source(source, reference, Path(scratch), result, weights, input_specs,
                                           trust_pickle, steps, dims)
            describe = _Describe(Path(str(source)).stem, description, len(label_lines) if label_lines else None,
                                 mean, std)
            associated = {"labels.txt": ("\n".join(label_lines) + "\n").encode()} if label_lines else {}
            for name in names:
                result.files.append(_export_mode(MODES[name], tf_source, reference, feeds, calibration, folder,
                                                 seed, steps, describe, associated, integer_io, allow_flex))
            golden = {k: v[:1] for k, v in feeds.items()}
            first = TFLiteFile(folder / result.files[0].name)  # the app feeds the TFLite layout
            extra = write_goldens(folder, in_candidate_layout(reference, first, golden), reference.run(golden))
            for file_name, data in associated.items():
                (folder / file_name).write_bytes(data)
                extra.append(file_name)
            extra += write_reports(folder, result.files)
            write_manifest(folder, target="tflite", source=str(source), files=result.files, extra=extra,
                           details={"source_inputs": [s.to_dict() for s in reference.inputs],
                                    "source_outputs": [s.to_dict() for s in reference.outputs],
                                    "labels_annotate": labelled})
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    raise_if_failed(result, out_dir)
    return result


def _convert(tf, tf_source, mode_: Mode, dataset, integer_io: bool, *, flex: bool) -> bytes:
    """The flatbuffer of one mode: TFLite builtins only, or with TensorFlow (Flex) ops allowed."""
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converter = _converter(tf, tf_source)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        mode_.configure(tf, converter, dataset, integer_io)
        if flex:
            converter.target_spec.supported_ops = list(converter.target_spec.supported_ops) + [tf.lite.OpsSet.SELECT_TF_OPS]
        return converter.convert()


def _converter(tf, tf_source):
    if tf_source.format_name == "keras":  # outputs under the model's own names
        from ..formats._tf import keras_tflite_converter
        return keras_tflite_converter(tf, tf_source)
    return tf.lite.TFLiteConverter.from_saved_model(str(tf_source.path), signature_keys=[tf_source.signature_name])


def _export_mode(mode_: Mode, tf_source, reference, feeds, calibration, folder: Path, seed: int,
                 steps: Steps, describe: "_Describe", associated: Mapping[str, bytes],
                 integer_io: bool = False, allow_flex: bool = False) -> BundleFile:
    from ..convert.tf_tflite import refusal
    from ..formats._tf import import_tf
    from ..formats.tflite import TFLiteFile, TFLiteSession
    from ..validate.parity import check_artifact
    tf = import_tf()
    path = folder / f"model_{mode_.name}.tflite"
    with steps.step(f"Converting to TFLite {mode_.name} ({mode_.summary})"):
        dataset = _representative_dataset(tf_source, reference, calibration) if mode_.calibrated else None
        try:
            flatbuffer = _convert(tf, tf_source, mode_, dataset, integer_io, flex=False)
        except Exception as exc:
            error = refusal(exc, f"TFLite {mode_.name}", hop=f"edge tflite {mode_.name}")
            if not allow_flex:
                error.hint = (error.hint or "") + ("; --allow-flex writes it with those ops as TensorFlow (Flex) "
                                                   "ops, NOT validated (LiteRT in Python cannot run them)")
                raise error from exc
            try:
                flatbuffer = _convert(tf, tf_source, mode_, dataset, integer_io, flex=True)
            except Exception as again:
                raise refusal(again, f"TFLite {mode_.name} with Flex ops", hop=f"edge tflite {mode_.name}") from again
        path.write_bytes(flatbuffer)
        declared = TFLiteFile(path)
        info = describe.of(declared)  # the metadata follows the file's own input/output order
        path.write_bytes(attach(flatbuffer, build_metadata(info), dict(associated)))
    if declared.flex_ops:
        return BundleFile(path.name, mode_.name, [s.to_dict() | describe.io(t) for s, t in zip(declared.inputs, info.inputs)],
                          [s.to_dict() | describe.io(t) for s, t in zip(declared.outputs, info.outputs)],
                          sorted(declared.ops), path.stat().st_size, None, None,
                          f"NOT validated: {', '.join(declared.flex_ops)} run only with the Flex delegate "
                          "(Android: tensorflow-lite-select-tf-ops), which LiteRT in Python lacks; replay the "
                          "goldens on the device", {"flex_ops": declared.flex_ops})
    candidate = TFLiteSession(path, threads=1)
    try:
        with steps.step(f"Checking {path.name} in LiteRT"):
            tolerance = mode_.tolerance or Tolerance(np.inf, 0.0)  # agreement modes: every value "within"
            report = check_artifact(reference, candidate, feeds=feeds, tolerance=tolerance,
                                      precision=mode_.name, samples=1, seed=seed,
                                      input_layout=input_layout(reference, candidate))
        passed = report.passed if mode_.tolerance is not None else agrees(report)
        latency = latency_ms(candidate, in_candidate_layout(reference, candidate, {k: v[:1] for k, v in feeds.items()}))
        ops = sorted(candidate.op_names())
        return BundleFile(path.name, mode_.name, [s.to_dict() | candidate.quantization_of(s.name) | describe.io(t)
                                                  for s, t in zip(candidate.inputs, info.inputs)],
                          [s.to_dict() | candidate.quantization_of(s.name) | describe.io(t)
                           for s, t in zip(candidate.outputs, info.outputs)], ops,
                          path.stat().st_size, latency, passed, mode_.rule, report.to_dict())
    finally:
        candidate.close()


@dataclass
class _Describe:
    """How a bundle's files describe themselves: TFLite metadata and manifest entries per tensor."""
    name: str
    description: str
    classes: int | None  # the number of labels, when given
    mean: Sequence[float] | None
    std: Sequence[float] | None

    def of(self, session) -> ModelInfo:
        inputs = []
        for spec in session.inputs:
            image = {1: "GRAYSCALE", 3: "RGB"}.get(spec.shape[-1]) if is_image(spec) else None
            normalized = image is not None and self.mean is not None
            inputs.append(TensorInfo(spec.name, f"{'image, channels-last' if image else 'tensor'}, "
                                     f"{spec.dtype.name} {spec.shape_str()}", image=image,
                                     mean=list(self.mean) if normalized else None,
                                     std=list(self.std) if normalized else None))
        labelled = next((spec.name for spec in session.outputs if self.classes and spec.shape
                         and spec.shape[-1] == self.classes), None)
        outputs = [TensorInfo(spec.name, f"{spec.dtype.name} {spec.shape_str()}",
                              labels="labels.txt" if spec.name == labelled else None) for spec in session.outputs]
        return ModelInfo(self.name, self.description or f"{self.name}, exported by modelport", inputs=inputs,
                         outputs=outputs, author="modelport")

    @staticmethod
    def io(tensor: TensorInfo) -> dict[str, Any]:
        """A manifest entry's layout, normalization and labels for one tensor."""
        entry: dict[str, Any] = {"layout": "NHWC" if tensor.image else None}
        if tensor.mean is not None:
            entry["normalization"] = {"mean": tensor.mean, "std": tensor.std, "formula": "(x - mean) / std"}
        if tensor.labels:
            entry["labels"] = tensor.labels
        return entry


def _representative_dataset(tf_source, reference, calibration: Mapping[str, np.ndarray]):
    """The converter's calibration generator: one sample at a time, in the TF model's input order
    and layout (channels-last images where the source is channels-first)."""
    count = min(len(next(iter(calibration.values()))), CALIBRATION_SAMPLES)
    from ..validate.compare import match_names
    sources = {spec.name: spec for spec in reference.inputs}
    targets = {spec.name: spec for spec in tf_source.inputs}
    by_target = {target: source for source, target in match_names(list(sources), list(targets))[0]}
    pairs = []
    for target in tf_source.inputs:  # in the TF model's order, each from its source input
        spec = sources[by_target.get(target.name, target.name)]
        moved = is_image(spec) and bool(target.shape) and spec.shape[1] != target.shape[1] \
            and spec.shape[1] == target.shape[3]
        pairs.append((spec.name, moved))

    def samples():
        for i in range(count):
            yield [np.asarray(np.transpose(calibration[name][i:i + 1], (0, 2, 3, 1)) if moved
                              else calibration[name][i:i + 1], dtype=np.float32) for name, moved in pairs]
    return samples
