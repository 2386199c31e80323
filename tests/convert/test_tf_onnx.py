"""Keras, SavedModel and TFLite -> ONNX, each checked independently against its own framework."""
import numpy as np
import onnxruntime as ort
import pytest

from tests.parity import assert_outputs_match, noise_floors


def _ort(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _feeds_for(session, rng, batch, ranges=None):
    """Standard-normal feeds, or uniform in the (low, high) that ``ranges`` gives an input by name."""
    feeds = {}
    for spec in session.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in spec.shape]
        low_high = (ranges or {}).get(spec.name)
        values = rng.uniform(*low_high, shape) if low_high else rng.standard_normal(shape)
        feeds[spec.name] = values.astype(np.float32)
    return feeds


def _check_keras(keras_path, onnx_path, atol=1e-4, relative_to=None):
    import keras
    from modelport.formats.keras import expected_range
    model = keras.saving.load_model(str(keras_path), compile=False)
    session = _ort(onnx_path)
    rng = np.random.default_rng(7)
    ranges = {t.name: (r.low, r.high) for t in model.inputs if (r := expected_range(model, t)) is not None}
    for batch in (1, 3):
        feeds = _feeds_for(session, rng, batch, ranges)
        names = [output.name for output in session.get_outputs()]

        def run_keras(feeds):
            out = model([feeds[t.name] for t in model.inputs] if len(model.inputs) > 1 else feeds[model.inputs[0].name])
            return dict(zip(names, map(np.asarray, out if isinstance(out, (list, tuple)) else [out])))
        expected = run_keras(feeds)
        got = session.run(None, feeds)  # ONNX keeps the model's output order
        assert len(got) == len(expected)
        assert_outputs_match(expected, dict(zip(names, got)), atol=atol, relative_to=relative_to,
                             noise=noise_floors(run_keras, feeds))


@pytest.mark.parametrize("name", ["two_io.keras", "two_io.h5", "cnn_bn.keras", "recurrent.keras"])
def test_keras_converts_with_parity(cli, keras_models, tmp_path, name):
    dst = tmp_path / (name.replace(".", "_") + ".onnx")
    result = cli("convert", keras_models[name], dst, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] and data["source_format"] == "keras"
    parity = data["hops"][0]["parity"]
    assert parity["batch_sizes"] == [1, 3]
    assert all(o["max_abs"] is not None for o in parity["outputs"])
    _check_keras(keras_models[name], dst)


def test_two_io_names_survive(cli, keras_models, tmp_path):
    dst = tmp_path / "two.onnx"
    assert cli("convert", keras_models["two_io.keras"], dst).code == 0
    session = _ort(dst)
    assert [i.name for i in session.get_inputs()] == ["pixels", "extra"]
    assert [o.name for o in session.get_outputs()] == ["logits", "score"]


def test_savedmodel_converts_with_parity(cli, keras_models, tmp_path):
    import tensorflow as tf
    dst = tmp_path / "saved.onnx"
    result = cli("convert", keras_models["two_io_savedmodel"], dst, "--json")
    assert result.code == 0, result.err
    signature = tf.saved_model.load(str(keras_models["two_io_savedmodel"])).signatures["serving_default"]
    session = _ort(dst)
    feeds = _feeds_for(session, np.random.default_rng(3), 2)
    expected = signature(**{k: tf.constant(v) for k, v in feeds.items()})
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert_outputs_match({name: value.numpy() for name, value in expected.items()}, got)


def test_tflite_converts_with_parity(cli, keras_models, tmp_path):
    from ai_edge_litert.interpreter import Interpreter
    dst = tmp_path / "lite.onnx"
    result = cli("convert", keras_models["cnn_bn.tflite"], dst, "--json")
    assert result.code == 0, result.err
    interpreter = Interpreter(model_path=str(keras_models["cnn_bn.tflite"]))
    interpreter.allocate_tensors()
    x = np.random.default_rng(5).standard_normal((1, 16, 16, 3)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    session = _ort(dst)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert_outputs_match({"output": expected}, {"output": got})


@pytest.mark.slow
def test_mobilenet_v2_parity_at_1e4(cli, tmp_path):
    from tests import zoo_keras
    source = tmp_path / "mobilenet_v2.keras"
    zoo_keras.mobilenet_v2().save(source)
    dst = tmp_path / "mobilenet_v2.onnx"
    result = cli("convert", source, dst, "--atol", "1e-4", "--samples", "1", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]
    _check_keras(source, dst)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["EfficientNetB0", "ConvNeXtTiny", "MobileNetV3Small", "ResNet50"])
def test_stock_keras_application_converts_with_parity(cli, tmp_path, name):
    """Stock keras.applications models, preprocessing layers included: one ONNX input (EfficientNet's
    Normalization constants stay constants), grouped convolutions and exact GELU (ConvNeXt)
    translated, and the outputs match Keras at the default fp32 rule (on the logits' scale) when
    fed the pixels their Rescaling layers expect."""
    import onnx
    from tests import zoo_keras
    source = tmp_path / f"{name}.keras"
    zoo_keras.application(name).save(source)
    dst = tmp_path / f"{name}.onnx"
    result = cli("convert", source, dst, "--samples", "1", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] and not data["hops"][0]["parity"]["warnings"]
    assert len(onnx.load(str(dst)).graph.input) == 1  # the image; no preprocessing constant became an input
    _check_keras(source, dst)
