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
