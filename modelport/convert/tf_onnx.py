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


def _tensor_specs(tf, specs):
    return [tf.TensorSpec(s.shape, tf.as_dtype(s.dtype), name=s.name) for s in specs]


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
                                     hint="replace that layer/op, or raise --opset if a newer opset has it")


def _convert_function(tf2onnx, function, specs, opset):
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
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


def _attach_layer_map(model_proto, record: dict) -> None:
    produced = {name for node in model_proto.graph.node for name in node.output}
    found = {layer: tensor for layer, tensor in record.items() if tensor in produced}
    if found:
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = KERAS_LAYER_OUTPUTS, json.dumps(found)


@converter("keras", "onnx", "tf2onnx from a tf.function of the Keras model")
def keras_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """Keras model -> ONNX."""
    tf = import_tf()
    tf2onnx = _quiet_tf2onnx()
    model = session.model
    specs = _tensor_specs(tf, session.inputs)
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
    with _recording_layer_outputs(model, {}) as layer_outputs:
        model_proto = _convert_function(tf2onnx, serve, specs, opset)
    _attach_layer_map(model_proto, layer_outputs)
    return _write(model_proto, dst, opset, "Keras model")


@converter("savedmodel", "onnx", "tf2onnx from the serving signature")
def savedmodel_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """TensorFlow SavedModel -> ONNX."""
    tf = import_tf()
    tf2onnx = _quiet_tf2onnx()
    specs = _tensor_specs(tf, session.inputs)
    names = [s.name for s in session.inputs]
    signature = session.function

    @tf.function(input_signature=specs)
    def serve(*args):
        return signature(**dict(zip(names, args)))

    opset = options.opset or DEFAULT_TF_OPSET
    return _write(_convert_function(tf2onnx, serve, specs, opset), dst, opset, f"signature {session.signature_name!r}")


@converter("tflite", "onnx", "tf2onnx's TFLite importer")
def tflite_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """TFLite flatbuffer -> ONNX."""
    tf2onnx = _quiet_tf2onnx()
    opset = options.opset or DEFAULT_TF_OPSET
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_proto, _ = tf2onnx.convert.from_tflite(str(session.path), opset=opset)
    return _write(model_proto, dst, opset, "TFLite model")
