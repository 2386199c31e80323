"""Shared pieces of the Caffe tests: the real models in tests/data, softmax removal, independent runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from google.protobuf import text_format

from modelport.formats.caffe import caffe_pb2
from tests.conftest import REPO
from tests.parity import assert_outputs_match

# Real Caffe models copied into the repository (provenance: tests/data/SOURCES.md). The MTCNN
# R-Net and O-Net folders there hold the network their name says (the published folders had the
# prototxts swapped); the published pairing is rebuilt by the test that checks it is refused.
CAFFE_DATA = REPO / "tests" / "data" / "caffe"
TRAINED = {name: (f"{name}/deploy.prototxt", f"{name}/weights.caffemodel")
           for name in ("lenet", "cifar10_quick", "cifar10_full_v1", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")}


def without_final_softmax(prototxt: Path, dst: Path) -> tuple[Path, list[str]]:
    """Copy a deploy prototxt minus the Softmax layers that produce network outputs.

    With random (or confident trained) weights a final Softmax saturates to 0/1 and hides any
    difference in the logits before it; the comparison is made on those logits instead.
    Returns the new prototxt and the names of the logits blobs.
    """
    net = caffe_pb2.NetParameter()
    text_format.Parse(prototxt.read_text(), net, allow_unknown_field=True)
    consumed = {b for layer in list(net.layer) + list(net.layers) for b in layer.bottom}
    logits = []
    for container, is_softmax in ((net.layer, lambda l: l.type == "Softmax"),
                                  (net.layers, lambda l: l.type == caffe_pb2.V1LayerParameter.SOFTMAX)):
        for layer in list(container):
            if is_softmax(layer) and not set(layer.top) & (consumed - set(layer.bottom)):
                logits.extend(layer.bottom)
                container.remove(layer)
    dst.write_text(text_format.MessageToString(net))
    return dst, logits


def opencv_outputs(prototxt: Path, caffemodel: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every unconnected output of the net by top blob name, straight from OpenCV (no modelport code)."""
    import cv2
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    for name, value in feeds.items():
        net.setInput(value, name)
    layers = list(net.getUnconnectedOutLayersNames())
    definition = caffe_pb2.NetParameter()
    text_format.Parse(prototxt.read_text(), definition, allow_unknown_field=True)
    tops = {layer.name: list(layer.top) for layer in list(definition.layer) + list(definition.layers)}
    outputs = {}
    for layer, values in zip(layers, net.forwardAndRetrieve(layers)):
        # OpenCV names a single-top layer after the layer or after its top, depending on the net.
        for top, value in zip(tops.get(layer, [layer]), values):
            outputs[top] = np.array(value)
    return outputs


def onnx_outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def assert_close_to_scale(expected: np.ndarray, got: np.ndarray, name: str, relative: float = 1e-4) -> float:
    """max |got - expected| <= relative * max |expected|: the issue's 1e-4 relative to the output's scale."""
    return assert_outputs_match({name: expected}, {name: got}, atol=0.0, rtol=relative, relative_to="scale")
