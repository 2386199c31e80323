"""Deliberate edits of ONNX models: the known differences the validator must find."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def nth_node(model, op_type: str, n: int = 0):
    return [node for node in model.graph.node if node.op_type == op_type][n]


def perturb_weight(model, op_type: str = "Conv", n: int = 1, scale: float = 0.05, seed: int = 0):
    """Add noise to the weight (input 1) of the n-th ``op_type`` node; returns (model, node name)."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    node = nth_node(edited, op_type, n)
    for init in edited.graph.initializer:
        if init.name == node.input[1]:
            weight = numpy_helper.to_array(init)
            noise = np.random.default_rng(seed).standard_normal(weight.shape).astype(weight.dtype)
            init.CopyFrom(numpy_helper.from_array(weight + scale * noise * np.abs(weight).mean(), init.name))
            return edited, node.name
    raise ValueError(f"{node.name} has no initializer weight")


def replace_relu_with_leaky(model, n: int = 0, alpha: float = 0.1):
    """Swap the n-th Relu for its near neighbour LeakyRelu; returns (model, node name)."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    node = nth_node(edited, "Relu", n)
    node.op_type = "LeakyRelu"
    node.attribute.append(helper.make_attribute("alpha", alpha))
    return edited, node.name


def channels_last_input(model, name: str):
    """Make input ``name`` NHWC, transposed to NCHW inside the graph: same maths, other layout."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    inner = f"{name}__nchw"
    for node in edited.graph.node:
        for i, value in enumerate(node.input):
            if value == name:
                node.input[i] = inner
    edited.graph.node.insert(0, helper.make_node("Transpose", [name], [inner], perm=[0, 3, 1, 2], name="to_nchw"))
    graph_input = next(i for i in edited.graph.input if i.name == name)
    dims = graph_input.type.tensor_type.shape.dim
    n, c, h, w = [onnx.TensorShapeProto.Dimension() for _ in range(4)]
    for target, source in zip((n, c, h, w), dims):
        target.CopyFrom(source)
    del dims[:]
    dims.extend([n, h, w, c])
    return edited


def _copy(model):
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    return edited


def scale_conv_weights(model, factor: float = 1.01):
    """The weights of the middle Conv scaled by ``factor`` (a converter that folds a scale twice, or
    misses an epsilon); returns (model, node name)."""
    edited = _copy(model)
    convs = [node for node in edited.graph.node if node.op_type == "Conv"]
    node = convs[len(convs) // 2]
    for init in edited.graph.initializer:
        if init.name == node.input[1]:
            weight = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((weight * factor).astype(weight.dtype), init.name))
            return edited, node.name
    raise ValueError(f"{node.name} has no initializer weight")


def gelu_to_tanh(model):
    """Every exact Gelu turned into its tanh approximation (a converter that maps GELU to the
    fused form of another framework); returns (model, count)."""
    edited = _copy(model)
    nodes = [node for node in edited.graph.node if node.op_type == "Gelu"]
    if not nodes:
        raise ValueError("the model has no Gelu node")
    for node in nodes:
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("approximate", "tanh"))
    return edited, len(nodes)


def resize_corners(model):
    """Every Resize sampling with align_corners instead of its own coordinate mode (the classic
    resize mistake between frameworks); returns (model, count)."""
    edited = _copy(model)
    nodes = [node for node in edited.graph.node if node.op_type == "Resize"]
    if not nodes:
        raise ValueError("the model has no Resize node")
    for node in nodes:
        kept = [a for a in node.attribute if a.name != "coordinate_transformation_mode"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(helper.make_attribute("coordinate_transformation_mode", "align_corners"))
    return edited, len(nodes)
