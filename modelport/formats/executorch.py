"""ExecuTorch programs (``.pte``), what ``modelport edge executorch`` writes, run by ExecuTorch's own
runtime (``executorch.runtime``: the XNNPACK delegate and the portable kernels an app links).

A ``.pte`` keeps no tensor names and plans its memory for a bounded batch. modelport's programs
carry their signature (names, dynamic batch, the batch bound, the mode) in a constant method,
``modelport_signature``, which returns it as JSON; a program without it gets positional names and
the shapes its method metadata declares. A batch beyond the bound runs ``max_batch`` rows at a
time, as an app feeding a batch-1 program would.
"""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from .._console import captured_output
from ..errors import InvalidModelError, first_line
from ..tensors import TensorSpec, ValueRange
from .base import Format, Probe, Session, register_format

SIGNATURE_METHOD = "modelport_signature"

# ExecuTorch's ScalarType codes (c10's numbering) of the dtypes a model's inputs and outputs take.
_SCALAR_TYPES = {0: np.uint8, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.int64, 5: np.float16, 6: np.float32,
                 7: np.float64, 11: np.bool_}


class PteSession(Session):
    format_name = "executorch"

    def __init__(self, path, *, threads: int = 0, **_ignored):
        super().__init__(path)
        try:
            # Quietly: torchao (imported by ExecuTorch) logs the CUDA kernels it cannot load, and the
            # runtime's CPU probe prints from C++ on first use.
            with captured_output():
                from executorch.runtime import Runtime
                _size_pool(threads)
                self._program = Runtime.get().load_program(str(self.path))
                self._method = self._program.load_method("forward")
        except ModuleNotFoundError:
            raise
        except Exception as exc:
            raise InvalidModelError(f"ExecuTorch cannot load {str(path)!r}: {first_line(exc)}",
                                    hint="the file may be truncated, have no 'forward' method, or need a backend "
                                         "this runtime lacks (this build has XNNPACK and the portable kernels)") from exc
        self.signature = self._read_signature()
        meta = self._method.metadata
        declared_in = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
        declared_out = [meta.output_tensor_meta(i) for i in range(meta.num_outputs())]
        self.max_batch: int | None = self.signature.get("max_batch")
        if self.signature:
            self.inputs = [signature_spec(entry) for entry in self.signature["inputs"]]
            self.outputs = [signature_spec(entry) for entry in self.signature["outputs"]]
        else:
            self.inputs = [_spec(f"input_{i}", info) for i, info in enumerate(declared_in)]
            self.outputs = [_spec(f"output_{i}", info) for i, info in enumerate(declared_out)]

    def _read_signature(self) -> dict[str, Any]:
        if SIGNATURE_METHOD not in self._program.method_names:
            return {}
        try:
            return json.loads(self._program.load_method(SIGNATURE_METHOD).execute([])[0])
        except Exception as exc:
            raise InvalidModelError(f"{str(self.path)!r} has an unreadable {SIGNATURE_METHOD} method: {first_line(exc)}") from exc

    @property
    def precision(self) -> str:
        return "int8" if self.signature.get("mode") == "int8" else super().precision

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch
        rows = next((len(v) for v in feeds.values() if np.ndim(v)), 1)
        step = self.max_batch or rows
        chunks = []
        for start in range(0, max(rows, 1), step):
            tensors = [torch.from_numpy(np.ascontiguousarray(feeds[spec.name][start:start + step] if self.max_batch
                                                             else feeds[spec.name], dtype=spec.dtype))
                       for spec in self.inputs]
            chunks.append([out.numpy().copy() for out in self._method.execute(tensors)])
        names = [spec.name for spec in self.outputs]
        if len(chunks) == 1:
            return dict(zip(names, chunks[0]))
        return {name: np.concatenate([chunk[i] for chunk in chunks]) for i, name in enumerate(names)}

    def describe(self) -> dict[str, Any]:
        facts = {"methods": sorted(self._program.method_names)}
        if self.signature:
            facts.update({"mode": self.signature.get("mode"), "max_batch": self.max_batch})
        return facts


def _size_pool(threads: int) -> None:
    """Size XNNPACK's thread pool, which is the process's, shared by every program loaded in it.
    ExecuTorch 1.4.1 can resize it only before the first program loads (a resize after that
    corrupted memory here), so the process's first session decides; later requests are moot."""
    global _POOL_FIXED
    if threads and not _POOL_FIXED:
        from executorch.extension.pybindings import _portable_lib
        _portable_lib._unsafe_reset_threadpool(threads)
    _POOL_FIXED = True


_POOL_FIXED = False


def signature_entry(spec: TensorSpec) -> dict[str, Any]:
    """One input or output as the signature method records it (its value range too, so that a
    later check feeds what the source expects)."""
    entry = spec.to_dict()
    if spec.value_range is not None:
        entry["value_range"] = spec.value_range.to_dict()
    return entry


def signature_spec(entry: dict[str, Any]) -> TensorSpec:
    value_range = entry.get("value_range")
    return TensorSpec(entry["name"], None if entry["shape"] is None else tuple(entry["shape"]), np.dtype(entry["dtype"]),
                      value_range=ValueRange.from_dict(value_range) if value_range else None)


def _spec(name: str, info) -> TensorSpec:
    dtype = _SCALAR_TYPES.get(int(info.dtype()))
    if dtype is None:
        raise InvalidModelError(f"an input or output of the program has ExecuTorch dtype code {int(info.dtype())}, "
                                "which modelport does not feed")
    return TensorSpec(name, tuple(info.sizes()), np.dtype(dtype))


_IDENTIFIER = re.compile(rb"ET\d\d")


def sniff_executorch(probe: Probe) -> str | None:
    # A flatbuffer whose file identifier (bytes 4..8) is ExecuTorch's schema version, "ET12" today.
    if not probe.is_dir and _IDENTIFIER.fullmatch(probe.head[4:8]):
        return "an ExecuTorch program"
    return None


register_format(Format("executorch", "ExecuTorch program", (".pte",), PteSession, sniff_executorch,
                       extra="executorch", runtime_modules=("executorch",), aliases=("pte",)))
