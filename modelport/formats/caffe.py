"""Caffe models (deploy .prototxt + .caffemodel), run by OpenCV's DNN module.

OpenCV 4.x reads Caffe natively and shares no code with our converter, which makes it the
independent reference for every Caffe parity check (OpenCV 5 dropped the Caffe importer).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError
from ..tensors import TensorSpec
from .base import Session


class CaffeSession(Session):
    format_name = "caffe"
    flexible_batch = True  # OpenCV reshapes the net to the batch it is given

    def __init__(self, source, *, weights=None, preprocessing=None, **_ignored):
        from ..convert.caffe.parser import read_net, resolve_pair
        prototxt, caffemodel = resolve_pair(source, weights)
        super().__init__(prototxt)
        self.prototxt, self.caffemodel = prototxt, caffemodel
        # Our parser validates the pair (missing layers, wrong blob shapes) with clear messages
        # before OpenCV, whose errors are terse, gets to see it.
        self.net = read_net(prototxt, caffemodel)
        self.preprocessing = preprocessing
        self._cv_net = self._load_opencv()
        self.inputs = [TensorSpec(name, (None, *shape[1:]), np.float32) for name, shape in self.net.inputs.items()]
        self.outputs = [TensorSpec(name, None, np.float32) for name in self.net.outputs()]
        writers = self.net.last_writer()
        self._layer_for_output = [writers[s.name] for s in self.outputs]

    def _load_opencv(self):
        import cv2
        try:
            net = cv2.dnn.readNetFromCaffe(str(self.prototxt), str(self.caffemodel))
        except cv2.error as exc:
            raise InvalidModelError(f"OpenCV cannot load {self.prototxt.name!r} + {self.caffemodel.name!r}: "
                                    f"{str(exc).strip().splitlines()[-1]}") from exc
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        if hasattr(net, "enableWinograd"):
            net.enableWinograd(False)  # exact convolutions: this is the reference
        return net

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for spec in self.inputs:
            value = np.ascontiguousarray(feeds[spec.name], dtype=np.float32)
            if self.preprocessing is not None:
                value = self.preprocessing.apply(value)
            self._cv_net.setInput(value, spec.name)
        results = self._cv_net.forward(self._layer_for_output)
        return {spec.name: np.array(value, copy=True) for spec, value in zip(self.outputs, results)}

    def describe(self) -> dict[str, Any]:
        import cv2
        from collections import Counter
        types = Counter(layer.type for layer in self.net.layers)
        return {"prototxt": str(self.prototxt), "caffemodel": str(self.caffemodel), "layers": len(self.net.layers),
                "layer_types": dict(sorted(types.items())), "runtime": f"OpenCV {cv2.__version__}"}


def open_caffe(source, **options) -> CaffeSession:
    return CaffeSession(source, **options)
