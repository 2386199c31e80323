"""Tensor signatures and the dtype names each runtime uses for them.

Only numpy is imported here; the framework tables translate through dtype *names* so that this
module can be used on the CLI start-up path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple  # tuple[int | None, ...]; None marks a dynamic dim


@dataclass(frozen=True)
class ValueRange:
    """The values a float input expects, and who says so: a parity check's generated feeds are
    drawn uniformly from [low, high], so that a model calibrated on pixels 0..255 is not judged on
    standard-normal noise it never sees (its activations blow up, and rounding errors with them)."""

    low: float
    high: float
    why: str = field(default="", compare=False)  # provenance, shown in reports; not part of the range

    def __post_init__(self):
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"a value range needs finite low < high, not [{self.low:g}, {self.high:g}]")

    def describe(self) -> str:
        return f"uniform in [{self.low:.4g}, {self.high:.4g}]" + (f" ({self.why})" if self.why else "")

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "why": self.why}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValueRange:
        return cls(float(data["low"]), float(data["high"]), str(data.get("why", "")))


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output.

    ``shape`` is a tuple whose ``None`` entries are dynamic dims, or ``None`` when even the rank
    is unknown (a TorchScript model carries no shapes).
    """

    name: str
    shape: Shape | None
    dtype: np.dtype
    # Symbolic names of dynamic dims where the format records them (ONNX "batch", "seq_len").
    dim_names: tuple | None = field(default=None, compare=False)
    # For integer inputs used as indices: the exclusive upper bound of valid values, when known.
    index_bound: int | None = field(default=None, compare=False)
    # For float inputs: the values the model expects, where it says so (a Rescaling first layer,
    # normalization metadata); generated feeds are drawn from it instead of a standard normal.
    value_range: ValueRange | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in self.shape))

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.shape) and self.shape[0] is None

    def shape_str(self) -> str:
        if self.shape is None:
            return "?"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape),
                "dtype": self.dtype.name}


# onnxruntime reports types as strings such as "tensor(float)".
_ORT_TO_NUMPY = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16",
    "tensor(uint16)": "uint16", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
}
# torch.dtype and tf.DType expose names that map straight onto numpy's, except these.
_FRAMEWORK_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64",
                      "int": "int32", "short": "int16"}


def ort_type_to_numpy(type_str: str) -> np.dtype:
    try:
        return np.dtype(_ORT_TO_NUMPY[type_str])
    except KeyError:
        raise ValueError(f"onnxruntime type {type_str!r} is not a supported tensor type") from None


def framework_dtype_to_numpy(dtype) -> np.dtype:
    """torch.dtype / tf.DType / numpy dtype / string -> numpy dtype."""
    name = getattr(dtype, "name", None)  # tf.DType
    if not isinstance(name, str):
        name = str(dtype).replace("torch.", "")
    return np.dtype(_FRAMEWORK_ALIASES.get(name, name))

