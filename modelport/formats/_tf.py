"""Importing TensorFlow quietly, shared by the Keras, SavedModel and TFLite formats."""
from __future__ import annotations

from .._console import quiet_tensorflow


def import_tf():
    quiet_tensorflow()
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    return tf


def import_keras():
    import_tf()
    import keras
    return keras


def named_function(tf, session):
    """The TensorFlow function of a Keras model or SavedModel session, taking and giving tensors
    under the session's names: what TFLite's and TF.js's signatures are built from. (TFLite's
    converter from a Keras model names a model's outputs output_0, output_1, ... in an order that
    need not be the model's: a two-output model's outputs came out swapped.)"""
    if session.format_name == "savedmodel":
        return session.function
    model, input_specs, output_specs = session.model, session.inputs, session.outputs

    def serve(*args):
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        if isinstance(result, dict):
            result = [result[spec.name] for spec in output_specs]
        elif not isinstance(result, (list, tuple)):
            result = [result]
        return {spec.name: value for spec, value in zip(output_specs, result)}
    signature = [tf.TensorSpec(spec.shape, spec.dtype, name=spec.name) for spec in input_specs]
    return tf.function(serve, input_signature=signature).get_concrete_function()


def keras_tflite_converter(tf, session):
    """TFLite's converter for a Keras model, from its named function (see named_function), with the
    model's variables held by a tf.Module: Keras 3 variables are not TensorFlow trackables, and a
    converter given the model itself wrote a file whose weights were never loaded (outputs ~1e-23)."""
    holder = tf.Module()
    holder.variables_ = [getattr(v, "value", v) for v in session.model.variables]
    return tf.lite.TFLiteConverter.from_concrete_functions([named_function(tf, session)], holder)

