"""Turning an ONNX model into a ``tf.Module`` and a SavedModel."""
from __future__ import annotations

import re
from pathlib import Path

from ...formats._tf import import_tf
from ..registry import ConvertOptions, converter
from .graph import check_supported, opset_of, run_graph

# Initializers at least this large become tf.Variables (saved as checkpoints, not graph constants).
VARIABLE_MIN_SIZE = 16


def tf_name(name: str) -> str:
    """An ONNX tensor name as a valid TF signature key (letters, digits, _ . - /, not leading _)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/]", "_", name)
    return cleaned if re.match(r"[A-Za-z0-9.]", cleaned) else f"t{cleaned}"


def to_module(model):
    """A ``tf.Module`` whose ``serve`` tf.function computes the ONNX model (inputs and outputs by
    TF-safe ONNX names; dynamic dims stay ``None``)."""
    tf = import_tf()
    from onnx import numpy_helper
    from .tensor import tf_dtype
    graph = model.graph
    opset = opset_of(model)
    check_supported(graph, opset)
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    specs = []
    for value in inputs:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        specs.append(tf.TensorSpec(dims, tf_dtype(value.type.tensor_type.elem_type), name=tf_name(value.name)))

    module = tf.Module()
    constants, variables = {}, {}
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        constants[init.name] = array
        if array.size >= VARIABLE_MIN_SIZE and array.dtype.kind == "f":
            variables[init.name] = tf.Variable(array, trainable=False, name=tf_name(init.name))
    module.weights_by_name = variables
    output_names = [o.name for o in graph.output]

    def serve(*args):
        values = {name: tf.constant(array) for name, array in constants.items() if name not in variables}
        values.update({name: var for name, var in module.weights_by_name.items()})
        env = run_graph(graph, dict(zip([i.name for i in inputs], args)), opset, values, constants)
        return {tf_name(name): tf.identity(env[name], name=tf_name(name)) for name in output_names}

    # No autograph: the handlers build TF ops directly, and their errors (an op the converter
    # cannot translate) then reach the caller as themselves rather than wrapped by the tracer.
    module.serve = tf.function(serve, input_signature=specs, autograph=False)
    return module


@converter("onnx", "savedmodel", "modelport's ONNX -> TensorFlow converter")
def onnx_to_savedmodel(session, dst: Path, options: ConvertOptions) -> Path:
    """ONNX model -> TensorFlow SavedModel with a serving signature."""
    tf = import_tf()
    module = to_module(session.handle)
    concrete = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(dst), signatures={"serving_default": concrete})
    return dst
