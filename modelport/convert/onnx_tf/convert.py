"""Turning an ONNX model into a ``tf.Module`` and a SavedModel."""
from __future__ import annotations

import re
from pathlib import Path

from ...errors import UsageError
from ...formats._tf import import_tf
from ..registry import ConvertOptions, EdgeOutput, converter
from ..onnx_graph import opsets_of, static_info
from .graph import check_supported, run_graph
from .narrow import to_carrier
from .sequences import OptionalValue, TensorSequence, from_feed, to_result
from .layout import Laid, arrange, channels_last, rank_of

# --keep-io-layout: the order of the signature's image and volume tensors (rank 4 and 5; a rank-3
# tensor is as often a sequence, batch x time x features, as a 1-D signal, so it keeps its order).
IO_LAYOUTS = ("nchw", "nhwc")

# Initializers at least this large become tf.Variables (saved as checkpoints, not graph constants).
VARIABLE_MIN_SIZE = 16


def tf_name(name: str) -> str:
    """An ONNX tensor name as a TF signature key: a Python identifier, as tf.function would make it
    (``gpu_0/data_0`` -> ``gpu_0_data_0``); the parity check pairs the two spellings."""
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if re.match(r"[A-Za-z]", cleaned) else f"t{cleaned}"


def check_io_layout(value: str) -> str:
    """``value`` as one of IO_LAYOUTS (any case); UsageError otherwise."""
    if value.lower() not in IO_LAYOUTS:
        raise UsageError(f"--keep-io-layout {value!r}: choose one of {', '.join(IO_LAYOUTS)}")
    return value.lower()


def _io_order(rank: int, io_layout: str) -> tuple[int, ...]:
    """How a signature tensor of ``rank`` is ordered: ONNX's, or channels-last for images."""
    return channels_last(rank) if io_layout == "nhwc" and 4 <= rank <= 5 else tuple(range(rank))


def to_module(model, io_layout: str = "nchw"):
    """A ``tf.Module`` whose ``serve`` tf.function computes the ONNX model (inputs and outputs by
    TF-safe ONNX names; dynamic dims stay ``None``). With ``io_layout="nhwc"`` image inputs and
    outputs (rank 4 and 5) are channels-last in the signature; inside, the layout plan decides."""
    tf = import_tf()
    from onnx import numpy_helper
    from .dtypes import tf_dtype
    graph = model.graph
    opset = opsets_of(model)
    check_supported(graph, opset)
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    specs = []
    # Sequence and optional inputs have no TensorSpec: such a model is traced per call (the ONNX
    # backend runs it); it has no SavedModel signature (the ONNX loader refuses such models).
    structured = {value.name: value.type for value in inputs if not value.type.HasField("tensor_type")}
    for value in inputs:
        if value.name in structured:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        dims = [dims[axis] for axis in _io_order(len(dims), io_layout)]
        specs.append(tf.TensorSpec(dims, tf_dtype(value.type.tensor_type.elem_type), name=tf_name(value.name)))

    module = tf.Module()
    constants, variables = {}, {}
    for init in graph.initializer:
        array = to_carrier(numpy_helper.to_array(init))
        constants[init.name] = array
        if array.size >= VARIABLE_MIN_SIZE and array.dtype.kind == "f":
            variables[init.name] = tf.Variable(array, trainable=False, name=tf_name(init.name))
    module.weights_by_name = variables
    # ONNX value -> (TF tensor name, axis order, node, op type), from the last trace. Kept in a closure:
    # a dict set on a tf.Module would be wrapped for tracking (and saved).
    traced: dict[str, list] = {}
    module.tensor_record = lambda: dict(traced)
    output_names = [o.name for o in graph.output]
    info = static_info(model)

    def serve(*args):
        values = {name: tf.constant(array) for name, array in constants.items() if name not in variables}
        values.update({name: var for name, var in module.weights_by_name.items()})
        feeds = {value.name: from_feed(structured[value.name], arg) if value.name in structured else
                 Laid(arg, _io_order(len(arg.shape), io_layout)) if io_layout == "nhwc" else arg
                 for value, arg in zip(inputs, args)}
        env = run_graph(graph, feeds, opset, values, constants, info)
        traced.clear()
        traced.update(_tensor_record(graph, env))
        results = {}
        for name in output_names:
            value = env.raw[name]
            if isinstance(value, (TensorSequence, OptionalValue)):
                results[tf_name(name)] = to_result(value)
                continue
            rank = rank_of(value)
            if rank is not None:
                value = arrange(tf, value, _io_order(rank, io_layout))
            results[tf_name(name)] = tf.identity(value, name=tf_name(name))
        return results

    # No autograph: the handlers build TF ops directly, and their errors (an op the converter
    # cannot translate) then reach the caller as themselves rather than wrapped by the tracer.
    module.serve = tf.function(serve, input_signature=None if structured else specs, autograph=False)
    return module


def _tensor_record(graph, env) -> dict[str, list]:
    """Where each ONNX node output lives in the traced graph: tensor name, axis order, node, op."""
    record = {}
    for node in graph.node:
        for name in node.output:
            value = env.raw.get(name) if name else None
            tensor = value.tensor if isinstance(value, Laid) else value
            if getattr(tensor, "name", None) and hasattr(tensor, "op"):
                order = list(value.perm) if isinstance(value, Laid) else None
                record[name] = [tensor.name, order, node.name or node.op_type, node.op_type]
    return record


@converter("onnx", "savedmodel", "modelport's ONNX -> TensorFlow converter")
def onnx_to_savedmodel(session, dst: Path, options: ConvertOptions) -> EdgeOutput:
    """ONNX model -> TensorFlow SavedModel with a serving signature."""
    tf = import_tf()
    io_layout = check_io_layout(options.io_layout or "nchw")
    module = to_module(session.handle, io_layout)
    concrete = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(dst), signatures={"serving_default": concrete})
    _write_tensor_record(dst, module, concrete)
    # channels-last inputs: the parity check of this hop transposes the ONNX feeds
    return EdgeOutput(input_layout="NCHW:NHWC" if io_layout == "nhwc" else None)


def _write_tensor_record(dst: Path, module, concrete) -> None:
    """assets/<SAVEDMODEL_ONNX_TENSORS>: the ONNX value -> TF tensor map, for validate --localize."""
    import json
    from ...metadata import SAVEDMODEL_ONNX_TENSORS
    inputs = [spec.name for spec in concrete.structured_input_signature[0]]
    assets = dst / "assets"
    assets.mkdir(exist_ok=True)
    (assets / SAVEDMODEL_ONNX_TENSORS).write_text(json.dumps(
        {"function": "serve", "inputs": inputs, "tensors": module.tensor_record()}))
