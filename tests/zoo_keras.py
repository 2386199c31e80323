"""Keras architectures for the conversion tests and benchmarks (random weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _keras():
    import keras
    keras.utils.set_random_seed(0)
    return keras


def two_inputs_two_outputs():
    """Functional model: image-like and vector inputs, class logits and a regression score."""
    keras = _keras()
    pixels = keras.Input((12, 12, 3), name="pixels")
    extra = keras.Input((5,), name="extra")
    x = keras.layers.Conv2D(8, 3, activation="relu")(pixels)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(8, activation="tanh")(extra)])
    logits = keras.layers.Dense(6, name="logits")(x)
    score = keras.layers.Dense(1, name="score")(x)
    return keras.Model([pixels, extra], [logits, score], name="two_io")


def cnn_batchnorm():
    """Sequential CNN with BatchNorm (non-trivial moving statistics) and a logits head."""
    keras = _keras()
    model = keras.Sequential([
        keras.Input((16, 16, 3), name="image"),
        # Layers named explicitly: Keras numbers unnamed layers per process, and tests name them.
        keras.layers.Conv2D(8, 3, padding="same", name="conv2d"),
        keras.layers.BatchNormalization(name="batch_normalization"), keras.layers.ReLU(name="re_lu"),
        keras.layers.MaxPooling2D(name="max_pooling2d"),
        keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise_conv2d"),
        keras.layers.BatchNormalization(name="batch_normalization_1"), keras.layers.ReLU(name="re_lu_1"),
        keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d"),
        keras.layers.Dense(10, name="logits")], name="cnn_bn")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, beta, rng.uniform(-0.1, 0.1, mean.shape).astype("float32"),
                               rng.uniform(0.5, 1.5, var.shape).astype("float32")])
    return model


def recurrent():
    """LSTM then GRU over a sequence of feature vectors."""
    keras = _keras()
    seq = keras.Input((10, 6), name="sequence")
    x = keras.layers.LSTM(12, return_sequences=True)(seq)
    x = keras.layers.GRU(8)(x)
    return keras.Model(seq, keras.layers.Dense(4, name="logits")(x), name="recurrent")


def calibrate_batchnorm(model, inputs) -> None:
    """Set every BatchNorm's moving statistics to those of ``inputs`` (one training-mode pass with
    momentum 0), so that random-weight activations keep a unit scale through a deep net."""
    keras = _keras()
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(inputs, training=True)
    for layer in norms:
        layer.momentum = 0.99


def application(name: str, size: int = 96):
    """A stock ``keras.applications`` model (random weights, logits out, the preprocessing the
    application builds in kept) with BatchNorm statistics calibrated on the inputs it expects, as a
    trained one's are: pixels 0..255 where it rescales them itself (modelport reads that range off
    the model, and the parity check feeds it), standard-normal images otherwise."""
    from modelport.formats.keras import expected_range
    keras = _keras()
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    rng = np.random.default_rng(0)
    expected = expected_range(model, model.inputs[0])
    images = (rng.uniform(expected.low, expected.high, (8, size, size, 3)) if expected is not None
              else rng.standard_normal((8, size, size, 3)))
    calibrate_batchnorm(model, images.astype("float32"))
    return model


def mobilenet_v2():
    """MobileNetV2(weights=None, classifier_activation=None) with BatchNorm statistics calibrated.

    With freshly initialised statistics the activations shrink layer after layer and the logits
    end near 1e-11, where any tolerance passes. One training-mode pass with momentum 0 sets every
    moving mean/variance to the batch statistics, so the logits keep a unit scale and a 1e-4
    tolerance means something.
    """
    keras = _keras()
    model = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    calibrate_batchnorm(model, np.random.default_rng(0).uniform(-1, 1, (8, 224, 224, 3)).astype("float32"))
    return model


def save_all(folder: Path) -> dict[str, Path]:
    """Save each model in the forms the tests read; returns name -> path."""
    import tensorflow as tf
    paths: dict[str, Path] = {}
    two_io = two_inputs_two_outputs()
    paths["two_io.keras"] = folder / "two_io.keras"
    two_io.save(paths["two_io.keras"])
    paths["two_io.h5"] = folder / "two_io.h5"
    two_io.save(paths["two_io.h5"])
    paths["two_io_savedmodel"] = folder / "two_io_savedmodel"
    two_io.export(str(paths["two_io_savedmodel"]), verbose=False)
    for name, build in (("cnn_bn", cnn_batchnorm), ("recurrent", recurrent)):
        paths[f"{name}.keras"] = folder / f"{name}.keras"
        build().save(paths[f"{name}.keras"])
    cnn = cnn_batchnorm()
    paths["cnn_bn.tflite"] = folder / "cnn_bn.tflite"
    paths["cnn_bn.tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(cnn).convert())
    return paths


def wide_mlp():
    """An MLP whose Dense kernels are large enough (>= 1024 values) for dynamic-range quantization."""
    keras = _keras()
    features = keras.Input((64,), name="features")
    hidden = keras.layers.Dense(128, activation="relu")(features)
    return keras.Model(features, keras.layers.Dense(10, name="logits")(hidden), name="wide_mlp")


def save_quantized(folder: Path) -> dict[str, Path]:
    """TFLite files from TF's own converter, each quantization TFLite users ship: full int8 with
    int8 input/output, int8 inside float io, float16 weights, and dynamic range (int8 weights)."""
    import tensorflow as tf
    cnn, mlp = cnn_batchnorm(), wide_mlp()
    paths = {"cnn.keras": folder / "cnn.keras", "mlp.keras": folder / "mlp.keras"}
    cnn.save(paths["cnn.keras"])
    mlp.save(paths["mlp.keras"])
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(32):
            yield [rng.standard_normal((1, 16, 16, 3)).astype(np.float32)]

    def write(name, model, configure):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        configure(converter)
        paths[name] = folder / name
        paths[name].write_bytes(converter.convert())

    def int8_io(c):
        c.representative_dataset = representative
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = c.inference_output_type = tf.int8

    def int8_float_io(c):
        c.representative_dataset = representative

    def fp16(c):
        c.target_spec.supported_types = [tf.float16]

    write("cnn_int8.tflite", cnn, int8_io)
    write("cnn_int8_float_io.tflite", cnn, int8_float_io)
    write("cnn_fp16.tflite", cnn, fp16)
    write("mlp_dynamic.tflite", mlp, lambda c: None)
    return paths
