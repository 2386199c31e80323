"""Caffe's input convention: BGR pixels in 0-255, mean-subtracted, then scaled.

The preprocessing is recorded in the ONNX ``metadata_props`` (so an app knows what to feed), and
with ``bake`` it becomes ops in front of the graph: the ONNX model then takes raw pixels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InvalidModelError, UsageError



@dataclass
class Preprocessing:
    """``model_input = (pixels[channel order -> BGR] - mean) * scale``."""

    mean: np.ndarray | None = None  # (C,) per channel, or (C, H, W) mean image
    scale: float = 1.0
    channel_order: str = "BGR"      # order of the pixels the deployed model will be fed
    mean_source: str | None = None

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        x = np.asarray(pixels, dtype=np.float32)
        if self.channel_order == "RGB":
            x = x[:, ::-1]
        if self.mean is not None:
            x = x - self._broadcast_mean(x.ndim)
        return (x * np.float32(self.scale)).astype(np.float32)

    def model_range(self):
        """The values the model itself takes when the app feeds it pixels 0..255 preprocessed so."""
        from ...tensors import ValueRange
        means = np.zeros(1) if self.mean is None else np.asarray(self.mean, np.float64).reshape(self.mean.shape[0], -1)
        ends = [(0.0 - means) * self.scale, (255.0 - means) * self.scale]
        low, high = float(min(e.min() for e in ends)), float(max(e.max() for e in ends))
        return ValueRange(low, high, "pixels 0..255 less the Caffe mean, times its scale (--mean/--scale)")

    def _broadcast_mean(self, rank: int) -> np.ndarray:
        mean = self.mean.astype(np.float32)
        return mean.reshape(mean.shape + (1,) * (rank - 1 - mean.ndim))

    def check_fits(self, shape) -> None:
        if self.mean is None:
            return
        channels = shape[1]
        if self.mean.shape[0] != channels or (self.mean.ndim == 3 and tuple(self.mean.shape[1:]) != tuple(shape[2:])):
            raise UsageError(f"--mean has shape {list(self.mean.shape)}, the input is {list(shape)}",
                             hint="give a per-channel mean (--mean B,G,R) or a mean image of the input's size")

    def to_metadata(self) -> str:
        mean = None if self.mean is None else (self.mean.tolist() if self.mean.ndim == 1 else
                                               {"image_shape": list(self.mean.shape),
                                                "per_channel_average": self.mean.mean(axis=(1, 2)).tolist()})
        return json.dumps({"channel_order": self.channel_order, "pixel_range": [0, 255], "mean": mean,
                           "mean_source": self.mean_source, "scale": self.scale,
                           "formula": "(pixels in channel_order, reordered to BGR - mean) * scale"})

    def bake(self, graph, name: str, shape) -> str:
        """Ops computing the model input from raw pixels; returns the tensor that replaces ``name``."""
        self.check_fits(shape)
        x = name
        if self.channel_order == "RGB":
            x = graph.op("Gather", [x, graph.ints("bgr_order", list(range(shape[1]))[::-1])], f"{name}/bgr", axis=1)
        if self.mean is not None:
            x = graph.op("Sub", [x, graph.const("mean", self._broadcast_mean(len(shape)))], f"{name}/centered")
        if self.scale != 1.0:
            x = graph.op("Mul", [x, graph.const("input_scale", self.scale)], f"{name}/scaled")
        return x if x != name else graph.op("Identity", [x], f"{name}/raw")


def parse_mean(text: str | None) -> tuple[np.ndarray | None, str | None]:
    """``B,G,R`` numbers, or a mean.binaryproto (a bare BlobProto, as Caffe's tools write it)."""
    if not text:
        return None, None
    path = Path(text)
    if path.exists():
        from google.protobuf.message import DecodeError
        from . import caffe_pb2
        from .parser import blob_array
        blob = caffe_pb2.BlobProto()
        try:
            blob.ParseFromString(path.read_bytes())
        except DecodeError as exc:
            raise InvalidModelError(f"{text!r} is not a mean .binaryproto: {exc}") from exc
        array = blob_array(blob)
        if array.ndim == 4:
            array = array[0]
        if array.ndim != 3 or array.size == 0:
            raise InvalidModelError(f"{text!r} holds a blob of shape {list(array.shape)}, not a C x H x W mean image")
        return array.astype(np.float32), str(path)
    try:
        return np.asarray([float(v) for v in text.split(",")], dtype=np.float32), None
    except ValueError:
        raise UsageError(f"--mean {text!r}: give B,G,R values or a .binaryproto file") from None


def make_preprocessing(mean: str | None, scale: float | None, channel_order: str | None) -> Preprocessing | None:
    if mean is None and scale is None and channel_order is None:
        return None
    order = (channel_order or "BGR").upper()
    if order not in ("BGR", "RGB"):
        raise UsageError(f"--channel-order {channel_order!r}: BGR or RGB")
    values, source = parse_mean(mean)
    return Preprocessing(values, 1.0 if scale is None else float(scale), order, source)
