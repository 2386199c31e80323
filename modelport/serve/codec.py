"""Tensors on the wire: Open Inference Protocol datatypes, JSON values and raw little-endian bytes.

Both transports hand the data plane a tensor's values in one of two shapes, and this module turns
either into a numpy array (or refuses it with a message naming the input):

- :class:`Raw` — bytes as the binary tensor extension (REST) and ``raw_input_contents`` (gRPC)
  carry them: little-endian elements back to back; BYTES elements each preceded by a 4-byte
  little-endian length.
- a Python sequence — JSON ``data`` (flat or nested) or gRPC's typed ``contents``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from math import prod

import numpy as np

from ..errors import ServeError

# OIP datatype -> numpy dtype name. BYTES is an object array of bytes; BF16 comes from ml_dtypes
# (an onnx dependency), resolved when first needed.
_NUMPY_NAMES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object", "BF16": "bfloat16",
}
DATATYPES = tuple(_NUMPY_NAMES)
_BY_NUMPY = {name: datatype for datatype, name in _NUMPY_NAMES.items()}

# The kinds of values a datatype accepts from JSON / typed contents: an integer tensor never takes
# 1.5 (numpy would truncate it silently), a BOOL tensor only true/false.
_ACCEPTED_KINDS = {"b": "b", "u": "biu", "i": "biu", "f": "biuf"}


def numpy_dtype(datatype: str) -> np.dtype:
    if datatype == "BF16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    try:
        return np.dtype(_NUMPY_NAMES[datatype])
    except KeyError:
        raise ServeError(f"unknown datatype {datatype!r}; the protocol's datatypes are "
                         f"{', '.join(DATATYPES)}") from None


def datatype_of(dtype: np.dtype) -> str:
    """The OIP datatype of a numpy dtype (object and string arrays are BYTES)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return "BYTES"
    try:
        return _BY_NUMPY[dtype.name]
    except KeyError:
        raise ServeError(f"numpy dtype {dtype.name!r} has no Open Inference Protocol datatype", status=500) from None


@dataclass(frozen=True)
class Raw:
    """A tensor's bytes as the binary extension or ``raw_input_contents`` carries them."""

    data: bytes | memoryview


def element_count(shape) -> int:
    return prod(shape) if shape else 1


def decode(name: str, datatype: str, shape: tuple[int, ...], values) -> np.ndarray:
    """The array a request's tensor stands for; ServeError (400) naming ``name`` when the values
    do not fill ``shape`` or do not fit ``datatype``."""
    count = element_count(shape)
    if isinstance(values, Raw):
        return _decode_raw(name, datatype, shape, count, values.data)
    return _decode_values(name, datatype, shape, count, values)


def _decode_raw(name, datatype, shape, count, data) -> np.ndarray:
    if datatype == "BYTES":
        return np.array(split_bytes(name, data, count), dtype=object).reshape(shape)
    dtype = numpy_dtype(datatype)
    if len(data) != count * dtype.itemsize:
        raise ServeError(f"input {name!r}: {len(data)} bytes of binary data, but shape {list(shape)} of "
                         f"{datatype} needs {count * dtype.itemsize} ({count} x {dtype.itemsize})")
    if dtype.kind == "b":  # any non-zero byte is true, as in C
        return (np.frombuffer(data, dtype=np.uint8) != 0).reshape(shape)
    return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)


def _decode_values(name, datatype, shape, count, values) -> np.ndarray:
    if datatype == "BYTES":
        flat = _flatten_bytes(name, values)
        if len(flat) != count:
            raise ServeError(f"input {name!r}: {len(flat)} values, but shape {list(shape)} holds {count}")
        return np.array(flat, dtype=object).reshape(shape)
    dtype = numpy_dtype(datatype)
    try:
        parsed = np.array(values)
    except ValueError:
        raise ServeError(f"input {name!r}: data is a ragged nested list; give it flat or as a "
                         f"rectangular nested list of shape {list(shape)}") from None
    if parsed.size != count:
        raise ServeError(f"input {name!r}: {parsed.size} values, but shape {list(shape)} holds {count}")
    if count and parsed.dtype.kind not in _ACCEPTED_KINDS.get(dtype.kind, "biuf"):
        raise ServeError(f"input {name!r}: {datatype} data must be {_kind_words(dtype.kind)}, "
                         f"got {_kind_words(parsed.dtype.kind)}")
    if dtype.kind in "iu" and count:
        info = np.iinfo(dtype)
        if parsed.min() < info.min or parsed.max() > info.max:
            raise ServeError(f"input {name!r}: values outside the range of {datatype} "
                             f"[{info.min}, {info.max}]")
    return parsed.astype(dtype).reshape(shape)


def _kind_words(kind: str) -> str:
    return {"b": "true/false", "i": "integers", "u": "integers", "f": "numbers"}.get(kind, "strings or other values")


def _flatten_bytes(name, values) -> list[bytes]:
    flat: list[bytes] = []
    stack = [iter(values if isinstance(values, (list, tuple)) else list(values))]
    while stack:
        for item in stack[-1]:
            if isinstance(item, (list, tuple)):
                stack.append(iter(item))
                break
            if isinstance(item, str):
                flat.append(item.encode())
            elif isinstance(item, (bytes, bytearray)):
                flat.append(bytes(item))
            else:
                raise ServeError(f"input {name!r}: BYTES data must be strings, got {type(item).__name__}")
        else:
            stack.pop()
    return flat


def split_bytes(name: str, data, count: int) -> list[bytes]:
    """BYTES elements from the wire form: each a 4-byte little-endian length, then the bytes."""
    view = memoryview(data)
    elements, offset = [], 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise ServeError(f"input {name!r}: BYTES data ends inside an element's 4-byte length")
        (size,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + size > len(view):
            raise ServeError(f"input {name!r}: a BYTES element of {size} bytes runs past the end of the data")
        elements.append(bytes(view[offset:offset + size]))
        offset += size
    if len(elements) != count:
        raise ServeError(f"input {name!r}: {len(elements)} BYTES elements, but the shape holds {count}")
    return elements


def encode_raw(array: np.ndarray) -> bytes:
    """An output's wire bytes (little-endian; BYTES length-prefixed)."""
    if array.dtype.kind in "OSU":
        parts = []
        for item in array.ravel():
            item = item.encode() if isinstance(item, str) else bytes(item)
            parts += [struct.pack("<I", len(item)), item]
        return b"".join(parts)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array).tobytes()


def json_values(array: np.ndarray):
    """An output as JSON ``data``: a flat list in row-major order (orjson serializes it natively)."""
    if array.dtype.kind in "OSU":
        return [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in array.ravel()]
    if array.dtype.name == "bfloat16":
        return array.astype(np.float32).ravel()
    return np.ascontiguousarray(array).ravel()
