"""OpenVINO IR: ``NAME.xml`` (the graph) with ``NAME.bin`` (the weights) beside it, run by OpenVINO's
CPU plugin.

The CPU plugin computes in bfloat16 by default on CPUs that have it (AMX, AVX512-BF16), whatever
the IR says: a reference must compute what the model says, so sessions ask for f32 inference
precision (``precision_hint`` overrides, for measuring what a deployment with the default gets).
The input ranges modelport knows are kept in the IR's runtime info, as in ONNX metadata.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, first_line
from ..tensors import TensorSpec, ValueRange
from .base import Format, Probe, Session, register_format

RANGES_KEY = ("modelport", "input_ranges")  # where the input ranges live in the IR's rt_info


class OpenVinoSession(Session):
    format_name = "openvino"

    def __init__(self, path, *, threads: int = 0, precision_hint: str = "f32", **_ignored):
        super().__init__(path)
        import openvino as ov
        weights = self.path.with_suffix(".bin")
        if not weights.is_file():
            raise InvalidModelError(f"{str(self.path)!r} has no weights file beside it ({weights.name!r})",
                                    hint="an OpenVINO IR is two files, NAME.xml and NAME.bin, in one folder")
        core = ov.Core()
        try:
            self.model = core.read_model(str(self.path), str(weights))
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision_hint}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self._compiled = core.compile_model(self.model, "CPU", config)
        except Exception as exc:
            raise InvalidModelError(f"OpenVINO cannot load {str(self.path)!r}: {first_line(exc)}",
                                    hint="the .xml and .bin may not belong together, or come from a newer OpenVINO") from exc
        ranges = read_ranges(self.model)
        self.inputs = [TensorSpec(port.get_any_name(), _shape(port), port.get_element_type().to_dtype(),
                                  value_range=ranges.get(port.get_any_name())) for port in self.model.inputs]
        self.outputs = [TensorSpec(port.get_any_name(), _shape(port), port.get_element_type().to_dtype())
                        for port in self.model.outputs]
        self._request = self._compiled.create_infer_request()

    @property
    def precision(self) -> str:
        """int8 where NNCF put FakeQuantize nodes in, fp16 where the weights are stored in half
        precision (compressed, decompressed to f32 when the model is compiled)."""
        kinds = {op.get_type_name() for op in self.model.get_ops()}
        if "FakeQuantize" in kinds or "FakeConvert" in kinds:
            return "int8"
        if any(op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "f16"
               for op in self.model.get_ops()):
            return "fp16"
        return super().precision

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._request.infer({spec.name: np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype)
                                       for spec in self.inputs}, share_inputs=False)
        by_port = {port.get_any_name(): value for port, value in results.items()}
        return {spec.name: np.array(by_port[spec.name]) for spec in self.outputs}

    def describe(self) -> dict[str, Any]:
        ops = [op.get_type_name() for op in self.model.get_ops()]
        return {"name": self.model.get_friendly_name(), "ops": len(ops), "op_types": sorted(set(ops)),
                "weights": self.path.with_suffix(".bin").name}


def _shape(port) -> tuple | None:
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        return None
    return tuple(dim.get_length() if dim.is_static else None for dim in shape)


def read_ranges(model) -> dict[str, ValueRange]:
    try:
        text = model.get_rt_info(list(RANGES_KEY)).astype(str) if model.has_rt_info(list(RANGES_KEY)) else ""
        return {name: ValueRange.from_dict(value) for name, value in json.loads(text).items()} if text else {}
    except (ValueError, KeyError, TypeError, RuntimeError):
        return {}  # a damaged record: the check falls back to its default feeds


def write_ranges(model, ranges) -> None:
    if ranges:
        model.set_rt_info(json.dumps({name: r.to_dict() for name, r in ranges.items()}), list(RANGES_KEY))


def sniff_openvino(probe: Probe) -> str | None:
    if probe.is_dir or not probe.head.lstrip().startswith(b"<"):
        return None
    if b"<net " in probe.text(1024):
        return "an OpenVINO IR graph (.xml)"
    return None


register_format(Format("openvino", "OpenVINO IR", (".xml",), OpenVinoSession, sniff_openvino, extra="openvino",
                       runtime_modules=("openvino",), aliases=("ir", "openvino-ir")))


def weights_of(path: str | Path) -> Path:
    """The .bin an IR's .xml reads its weights from."""
    return Path(path).with_suffix(".bin")
