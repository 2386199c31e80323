"""Casting onto ONNX's narrow types in PyTorch. float8 (four kinds) and e8m0 have torch dtypes, but
torch's own conversions round and overflow differently from ONNX (it saturates where ONNX gives
NaN, and e8m0 rounds up by default in ONNX): values are rounded onto the type's grid here, in
float32, then converted exactly. int4/uint4/int2/uint2 and float4 have no torch dtype: they travel
in their carrier (narrow_types.py), int8 / uint8 / float32."""
from __future__ import annotations

import torch

from ..narrow_types import E8M0, NARROW, NarrowFloat, NarrowInt, carrier

NATIVE = {17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz", 24: "float8_e8m0fnu"}


def holder(code: int) -> torch.dtype | None:
    """The torch dtype a narrow ONNX type's values are held in (its own, else its carrier)."""
    name = NATIVE.get(int(code))
    if name is not None and hasattr(torch, name):
        return getattr(torch, name)
    name = carrier(code)
    return None if name is None else getattr(torch, name)


def is_carried(code: int) -> bool:
    """A narrow type without a torch dtype of its own."""
    return int(code) in NARROW and not (int(code) in NATIVE and hasattr(torch, NATIVE[int(code)]))


def cast_to_narrow(x: torch.Tensor, code: int, saturate: bool, round_mode: str) -> torch.Tensor:
    """``x`` rounded onto narrow type ``code`` as ONNX Cast does, held as :func:`holder` says."""
    kind = NARROW[int(code)]
    if isinstance(kind, NarrowInt):
        return _to_int(x, kind)
    wide = x.to(torch.float32)
    value = _to_e8m0(wide, saturate, round_mode) if int(code) == E8M0 else _to_float(wide, kind, saturate)
    return value.to(holder(code))


def _to_float(x: torch.Tensor, kind: NarrowFloat, saturate: bool) -> torch.Tensor:
    # The grid step at x's binade (never below the subnormal step) is a power of two: x / step is
    # exact and torch.round rounds half to even, as IEEE conversions do.
    bits = x.view(torch.int32)
    exponent = torch.clamp(((bits >> 23) & 0xFF) - 127, min=kind.min_exponent)
    step = ((exponent - kind.mantissa + 127) << 23).view(torch.float32)
    rounded = torch.round(x / step) * step
    over = torch.abs(rounded) > kind.largest
    if saturate or kind.overflow == "saturate":
        rounded = torch.where(over, torch.sign(x) * kind.largest, rounded)
        if kind.overflow == "saturate":  # no NaN in the type: ONNX's reference (ml_dtypes) gives zero
            rounded = torch.where(torch.isnan(x), torch.zeros_like(x), rounded)
    elif kind.overflow == "inf":
        rounded = torch.where(over, torch.sign(x) * float("inf"), rounded)
    else:
        rounded = torch.where(over, torch.full_like(x, float("nan")), rounded)
    return rounded


def _to_e8m0(x: torch.Tensor, saturate: bool, round_mode: str) -> torch.Tensor:
    # The float32 exponent field, rounded by the fraction bits as ONNX's to_float8e8m0 does; the
    # sign is dropped (the type is unsigned), NaN and inf become NaN.
    bits = x.view(torch.int32)
    field = (bits >> 23) & 0xFF
    special = field == 0xFF

    def has(mask: int) -> torch.Tensor:
        return (bits & mask) != 0
    if round_mode == "nearest":
        up = has(0x400000) & (has(0x200000) | has(0x1FFFFF) | (field > 0))
    elif round_mode == "up":
        up = has(0x7FFFFF)
    else:
        up = torch.zeros_like(special)
    up = up & ~special
    if saturate:
        up = up & (field != 0xFE)
    field = field + up.to(torch.int32)
    value = torch.where(field == 0, torch.full_like(x, 2.0 ** -127), (torch.clamp(field, max=0xFE) << 23).view(torch.float32))
    return torch.where(special | (field == 0xFF), torch.full_like(x, float("nan")), value)


def _to_int(x: torch.Tensor, kind: NarrowInt) -> torch.Tensor:
    # Floats truncate toward zero (NaN to 0), then every value wraps into the type's range, two's
    # complement, as numpy's astype (ONNX's reference) does.
    if x.is_floating_point():
        x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
        x = torch.clamp(x.to(torch.float64), -2.0 ** 62, 2.0 ** 62)
    x = x.to(torch.int64)
    wrapped = torch.remainder(x - kind.lowest, 1 << kind.bits) + kind.lowest
    return wrapped.to(torch.int8 if kind.signed else torch.uint8)
