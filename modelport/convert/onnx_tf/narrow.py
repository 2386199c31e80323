"""ONNX's narrow element types, which TensorFlow has no dtype for: float8 (four kinds), float4,
the power-of-two scale type e8m0, and the 4- and 2-bit integers.

A narrow tensor travels through the TF graph in a *carrier* dtype wide enough to hold each of
its values exactly: float32 for the float kinds, int8 / uint8 for the integers. Casting to a
narrow type is where the narrowing happens: the value is rounded onto the narrow type's grid
(with its overflow rule) and stays in the carrier, so every later op sees the exact value a
runtime with the real type would see. Casting from a narrow type is an ordinary cast of the
carrier. The SavedModel's signature therefore shows the carrier dtype for such inputs and
outputs; :func:`to_carrier` and :func:`from_carrier` convert numpy arrays at that boundary.
"""
from __future__ import annotations

import numpy as np

from ..narrow_types import E8M0, NARROW, NarrowFloat, NarrowInt, carrier, from_carrier, narrow_code, to_carrier  # noqa: F401  (used by the TF modules)


def cast_to_narrow(tf, x, code: int, saturate: bool = True, round_mode: str = "up"):
    """``x`` rounded onto narrow type ``code``, as ONNX Cast does it, in the type's carrier."""
    kind = NARROW[int(code)]
    if isinstance(kind, NarrowInt):
        return _to_int(tf, x, kind)
    if int(code) == E8M0:
        return _to_e8m0(tf, tf.cast(x, tf.float32), saturate, round_mode)
    return _to_float(tf, tf.cast(x, tf.float32), kind, saturate)


def _to_float(tf, x, kind: NarrowFloat, saturate: bool):
    # The grid step at x's binade (never below the subnormal step): a power of two, so x / step is
    # exact, and tf.round rounds half to even as IEEE conversions do. A value that rounds up into
    # the next binade lands on that binade's first value, which is also on the grid.
    bits = tf.bitcast(x, tf.int32)
    exponent = tf.maximum(tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 23), 0xFF) - 127, kind.min_exponent)
    step = tf.bitcast(tf.bitwise.left_shift(exponent - kind.mantissa + 127, 23), tf.float32)
    rounded = tf.round(x / step) * step
    over = tf.abs(rounded) > kind.largest
    if saturate or kind.overflow == "saturate":
        rounded = tf.where(over, tf.sign(x) * kind.largest, rounded)
        if kind.overflow == "saturate":  # no NaN in the type: ml_dtypes (ONNX's reference) gives zero
            rounded = tf.where(tf.math.is_nan(x), tf.zeros_like(x), rounded)
    elif kind.overflow == "inf":
        rounded = tf.where(over, tf.sign(x) * np.float32(np.inf), rounded)
    else:
        rounded = tf.where(over, tf.fill(tf.shape(x), np.float32(np.nan)), rounded)
    return rounded


def _to_e8m0(tf, x, saturate: bool, round_mode: str):
    # The float32 exponent field, rounded by the fraction bits as ONNX's to_float8e8m0 does; the sign
    # is dropped (the type is unsigned) and NaN / inf become NaN.
    bits = tf.bitcast(x, tf.int32)
    field = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 23), 0xFF)
    special = tf.equal(field, 0xFF)

    def has(mask):
        return tf.not_equal(tf.bitwise.bitwise_and(bits, mask), 0)
    if round_mode == "nearest":
        up = has(0x400000) & (has(0x200000) | has(0x1FFFFF) | (field > 0))
    elif round_mode == "up":
        up = has(0x7FFFFF)
    elif round_mode == "down":
        up = tf.zeros_like(special)
    else:
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError(f"Cast round_mode {round_mode!r}", hint="up, down and nearest are defined")
    up = up & ~special
    if saturate:
        up = up & tf.not_equal(field, 0xFE)
    field = field + tf.cast(up, tf.int32)
    value = tf.where(tf.equal(field, 0), tf.fill(tf.shape(x), np.float32(2.0 ** -127)),
                     tf.bitcast(tf.bitwise.left_shift(tf.minimum(field, 0xFE), 23), tf.float32))
    return tf.where(special | tf.equal(field, 0xFF), tf.fill(tf.shape(x), np.float32(np.nan)), value)


def _to_int(tf, x, kind: NarrowInt):
    # Floats truncate toward zero (NaN to 0), then every value wraps into the type's range, two's
    # complement: what numpy's astype, ONNX's reference, does for these types.
    if x.dtype.is_floating:
        x = tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)
        x = tf.clip_by_value(tf.cast(x, tf.float64), -2.0 ** 62, 2.0 ** 62)
    x = tf.cast(x, tf.int64)
    wrapped = tf.math.floormod(x - kind.lowest, 1 << kind.bits) + kind.lowest
    return tf.cast(wrapped, tf.int8 if kind.signed else tf.uint8)
