"""Keras, SavedModel and TFLite -> ONNX with tf2onnx.

Keras 3 models are traced through a ``tf.function`` with the model's own input signature (tf2onnx's
``from_keras`` targets tf.keras 2); SavedModels through their serving signature; TFLite files are
read by tf2onnx's flatbuffer importer. An op tf2onnx cannot translate is left in the graph under
its TensorFlow name: we look for such nodes and report them instead of writing an unusable model.
"""
from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from .._console import captured_output
from ..errors import UnsupportedOpError
from ..formats._tf import import_tf
from ..metadata import KERAS_LAYER_OUTPUTS
from .registry import ConvertOptions, converter

DEFAULT_TF_OPSET = 17
KNOWN_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}


def _quiet_tf2onnx():
    import_tf()
    import tf2onnx
    for name in ("tf2onnx", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return tf2onnx


def _tensor_specs(tf, specs, dynamic_batch: bool = True):
    """The traced signature; --fixed-batch turns a dynamic batch into 1."""
    def shape(spec):
        if dynamic_batch or not spec.shape or spec.shape[0] is not None:
            return spec.shape
        return (1, *spec.shape[1:])
    return [tf.TensorSpec(shape(s), tf.as_dtype(s.dtype), name=s.name) for s in specs]


def _fix_batch(model_proto, size: int = 1) -> None:
    """Pin a symbolic batch dim of the graph's inputs and outputs (TFLite sources, --fixed-batch)."""
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = size


def _write(model_proto, dst: Path, opset: int, source: str) -> Path:
    _reject_unconverted_ops(model_proto, opset, source)
    dst.write_bytes(model_proto.SerializeToString())
    return dst


def _reject_unconverted_ops(model_proto, opset: int, source: str) -> None:
    """tf2onnx keeps ops it cannot translate as nodes of their TF type; refuse such a graph."""
    import onnx.defs
    for node in model_proto.graph.node:
        if node.domain in KNOWN_DOMAINS and not onnx.defs.has(node.op_type, node.domain or ""):
            if node.domain == "com.microsoft":
                continue  # contrib ops that ONNX Runtime implements
            raise UnsupportedOpError(node.op_type, opset, where=f"{source} node {node.name!r}",
                                     framework="TensorFlow",
                                     hint=f"replace that layer/op; tf2onnx writes opsets {' to '.join(map(str, tf2onnx_opsets()))}, "
                                          "and no opset of it translates this op")


def _convert_erfc(ctx, node, name, args):
    """TensorFlow's Erfc (exact GELU: 0.5 x erfc(-x / sqrt 2), ConvNeXt's activation), which
    tf2onnx lacks, as 1 - Erf(x): ONNX has Erf from opset 9."""
    from tf2onnx import utils
    x = node.input[0]
    erf = ctx.make_node("Erf", [x], op_name_scope=node.name)
    one = ctx.make_const(utils.make_name(f"{node.name}/one"),
                         np.array(1, dtype=utils.map_onnx_to_numpy_type(ctx.get_dtype(x))))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


# TensorFlow ops tf2onnx does not translate, with our translation: {op: (handler, [])}.
CUSTOM_TF_OPS = {"Erfc": (_convert_erfc, [])}


def _convert_function(tf2onnx, function, specs, opset):
    """tf2onnx on a tf.function, with the graph inputs limited to the function's arguments.

    ``tf2onnx.convert.from_function`` takes every placeholder of the concrete function as a model
    input, tensors the function captures included: the constants of Keras preprocessing layers
    (Normalization's mean and variance in EfficientNet) then become extra ONNX inputs. Freezing
    turns those captures into constants; only the arguments are inputs.
    """
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common, tensor_names_from_structed
    concrete = function.get_concrete_function(*specs)
    arguments = len(tf.nest.flatten(concrete.structured_input_signature))
    input_names = [t.name for t in concrete.inputs[:arguments] if t.dtype != tf.dtypes.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    with captured_output(), warnings.catch_warnings(), tf.device("/cpu:0"):
        warnings.simplefilter("ignore")
        frozen = tf_loader.from_function(concrete, input_names, output_names)
        model_proto, _ = _convert_common(
            frozen, name=concrete.name, continue_on_error=True, opset=opset, input_names=input_names,
            custom_op_handlers=CUSTOM_TF_OPS,
            output_names=output_names, tensors_to_rename=tensor_names_from_structed(concrete, input_names, output_names))
    return model_proto


@contextlib.contextmanager
def _recording_layer_outputs(model, record: dict):
    """While tracing, note the TF tensor each layer returns (tf2onnx keeps those names in ONNX)."""
    tf = import_tf()
    patched = []
    for layer in model.layers:
        original = layer.call

        def call(*args, _layer=layer, _original=original, **kwargs):
            out = _original(*args, **kwargs)
            if isinstance(out, tf.Tensor) and hasattr(out, "name"):
                record.setdefault(_layer.name, out.name)
            return out
        # Bypass Keras attribute tracking: this is a temporary instance override of the method.
        object.__setattr__(layer, "call", call)
        patched.append(layer)
    try:
        yield record
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")


@contextlib.contextmanager
def _inlinable_grouped_convolutions():
    """While tracing, let Keras emit grouped convolutions as plain Conv2D ops.

    Keras 3's TensorFlow backend runs grouped convolutions (ConvNeXt's depthwise 7x7) inside a
    jit-compiled nested tf.function, because TensorFlow's CPU kernels lack them. That call stays a
    StatefulPartitionedCall that graph freezing does not inline and tf2onnx cannot convert. The
    traced graph is converted, never run by TensorFlow, so the plain op is what it should hold
    (tf2onnx turns it into an ONNX Conv with ``group``); the parity check runs the real model.
    """
    tf = import_tf()
    try:
        from keras.src import backend
        from keras.src.backend.tensorflow import nn as tf_nn
        original, data_format_of = tf_nn.conv, tf_nn._convert_data_format
    except (ImportError, AttributeError):  # another Keras layout: trace as it is
        yield
        return

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = backend.standardize_data_format(data_format)
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(),
                                 data_format=data_format_of(data_format, len(inputs.shape)), dilations=dilation_rate)
    tf_nn.conv = conv
    try:
        yield
    finally:
        tf_nn.conv = original


def _attach_layer_map(model_proto, record: dict) -> None:
    produced = {name for node in model_proto.graph.node for name in node.output}
    found = {layer: tensor for layer, tensor in record.items() if tensor in produced}
    if found:
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = KERAS_LAYER_OUTPUTS, json.dumps(found)


def tf2onnx_opsets() -> tuple[int, int]:
    from tf2onnx.constants import OPSET_TO_IR_VERSION
    return 7, max(OPSET_TO_IR_VERSION)


@converter("keras", "onnx", "tf2onnx from a tf.function of the Keras model", opsets=tf2onnx_opsets)
def keras_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """Keras model -> ONNX."""
    tf = import_tf()
    tf2onnx = _quiet_tf2onnx()
    model = session.model
    specs = _tensor_specs(tf, session.inputs, options.dynamic_batch)
    output_names = [s.name for s in session.outputs]

    @tf.function(input_signature=specs)
    def serve(*args):
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        if isinstance(result, dict):
            result = [result[n] for n in output_names]
        elif not isinstance(result, (list, tuple)):
            result = [result]
        return {n: tf.identity(r) for n, r in zip(output_names, result)}

    opset = options.opset or DEFAULT_TF_OPSET
    with _recording_layer_outputs(model, {}) as layer_outputs, _inlinable_grouped_convolutions():
        model_proto = _convert_function(tf2onnx, serve, specs, opset)
    _attach_layer_map(model_proto, layer_outputs)
    return _write(model_proto, dst, opset, "Keras model")


@converter("savedmodel", "onnx", "tf2onnx from the serving signature", opsets=tf2onnx_opsets)
def savedmodel_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """TensorFlow SavedModel -> ONNX."""
    tf = import_tf()
    tf2onnx = _quiet_tf2onnx()
    specs = _tensor_specs(tf, session.inputs, options.dynamic_batch)
    names = [s.name for s in session.inputs]
    signature = session.function

    @tf.function(input_signature=specs)
    def serve(*args):
        return signature(**dict(zip(names, args)))

    opset = options.opset or DEFAULT_TF_OPSET
    return _write(_convert_function(tf2onnx, serve, specs, opset), dst, opset, f"signature {session.signature_name!r}")


@converter("tflite", "onnx", "tf2onnx's TFLite importer", opsets=tf2onnx_opsets, source_options={"raw_io": True})
def tflite_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """TFLite flatbuffer -> ONNX."""
    tf2onnx = _quiet_tf2onnx()
    opset = options.opset or DEFAULT_TF_OPSET
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_proto, _ = tf2onnx.convert.from_tflite(str(session.path), opset=opset)
    if not options.dynamic_batch:
        batches = {s.shape[0] for s in session.inputs if s.shape and s.shape[0] is not None}
        _fix_batch(model_proto, batches.pop() if len(batches) == 1 else 1)
    _rename_io(model_proto, {tensor: name for name, tensor in session.tensor_names.items()})
    return _write(model_proto, dst, opset, "TFLite model")


def _rename_io(model_proto, renames: dict[str, str]) -> None:
    """Give graph inputs and outputs the names of the TFLite signature ("image" rather than
    "serving_default_image:0"), everywhere the graph uses them."""
    renames = {old: new for old, new in renames.items() if old != new}
    taken = {v.name for v in list(model_proto.graph.input) + list(model_proto.graph.output)}
    if not renames or set(renames.values()) & (taken - set(renames)):
        return
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in model_proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
