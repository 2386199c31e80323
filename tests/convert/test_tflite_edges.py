"""Keras and SavedModel -> TFLite (fp32) with TF's converter, and the chains the planner builds
through them: every hop checked, the TFLite run in LiteRT against the source's own framework."""
from __future__ import annotations

import numpy as np
import torch

from tests import zoo_torch
from tests.parity import assert_outputs_match


def _litert(path, x):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    (name,) = interpreter.get_signature_list()["serving_default"]["inputs"]
    return runner(**{name: x})


def test_keras_to_tflite(cli, keras_models, tmp_path):
    import keras
    dst = tmp_path / "cnn.tflite"
    result = cli("convert", keras_models["cnn_bn.keras"], dst, "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["keras->tflite"] and result.json()["passed"]
    x = np.random.default_rng(0).standard_normal((1, 16, 16, 3)).astype(np.float32)
    expected = np.asarray(keras.saving.load_model(str(keras_models["cnn_bn.keras"]))(x))
    (got,) = _litert(dst, x).values()
    assert_outputs_match({"logits": expected}, {"logits": got})


def test_pytorch_to_tflite_through_onnx_and_savedmodel(cli, tmp_path):
    dst = tmp_path / "cnn.tflite"
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "image:1,3,32,32", "--json")
    assert result.code == 0, result.err
    hops = result.json()["hops"]
    assert [h["edge"] for h in hops] == ["pytorch->onnx", "onnx->savedmodel", "savedmodel->tflite"]
    assert all(h["parity"]["passed"] and not h["parity"]["warnings"] for h in hops)  # names carried through
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = zoo_torch.small_cnn()(torch.from_numpy(x)).numpy()
    assert_outputs_match({"output": expected}, _litert(dst, x))


def test_a_two_output_keras_model_keeps_its_output_names_and_order(cli, keras_models, tmp_path):
    """TFLite's converter from a Keras model names the outputs output_0, output_1 in an order of its
    own (they came out swapped for this model, and the check paired a [N, 1] with a [N, 5]): the
    file's signature carries the model's own output names, for convert and for edge tflite."""
    import keras
    from ai_edge_litert.interpreter import Interpreter
    source = keras_models["two_io.keras"]
    model = keras.saving.load_model(str(source))
    names = [name.split("/")[0] for name in model.output_names] if hasattr(model, "output_names") else None
    result = cli("convert", source, tmp_path / "two_io.tflite", "--json")
    assert result.code == 0, result.err
    signature = Interpreter(model_path=str(tmp_path / "two_io.tflite")).get_signature_list()["serving_default"]
    assert not any(name.startswith("output_") for name in signature["outputs"]), signature
    if names:
        assert sorted(signature["outputs"]) == sorted(names)
    bundle = cli("edge", "tflite", source, tmp_path / "bundle", "--json")
    assert bundle.code == 0, bundle.err
    assert {o["name"] for o in bundle.json()["models"][0]["outputs"]} == set(signature["outputs"])
