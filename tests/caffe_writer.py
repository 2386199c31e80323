"""Test tooling: writing a .caffemodel with random weights for a network definition.

The blob shapes come from the converter's own layer walk (each handler asks for the blobs it
needs, with their shapes), so the writer covers every layer the converter does. The tests use it
to give Model Zoo definitions weights, then compare our ONNX against OpenCV on those weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modelport._atomic import atomic_output
from modelport.convert.caffe import LAYERS  # noqa: F401  (importing the package registers the layers)
from modelport.convert.caffe.graph import build_graph
from modelport.formats.caffe import caffe_pb2 as pb
from modelport.formats.caffe.parser import CaffeLayer, read_net


class RandomBlobs:
    """A BlobSource that invents plausible values per kind of blob and remembers them."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.blobs: dict[str, dict[int, np.ndarray]] = {}

    def __call__(self, layer: CaffeLayer, index: int, shape, kind: str) -> np.ndarray:
        stored = self.blobs.setdefault(layer.name, {})
        if index not in stored:
            stored[index] = self._make(tuple(shape), kind)
        return stored[index]

    def _make(self, shape, kind: str) -> np.ndarray:
        rng = self.rng
        if kind == "weight":  # He initialisation keeps activations near unit scale in deep nets
            fan_in = int(np.prod(shape[1:])) or 1
            return rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
        if kind == "variance":
            return rng.uniform(0.5, 1.5, shape).astype(np.float32) * 2.0  # stored times the scale factor
        if kind == "scale_factor":
            return np.full(shape, 2.0, np.float32)  # exercise the division by Caffe's scale factor
        if kind == "mean":
            return rng.normal(0, 0.1, shape).astype(np.float32) * 2.0
        if kind == "scale":
            return rng.uniform(0.8, 1.2, shape).astype(np.float32)
        if kind == "slope":
            return rng.uniform(0.05, 0.3, shape).astype(np.float32)
        return rng.uniform(-0.1, 0.1, shape).astype(np.float32)  # biases


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _blob_bytes(array: np.ndarray) -> bytes:
    """A serialized BlobProto, its data written as one packed field straight from the array's
    bytes: going through Python floats takes seconds for AlexNet's 60 M weights."""
    shape = pb.BlobShape(dim=array.shape).SerializeToString()
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return (b"\x3a" + _varint(len(shape)) + shape       # field 7: shape
            + b"\x2a" + _varint(len(data)) + data)      # field 5: data, packed floats


def write_random_caffemodel(prototxt: str | Path, dst: str | Path, seed: int = 0) -> Path:
    """Write ``dst`` holding random weights for every layer of ``prototxt`` that has weights."""
    net = read_net(prototxt)
    source = RandomBlobs(seed)
    build_graph(net, blobs=source)
    model = pb.NetParameter(name=net.name)
    for layer in net.layers:  # every layer, as Caffe writes them, with blobs where it has weights
        arrays = source.blobs.get(layer.name, {})
        entry = model.layer.add(name=layer.name, type=layer.type)
        entry.bottom.extend(layer.bottoms)
        entry.top.extend(layer.tops)
        for index in sorted(arrays):
            entry.blobs.add().MergeFromString(_blob_bytes(arrays[index]))
    dst = Path(dst)
    with atomic_output(dst) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return dst
