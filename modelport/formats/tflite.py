"""TFLite flatbuffers, run by the LiteRT interpreter (ai-edge-litert).

A quantized input or output (int8/uint8 with a scale) is presented as float32: feeds are
quantized with the tensor's scale and zero point, results dequantized, so that a quantized model
is compared with its float source on the same values (``raw_io=True`` keeps the integers).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .._console import captured_output
from ..errors import InvalidModelError, UnsupportedOpError, first_line
from ..tensors import TensorSpec, ValueRange
from .base import Format, Probe, Session, register_format


def _load_error(path, exc: Exception) -> Exception:
    """Say what LiteRT really refused: TensorFlow (Flex) ops, an unregistered custom op, or a
    damaged file."""
    text = " ".join(str(exc).split())
    flex = sorted(set(re.findall(r"\b(Flex\w+)", text)))
    if "Select TensorFlow op" in text or flex:
        return UnsupportedOpError(", ".join(flex) or "Flex (SELECT_TF_OPS)", where=f"{path.name!r}", framework="TFLite",
                                  cannot="be run by LiteRT in Python",
                                  hint="the model uses TensorFlow ops through the Flex delegate, which the LiteRT "
                                       "Python runtime does not link: it runs only where the Flex delegate is (Android: "
                                       "tensorflow-lite-select-tf-ops); convert without SELECT_TF_OPS to run it here")
    custom = re.search(r"unresolved custom op: (\w+)", text)
    if custom:
        return UnsupportedOpError(custom.group(1), where=f"{path.name!r}", framework="TFLite",
                                  cannot="be run by LiteRT", hint="a custom op: LiteRT runs it only with the op's kernel registered")
    damaged = any(key in text.lower() for key in ("identifier", "flatbuffer", "could not", "verif", "parse"))
    return InvalidModelError(f"LiteRT cannot load {str(path)!r}: {first_line(exc)}",
                             hint="the file may be truncated or corrupt" if damaged else None)


def _quantization(detail) -> tuple[float, int] | None:
    """(scale, zero point) of an integer tensor quantized per tensor, else None."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return float(scale), int(zero_point)
    return None


def _spec(detail, raw_io: bool, names: dict[int, str]) -> TensorSpec:
    signature = detail.get("shape_signature")
    dims = signature if signature is not None and len(signature) else detail["shape"]
    dtype = np.dtype(detail["dtype"]) if raw_io or _quantization(detail) is None else np.dtype(np.float32)
    name = names.get(detail["index"], detail["name"])
    return TensorSpec(name, tuple(None if d < 0 else int(d) for d in dims), dtype)


def _signature_names(interpreter) -> dict[int, str]:
    """Tensor index -> the name the model's only signature gives it ("image", not
    "serving_default_image:0"): the names the model was exported with."""
    try:
        signatures = interpreter._get_full_signature_list()
    except AttributeError:  # an interpreter without the call: tensor names it is
        return {}
    if len(signatures) != 1:
        return {}
    (signature,) = signatures.values()
    names = {index: key for key, index in {**signature.get("inputs", {}), **signature.get("outputs", {})}.items()}
    return names if len(set(names.values())) == len(names) else {}


def _quantize(value: np.ndarray, params: tuple[float, int], dtype: np.dtype) -> np.ndarray:
    scale, zero_point = params
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(value, np.float64) / scale + zero_point), info.min, info.max).astype(dtype)


def _plain_interpreter(path):
    """The flatbuffer as written, without the XNNPACK delegate (which folds weights and ops away);
    unallocated, so also for files whose ops this runtime cannot run."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    with captured_output():
        return Interpreter(model_path=str(path),
                           experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


MAX_PACKED_LABELS_BYTES = 10 << 20


def packed_labels(path) -> list[str] | None:
    """The class labels packed into a TFLite file with its Model Metadata (the associated files ride
    in a zip archive appended to the flatbuffer, as tflite-support and edge/metadata.py pack them): the
    lines of its labels file, or None. Only names and sizes are trusted before a member is read."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            texts = [info for info in archive.infolist() if info.filename.lower().endswith(".txt")
                     and "/" not in info.filename and info.file_size <= MAX_PACKED_LABELS_BYTES]
            chosen = next((info for info in texts if "label" in info.filename.lower()), texts[0] if texts else None)
            if chosen is None:
                return None
            lines = archive.read(chosen).decode("utf-8").splitlines()
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return [line.strip() for line in lines if line.strip()] or None


def metadata_normalization(path) -> list[tuple[list[float], list[float]] | None]:
    """Per input (in the subgraph's order), the (mean, std) of the NormalizationOptions its TFLite
    Model Metadata declares — what the app applies to pixels 0..255 before the model — or None.
    Read by the field numbers of tflite-support's metadata_schema.fbs (the tables edge/metadata.py
    writes): ModelMetadata.subgraph_metadata (3) -> SubGraphMetadata.input_tensor_metadata (2) ->
    TensorMetadata.process_units (4) -> ProcessUnit (options_type 0, options 1) ->
    NormalizationOptions (mean 0, std 1). A file without it, or unreadable, gives []."""
    try:
        from ai_edge_litert import schema_py_generated as schema
        data = bytearray(Path(path).read_bytes())
        model = schema.Model.GetRootAs(data, 0)
        entry = next((model.Metadata(i) for i in range(model.MetadataLength())
                      if model.Metadata(i).Name() in (b"TFLITE_METADATA", "TFLITE_METADATA")), None)
        if entry is None:
            return []
        buffer = model.Buffers(entry.Buffer())
        blob = bytearray(buffer.DataAsNumpy().tobytes()) if buffer.DataLength() else \
            data[buffer.Offset():buffer.Offset() + buffer.Size()]
        return _normalizations(blob)
    except Exception:  # noqa: BLE001 - metadata is a hint; a file without readable metadata has none
        return []


def _normalizations(blob: bytearray) -> list[tuple[list[float], list[float]] | None]:
    from flatbuffers import encode, number_types, packer, table

    def root(buf):
        return table.Table(buf, encode.Get(packer.uoffset, buf, 0))

    def tables(t, slot):
        offset = t.Offset(4 + 2 * slot)
        if not offset:
            return []
        start = t.Vector(offset)
        return [table.Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(offset))]

    def floats(t, slot):
        offset = t.Offset(4 + 2 * slot)
        if not offset:
            return []
        start = t.Vector(offset)
        return [t.Get(number_types.Float32Flags, start + 4 * i) for i in range(t.VectorLen(offset))]

    found = []
    subgraphs = tables(root(blob), 3)
    for tensor in tables(subgraphs[0], 2) if subgraphs else []:
        normalization = None
        for unit in tables(tensor, 4):
            kind_at = unit.Offset(4)
            kind = unit.Get(number_types.Uint8Flags, unit.Pos + kind_at) if kind_at else 0
            options_at = unit.Offset(6)
            if kind == 1 and options_at:  # NormalizationOptions
                options = table.Table(unit.Bytes, unit.Indirect(unit.Pos + options_at))
                mean, std = floats(options, 0), floats(options, 1)
                if mean and std:
                    normalization = (mean, std)
        found.append(normalization)
    return found


def pixel_range(mean: list[float], std: list[float]) -> ValueRange | None:
    """The inputs (pixel - mean) / std gives for pixels 0..255, over every channel."""
    mean_, std_ = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if not np.all(std_):
        return None
    ends = np.concatenate([np.ravel((0.0 - mean_) / std_), np.ravel((255.0 - mean_) / std_)])
    return ValueRange(float(ends.min()), float(ends.max()),
                      f"its metadata normalizes pixels 0..255 by mean {mean} and std {std}")


class TFLiteFile:
    """What a TFLite file declares (inputs, outputs, ops) read by LiteRT without running it: also
    for files LiteRT in Python cannot run (TensorFlow ops through the Flex delegate)."""

    def __init__(self, path):
        try:
            interpreter = _plain_interpreter(path)
        except Exception as exc:
            raise _load_error(Path(path), exc) from exc
        names = _signature_names(interpreter)
        self.inputs = [_spec(d, False, names) for d in interpreter.get_input_details()]
        self.outputs = [_spec(d, False, names) for d in interpreter.get_output_details()]
        self.ops = {op["op_name"] for op in interpreter._get_ops_details()}

    @property
    def flex_ops(self) -> list[str]:
        return sorted(op for op in self.ops if op.startswith("Flex"))


def _with_metadata_ranges(path, specs: list[TensorSpec]) -> list[TensorSpec]:
    """Float inputs whose metadata says how pixels are normalized expect that range."""
    import dataclasses
    normalizations = metadata_normalization(path)
    if len(normalizations) != len(specs):
        return specs
    result = []
    for spec, found in zip(specs, normalizations):
        value_range = pixel_range(*found) if found and spec.dtype.kind == "f" else None
        result.append(dataclasses.replace(spec, value_range=value_range) if value_range else spec)
    return result


class TFLiteSession(Session):
    format_name = "tflite"

    def __init__(self, path, *, threads: int | None = None, raw_io: bool = False, **_ignored):
        super().__init__(path)
        from ai_edge_litert.interpreter import Interpreter
        try:
            with captured_output():  # LiteRT announces its XNNPACK delegate on stderr when it plans memory
                self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except Exception as exc:
            raise _load_error(self.path, exc) from exc
        self._input_details = self.interpreter.get_input_details()
        self._output_details = self.interpreter.get_output_details()
        names = _signature_names(self.interpreter)
        self.inputs = [_spec(d, raw_io, names) for d in self._input_details]
        self.outputs = [_spec(d, raw_io, names) for d in self._output_details]
        self.inputs = _with_metadata_ranges(self.path, self.inputs)
        # The flatbuffer's own tensor names, by the names used here (converters see those).
        self.tensor_names = {spec.name: detail["name"] for spec, detail in
                             zip(self.inputs + self.outputs, list(self._input_details) + list(self._output_details))}
        self._shapes = [tuple(d["shape"]) for d in self._input_details]
        self._raw_io = raw_io
        self._precision: str | None = None

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = []
        for spec, detail in zip(self.inputs, self._input_details):
            params = None if self._raw_io else _quantization(detail)
            value = feeds[spec.name]
            arrays.append(np.ascontiguousarray(_quantize(value, params, np.dtype(detail["dtype"])) if params
                                               else np.asarray(value, dtype=spec.dtype)))
        shapes = [a.shape for a in arrays]
        if shapes != self._shapes:  # a new batch size: resize, then re-plan the memory
            for detail, shape in zip(self._input_details, shapes):
                self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=True)
            with captured_output():
                self.interpreter.allocate_tensors()
            self._shapes = shapes
            self._output_details = self.interpreter.get_output_details()
        for detail, array in zip(self._input_details, arrays):
            self.interpreter.set_tensor(detail["index"], array)
        self.interpreter.invoke()
        results = {}
        for spec, detail in zip(self.outputs, self._output_details):
            value = self.interpreter.get_tensor(detail["index"])
            params = None if self._raw_io else _quantization(detail)
            results[spec.name] = ((value.astype(np.float32) - params[1]) * np.float32(params[0]) if params
                                  else value.copy())
        return results

    @property
    def precision(self) -> str:
        """From the flatbuffer's own tensors and ops (read without the XNNPACK delegate, which
        folds weights away): quantized activations are int8, int8 weights alone (dynamic range)
        uint8-weights, float16 weights fp16."""
        if self._precision is None:
            self._precision = self._inspect_precision()
        return self._precision

    def op_names(self) -> set[str]:
        """The builtin (and custom) ops the file uses."""
        return TFLiteFile(self.path).ops

    def quantization_of(self, name: str) -> dict[str, Any]:
        """{"quantization": {"scale", "zero_point"}} for an integer-quantized input or output, else {}."""
        for spec, detail in zip(self.inputs + self.outputs, list(self._input_details) + list(self._output_details)):
            if spec.name == name and _quantization(detail):
                scale, zero_point = _quantization(detail)
                return {"quantization": {"scale": scale, "zero_point": zero_point,
                                         "dtype": np.dtype(detail["dtype"]).name}}
        return {}

    def _inspect_precision(self) -> str:
        if any(_quantization(d) for d in list(self._input_details) + list(self._output_details)):
            return "int8"
        plain = _plain_interpreter(self.path)
        types = {np.dtype(t["dtype"]).name for t in plain.get_tensor_details()}
        ops = {op["op_name"] for op in plain._get_ops_details()}
        if "QUANTIZE" in ops and types & {"int8", "uint8", "int16"}:
            return "int8"
        if types & {"int8", "uint8"}:
            return "uint8-weights"
        if "float16" in types:
            return "fp16"
        return "fp32"

    def describe(self) -> dict[str, Any]:
        signatures = list(self.interpreter.get_signature_list())
        return {"signatures": signatures, "tensors": len(self.interpreter.get_tensor_details())}


def open_tflite(path, **options) -> TFLiteSession:
    return TFLiteSession(path, **options)


def sniff_tflite(probe: Probe) -> str | None:
    if not probe.is_dir and probe.head[4:8] == b"TFL3":
        return "a TFLite flatbuffer"
    return None


register_format(Format("tflite", "TFLite", (".tflite",), open_tflite, sniff_tflite, extra="tf",
                       runtime_modules=("ai_edge_litert",), aliases=("litert",)))
