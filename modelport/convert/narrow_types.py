"""ONNX's narrow element types: float8 (four kinds), float4, the power-of-two scale type e8m0, and the
4- and 2-bit integers; what each is, and the *carrier* dtype a converter can hold its values in
exactly where its target framework has no such dtype (float32 for the float kinds, int8 / uint8
for the integers). Converters round onto a type's grid when they cast to it, and convert numpy
arrays at the model's boundary with :func:`to_carrier` / :func:`from_carrier`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NarrowFloat:
    """A small binary float: ``mantissa`` explicit bits, smallest normal exponent ``min_exponent``
    (unbiased), largest finite value ``largest``; what an overflow becomes when not saturating."""
    name: str  # the ml_dtypes name
    mantissa: int
    min_exponent: int
    largest: float
    overflow: str  # "inf", "nan" or "saturate" (no inf nor NaN: the type always saturates)


@dataclass(frozen=True)
class NarrowInt:
    name: str
    bits: int
    signed: bool

    @property
    def lowest(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0


E8M0 = 24  # unsigned powers of two 2**-127 .. 2**127 and NaN; ONNX rounds to it with a round_mode

NARROW = {
    17: NarrowFloat("float8_e4m3fn", 3, -6, 448.0, "nan"),
    18: NarrowFloat("float8_e4m3fnuz", 3, -7, 240.0, "nan"),
    19: NarrowFloat("float8_e5m2", 2, -14, 57344.0, "inf"),
    20: NarrowFloat("float8_e5m2fnuz", 2, -15, 57344.0, "nan"),
    21: NarrowInt("uint4", 4, False),
    22: NarrowInt("int4", 4, True),
    23: NarrowFloat("float4_e2m1fn", 1, 0, 6.0, "saturate"),
    E8M0: NarrowFloat("float8_e8m0fnu", 0, -127, 2.0 ** 127, "nan"),
    25: NarrowInt("uint2", 2, False),
    26: NarrowInt("int2", 2, True),
}
_BY_NAME = {kind.name: code for code, kind in NARROW.items()}


def carrier(code: int) -> str | None:
    """The dtype name (numpy, TF and torch spell it alike) carrying ONNX element type ``code``; None when it is not narrow."""
    kind = NARROW.get(int(code))
    if kind is None:
        return None
    if isinstance(kind, NarrowInt):
        return "int8" if kind.signed else "uint8"
    return "float32"


def narrow_code(array: np.ndarray) -> int | None:
    """The ONNX element type of an ml_dtypes narrow array (None for ordinary dtypes)."""
    return _BY_NAME.get(np.asarray(array).dtype.name)


def to_carrier(array):
    """A numpy array of a narrow ml_dtypes type as its carrier (exact); others as they are."""
    code = narrow_code(array) if isinstance(array, np.ndarray) else None
    return array if code is None else np.asarray(array).astype(carrier(code))


def from_carrier(array: np.ndarray, code: int) -> np.ndarray:
    """A carrier array back as ONNX element type ``code`` (values are on its grid already)."""
    import ml_dtypes
    return np.asarray(array).astype(getattr(ml_dtypes, NARROW[int(code)].name))


