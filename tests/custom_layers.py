"""A user's own Keras layer, registered for serialization: models that use it load only where this
module has been imported (``--import tests.custom_layers``)."""
import keras


@keras.saving.register_keras_serializable(package="modelport_tests")
class LeCunTanh(keras.layers.Layer):
    """1.7159 * tanh(2x/3), LeCun's scaled tanh."""

    def call(self, inputs):
        return 1.7159 * keras.ops.tanh(inputs * (2.0 / 3.0))


def model_with_custom_layer():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="features")
    hidden = LeCunTanh()(keras.layers.Dense(8)(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
