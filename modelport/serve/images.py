"""Images in: an image input whose preprocessing is declared also takes encoded images (JPEG, PNG,
WebP, BMP, GIF) as a BYTES tensor, one image per row; the server decodes, resizes to the input's
height and width, normalizes and lays them out as the model takes them (formats/images.py), and the
batch runs like any other (batched with other requests, cached, classified).

Declared by the model's config.pbtxt parameters (``image_mean`` and ``image_std``: one value or
one per channel, on 0..255 pixels; ``image_channel_order``: RGB or BGR), else by the value range
the model itself records for the input (a Keras Rescaling layer, TFLite normalization metadata,
what ``modelport convert`` stamps into the ONNX): 0..255 mapped onto it. A model that declares
neither takes only tensors: guessing a normalization would answer wrong numbers without an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ServeError, UsageError
from ..formats.images import ImageLayout, Normalization, decode

MEAN, STD, ORDER = "image_mean", "image_std", "image_channel_order"
MAX_IMAGES = 64   # per request: decoding is the server's work, bounded as the body size is


@dataclass(frozen=True)
class ImageInput:
    layout: ImageLayout
    normalization: Normalization
    dtype: np.dtype
    declared_by: str   # "config.pbtxt" or "the model's input range"


def _floats(config, key: str) -> tuple[float, ...] | None:
    if key not in config.parameters:
        return None
    text = config.parameters[key].string_value
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"config parameter {key} is {text!r}; give numbers separated by commas") from None


def image_inputs(config, inputs) -> dict[str, ImageInput]:
    """The inputs of a model that take encoded images, by name, with how they are prepared."""
    mean, std = _floats(config, MEAN), _floats(config, STD)
    order = config.parameters[ORDER].string_value.upper() if ORDER in config.parameters else "RGB"
    if order not in ("RGB", "BGR"):
        raise UsageError(f"config parameter {ORDER} is {order!r}; RGB or BGR")
    if (mean is None) != (std is None):
        raise UsageError(f"config parameters {MEAN} and {STD} go together; give both")
    found = {}
    for spec in inputs:
        if spec.shape is None or len(spec.shape) != 4 or spec.dtype.kind != "f":
            continue
        try:
            layout = ImageLayout.of(spec)
        except UsageError:
            continue
        if not layout.height or not layout.width:
            continue
        if mean is not None:
            if any(len(values) not in (1, layout.channels) for values in (mean, std)) or 0.0 in std:
                raise UsageError(f"config parameters {MEAN}/{STD} need 1 or {layout.channels} values, std non-zero")
            found[spec.name] = ImageInput(layout, Normalization(mean, std, order), spec.dtype, "config.pbtxt")
        elif spec.value_range is not None:
            low, high = spec.value_range.low, spec.value_range.high
            normalization = Normalization((-low * 255.0 / (high - low),), (255.0 / (high - low),), order)
            found[spec.name] = ImageInput(layout, normalization, spec.dtype, "the model's input range")
    if mean is not None and not found:
        raise UsageError(f"config parameters {MEAN}/{STD} are set, but no input is a float image (4-D, 1 or 3 "
                         "channels, fixed height and width)")
    return found


def decoded(images: dict[str, ImageInput], name: str, values: np.ndarray) -> np.ndarray:
    """The BYTES rows of an image input as the float batch the model takes; 400 naming the row that
    is no image, is truncated, or is too large."""
    target = images[name]
    rows = values.reshape(-1)
    if values.ndim not in (1, 2) or values.ndim == 2 and values.shape[1] != 1:
        raise ServeError(f"input {name!r}: send encoded images as a BYTES tensor of shape [N] (or [N, 1]), one "
                         f"image per row; got {list(values.shape)}")
    if len(rows) > MAX_IMAGES:
        raise ServeError(f"input {name!r}: {len(rows)} images in one request; at most {MAX_IMAGES}")
    batch = []
    for index, item in enumerate(rows):
        data = item if isinstance(item, (bytes, bytearray)) else str(item).encode()
        try:
            batch.append(decode(bytes(data), target.layout, target.normalization, target.dtype,
                                f"input {name!r} row {index}"))
        except ValueError as exc:
            raise ServeError(str(exc)) from None
    return np.stack(batch)

