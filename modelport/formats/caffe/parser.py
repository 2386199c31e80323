"""Reading Caffe networks without Caffe: prototxt (text format) and caffemodel (binary), current
and legacy V1 layers, and the model's input declarations in all their historical spellings.

The result is a :class:`CaffeNet`: inputs with shapes, and the deploy layers (TEST phase) in
order, each holding its parameters in the current LayerParameter form and the weight blobs that
the caffemodel has for a layer of the same name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InvalidModelError, UsageError
from ..base import folder_pair
from . import caffe_pb2 as pb

# V1 enum -> current type string (the layers we can convert, and the training-only ones we drop).
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
# Layers that only exist for training or data feeding: dropped from a deploy graph.
TRAINING_ONLY = {"Data", "ImageData", "HDF5Data", "HDF5Output", "MemoryData", "WindowData", "DummyData",
                 "Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss", "InfogainLoss",
                 "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss", "ContrastiveLoss", "Silence"}
_PARAM_FIELDS = [f.name for f in pb.V1LayerParameter.DESCRIPTOR.fields if f.name.endswith("_param")]


@dataclass
class CaffeLayer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    param: pb.LayerParameter
    blobs: list[pb.BlobProto] = field(default_factory=list)


@dataclass
class CaffeNet:
    name: str
    inputs: dict[str, tuple[int, ...]]
    layers: list[CaffeLayer]
    source: str = ""

    def outputs(self) -> list[str]:
        """Blobs that no layer reads after their last write, in the order those writes happen."""
        last_write: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            for blob in layer.tops:
                last_write[blob] = index
        read_later = {blob for blob, w in last_write.items()
                      if any(blob in layer.bottoms for layer in self.layers[w + 1:])}
        return [b for b in sorted(last_write, key=last_write.get) if b not in read_later]

    def last_writer(self) -> dict[str, CaffeLayer]:
        """Blob -> the layer that writes it last (in-place layers rewrite their bottom)."""
        return {blob: layer for layer in self.layers for blob in layer.tops}


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InvalidModelError(f"no such file: {str(path)!r}") from None


def load_prototxt(path: str | Path) -> pb.NetParameter:
    from google.protobuf import text_format
    text = _read(Path(path)).decode("utf-8", errors="replace")
    net = pb.NetParameter()
    try:
        text_format.Parse(text, net, allow_unknown_field=True, allow_unknown_extension=True)
    except text_format.ParseError as exc:
        raise InvalidModelError(f"{str(path)!r} is not a readable Caffe prototxt: {exc}",
                                hint="check the line it names; the file may be truncated") from exc
    if not net.layer and not net.layers:
        raise InvalidModelError(f"{str(path)!r} defines no layers")
    return net


def load_caffemodel(path: str | Path) -> pb.NetParameter:
    from google.protobuf.message import DecodeError
    data = _read(Path(path))
    net = pb.NetParameter()
    try:
        net.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise InvalidModelError(f"{str(path)!r} is not a readable caffemodel: {exc}",
                                hint="the file may be truncated or not a caffemodel (an HTML page?); download it again") from exc
    if not net.layer and not net.layers:
        raise InvalidModelError(f"{str(path)!r} holds no layers", hint="it may be truncated or not a caffemodel")
    return net


def upgrade_v1(layer: pb.V1LayerParameter) -> pb.LayerParameter:
    """A legacy V1 layer in the current form (type string, same parameter messages)."""
    enum_name = pb.V1LayerParameter.LayerType.Name(layer.type)
    upgraded = pb.LayerParameter(name=layer.name, type=V1_TYPES.get(enum_name, enum_name.title()),
                                 bottom=list(layer.bottom), top=list(layer.top))
    upgraded.include.extend(layer.include)
    upgraded.exclude.extend(layer.exclude)
    upgraded.blobs.extend(layer.blobs)
    for name in _PARAM_FIELDS:
        if layer.HasField(name) and name in pb.LayerParameter.DESCRIPTOR.fields_by_name:
            getattr(upgraded, name).CopyFrom(getattr(layer, name))
    return upgraded


def all_layers(net: pb.NetParameter) -> list[pb.LayerParameter]:
    return list(net.layer) + [upgrade_v1(layer) for layer in net.layers]


def _in_test_phase(layer: pb.LayerParameter) -> bool:
    test = pb.TEST
    if layer.include:
        return any(not rule.HasField("phase") or rule.phase == test for rule in layer.include)
    return not any(rule.HasField("phase") and rule.phase == test for rule in layer.exclude)


def blob_shape(blob: pb.BlobProto) -> tuple[int, ...]:
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))  # legacy 4-D


def blob_array(blob: pb.BlobProto) -> np.ndarray:
    data = np.asarray(blob.double_data if len(blob.double_data) else blob.data, dtype=np.float32)
    shape = blob_shape(blob)
    if int(np.prod(shape)) != data.size:
        # Legacy blobs may leave dims at 0; the flat data is what counts.
        shape = (data.size,)
    return data.reshape(shape)


def read_inputs(net: pb.NetParameter, layers: list[pb.LayerParameter]) -> dict[str, tuple[int, ...]]:
    """Inputs from `input:` + `input_shape`/`input_dim`, or from Input layers."""
    inputs: dict[str, tuple[int, ...]] = {}
    for i, name in enumerate(net.input):
        if len(net.input_shape) > i:
            inputs[name] = tuple(int(d) for d in net.input_shape[i].dim)
        elif len(net.input_dim) >= 4 * (i + 1):
            inputs[name] = tuple(int(d) for d in net.input_dim[4 * i: 4 * i + 4])
        else:
            raise InvalidModelError(f"input {name!r} has no shape (input_shape or input_dim)")
    for layer in layers:
        if layer.type == "Input":
            shapes = list(layer.input_param.shape)
            for i, top in enumerate(layer.top):
                if not shapes:
                    raise InvalidModelError(f"Input layer {layer.name!r} declares no shape")
                inputs[top] = tuple(int(d) for d in shapes[i if len(shapes) > 1 else 0].dim)
    if not inputs:
        raise InvalidModelError("the network declares no input (input:, input_shape or an Input layer)",
                                hint="is this a training prototxt? convert the deploy prototxt")
    return inputs


def read_net(prototxt: str | Path, caffemodel: str | Path | None = None) -> CaffeNet:
    """Parse the deploy definition and attach the caffemodel's blobs to its layers by name."""
    definition = load_prototxt(prototxt)
    layers_v2 = [layer for layer in all_layers(definition) if _in_test_phase(layer)]
    inputs = read_inputs(definition, layers_v2)
    weights: dict[str, list[pb.BlobProto]] = {}
    if caffemodel is not None:
        for layer in all_layers(load_caffemodel(caffemodel)):
            if layer.blobs:
                weights.setdefault(layer.name, list(layer.blobs))
    layers = []
    for layer in layers_v2:
        if layer.type in TRAINING_ONLY or layer.type == "Input":
            continue
        blobs = weights.get(layer.name) or list(layer.blobs)
        layers.append(CaffeLayer(layer.name, layer.type, list(layer.bottom), list(layer.top), layer, blobs))
    return CaffeNet(definition.name or Path(prototxt).stem, inputs, layers, str(prototxt))


def resolve_pair(source: str | Path, weights: str | Path | None = None) -> tuple[Path, Path]:
    """(prototxt, caffemodel) from a prototxt + --weights, a folder holding one of each, or a
    caffemodel with a same-named prototxt beside it."""
    source = Path(source)
    if source.is_dir():
        prototxts = sorted(source.glob("*.prototxt"))
        models = sorted(source.glob("*.caffemodel"))
        deploy = [p for p in prototxts if "deploy" in p.name]
        if len(deploy) == 1:
            prototxts = deploy
        return folder_pair(source, prototxts, models, weights, "one .prototxt and one .caffemodel",
                           hint="give the prototxt and --weights explicitly")
    if source.suffix == ".caffemodel":
        if weights is not None:
            raise UsageError("give the .prototxt as the model and the .caffemodel as --weights")
        prototxt = source.with_suffix(".prototxt")
        if not prototxt.is_file():
            raise UsageError(f"no {prototxt.name!r} beside {source.name!r}: Caffe weights need their network definition",
                             hint="pass the deploy .prototxt as the model and this file as --weights")
        return prototxt, source
    if weights is not None:
        return source, Path(weights)
    beside = source.with_suffix(".caffemodel")
    if beside.is_file():
        return source, beside
    raise UsageError(f"{source.name!r} defines the network but its weights are missing",
                     hint="pass --weights WEIGHTS.caffemodel")
