"""Caffe models (deploy .prototxt + .caffemodel), run by OpenCV's DNN module.

OpenCV 4.x reads Caffe natively and shares no code with our converter, which makes it the
independent reference for every Caffe parity check (OpenCV 5 dropped the Caffe importer).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ...errors import InvalidModelError, UnsupportedOpError
from ...tensors import TensorSpec, ValueRange
from ..base import Format, Probe, Session, register_format
from ..detect import is_text


class CaffeSession(Session):
    format_name = "caffe"
    flexible_batch = True  # OpenCV reshapes the net to the batch it is given

    def __init__(self, source, *, weights=None, preprocessing=None, **_ignored):
        from .parser import read_net, resolve_pair
        prototxt, caffemodel = resolve_pair(source, weights)
        super().__init__(prototxt)
        self.prototxt, self.caffemodel = prototxt, caffemodel
        # Our parser reads the pair first: an unreadable or truncated file gets a clear message
        # before OpenCV, whose errors are terse, sees it.
        self.net = read_net(prototxt, caffemodel)
        self.preprocessing = preprocessing
        self._cv_net = None  # loaded on first run: converting needs no OpenCV, checking does
        # With the preprocessing applied here (baked into the converted graph), the model takes raw pixels.
        pixels = ValueRange(0.0, 255.0, "the Caffe preprocessing is applied to raw pixels 0..255") \
            if preprocessing is not None else None
        self.inputs = [TensorSpec(name, (None, *shape[1:]), np.float32, value_range=pixels)
                       for name, shape in self.net.inputs.items()]
        self.outputs = [TensorSpec(name, None, np.float32) for name in self.net.outputs()]
        # OpenCV returns a layer's outputs by layer name: which layer and top index hold each output.
        writers = self.net.last_writer()
        self._writers = [(writers[s.name].name, writers[s.name].tops.index(s.name)) for s in self.outputs]
        self._pins: list[tuple[str, int]] = []
        self.warnings = list(_opencv_blind_spots(self.net))

    def _load_opencv(self):
        import cv2
        net = cv2.dnn.readNetFromCaffe(str(self.prototxt), str(self.caffemodel))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        if hasattr(net, "enableWinograd"):
            net.enableWinograd(False)  # exact convolutions: this is the reference
        # OpenCV may name a single-top layer after its top blob rather than after the layer.
        known = set(net.getLayerNames())
        self._pins = []
        for spec, (layer, index) in zip(self.outputs, self._writers):
            if layer in known:
                self._pins.append((layer, index))
            elif spec.name in known:
                self._pins.append((spec.name, 0))
            else:
                raise InvalidModelError(f"OpenCV has no layer producing output {spec.name!r} (looked for {layer!r})")
        return net

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import cv2
        try:
            return self._forward(feeds)
        except cv2.error as exc:
            # OpenCV creates layers lazily: an unknown layer type surfaces at the first forward.
            message = " ".join(str(exc).split())
            missing = re.search(r'Can.t create layer "([^"]+)" of type "([^"]+)"', message)
            if missing:
                raise UnsupportedOpError(missing.group(2), where=f"layer {missing.group(1)!r}", framework="OpenCV",
                                         hint="OpenCV, the Caffe reference runtime, has no such layer, so this "
                                              "model cannot be checked against Caffe") from exc
            raise InvalidModelError(f"OpenCV cannot run {self.prototxt.name!r} + {self.caffemodel.name!r}: "
                                    f"{message}") from exc

    def _forward(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._cv_net is None:
            self._cv_net = self._load_opencv()
        for spec in self.inputs:
            value = np.ascontiguousarray(feeds[spec.name], dtype=np.float32)
            if self.preprocessing is not None:
                value = self.preprocessing.apply(value)
            self._cv_net.setInput(value, spec.name)
        layers = list(dict.fromkeys(layer for layer, _ in self._pins))
        retrieved = dict(zip(layers, self._cv_net.forwardAndRetrieve(layers)))
        return {spec.name: np.array(retrieved[layer][index], copy=True)
                for spec, (layer, index) in zip(self.outputs, self._pins)}

    def describe(self) -> dict[str, Any]:
        import cv2
        from collections import Counter
        types = Counter(layer.type for layer in self.net.layers)
        return {"prototxt": str(self.prototxt), "caffemodel": str(self.caffemodel), "layers": len(self.net.layers),
                "layer_types": dict(sorted(types.items())), "runtime": f"OpenCV {cv2.__version__}"}


def _opencv_blind_spots(net):
    """Parameters OpenCV's Caffe layers ignore (seen in OpenCV 4.14): a parity failure there is
    OpenCV's, not the conversion's."""
    for layer in net.layers:
        if layer.type == "Log" and any(layer.param.log_param.HasField(f) for f in ("base", "scale", "shift")):
            yield f"layer {layer.name!r}: OpenCV ignores Log's base/scale/shift (it computes ln(x))"
        if layer.type == "LRN" and layer.param.lrn_param.k != 1.0:
            yield f"layer {layer.name!r}: OpenCV ignores LRN's k={layer.param.lrn_param.k:g} (it uses 1)"
        if layer.type == "Pooling" and layer.param.pooling_param.HasField("round_mode"):
            yield f"layer {layer.name!r}: OpenCV does not read Pooling's round_mode"


def open_caffe(source, **options) -> CaffeSession:
    return CaffeSession(source, **options)


def _looks_like_caffemodel(head: bytes) -> bool:
    # NetParameter fields in number order: name (1), legacy layers (2), inputs (3, 4), ...,
    # layer (100, whose tag is the varint a2 06).
    return head[:1] in (b"\x0a", b"\x12", b"\x1a", b"\x20") or head[:2] == b"\xa2\x06"


_PROTOTXT_KEYS = re.compile(rb"^\s*(name|layers?|input|input_dim|input_shape|force_backward|state)\s*[:{]", re.M)


def sniff_caffe(probe: Probe) -> str | None:
    path = probe.path
    if probe.is_dir:
        if any(path.glob("*.prototxt")) and any(path.glob("*.caffemodel")):
            return "a folder with a Caffe prototxt and caffemodel"
        return None
    if path.suffix == ".caffemodel" and _looks_like_caffemodel(probe.head):
        return "a Caffe NetParameter protobuf"
    if is_text(probe.head):
        text = probe.text()
        if _PROTOTXT_KEYS.search(text) and b"layer" in text:
            return "a Caffe network definition"
    return None


register_format(Format("caffe", "Caffe", (".prototxt", ".caffemodel"), open_caffe, sniff_caffe, extra="caffe",
                       runtime_modules=("cv2", "google"), open_options=frozenset({"weights", "preprocessing"})))
