"""Every format opens as a Session that describes its io and runs like its own framework."""
import numpy as np
import pytest
import torch

from modelport.errors import InvalidModelError, UntrustedPickleError, UsageError
from modelport.formats import open_model
from modelport.formats.input_specs import parse_input_specs
from tests import zoo_torch


def test_info_keras_json(cli, keras_models):
    result = cli("info", keras_models["two_io.keras"], "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["format"] == "keras"
    assert data["inputs"] == [{"name": "pixels", "shape": [None, 12, 12, 3], "dtype": "float32"},
                              {"name": "extra", "shape": [None, 5], "dtype": "float32"}]
    assert [o["name"] for o in data["outputs"]] == ["logits", "score"]
    assert data["size_bytes"] == keras_models["two_io.keras"].stat().st_size


def test_info_savedmodel_and_tflite(cli, keras_models):
    saved = cli("info", keras_models["two_io_savedmodel"], "--json").json()
    assert saved["format"] == "savedmodel" and saved["signature"] == "serving_default"
    assert sorted(i["name"] for i in saved["inputs"]) == ["extra", "pixels"]
    lite = cli("info", keras_models["cnn_bn.tflite"], "--json").json()
    assert lite["format"] == "tflite"
    assert lite["inputs"][0]["shape"] == [None, 16, 16, 3]


def test_info_table_output(cli, keras_models):
    result = cli("info", keras_models["two_io.keras"])
    assert result.code == 0
    assert "pixels" in result.out and "[?, 12, 12, 3]" in result.out and "float32" in result.out


def test_info_onnx_reports_opset_and_producer(cli, tmp_path):
    model = zoo_torch.small_cnn()
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 8, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["image"], dynamic_axes={"image": {0: "n"}})
    data = cli("info", path, "--json").json()
    assert data["opset"] == 17 and "pytorch" in data["producer"]
    assert data["inputs"][0]["shape"] == [None, 3, 8, 8]


def test_torchscript_needs_shapes_then_runs_like_torch(tmp_path):
    model = zoo_torch.small_cnn()
    path = tmp_path / "cnn.pt"
    torch.jit.script(model).save(str(path))
    with open_model(path) as session:
        assert [s.name for s in session.inputs] == ["image"] and session.inputs[0].shape is None
        with pytest.raises(UsageError, match="--input-shape"):
            session.require_shapes()
    with open_model(path, input_specs=parse_input_specs(["1,3,16,16"])) as session:
        x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype("float32")
        got = session.run({"image": x})["output"]
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_exported_program_carries_its_shapes(tmp_path):
    model = zoo_torch.small_cnn()
    program = torch.export.export(model, (torch.rand(2, 3, 16, 16),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "cnn.pt2"
    torch.export.save(program, str(path))
    with open_model(path) as session:
        assert session.inputs[0].shape == (None, 3, 16, 16)
        assert session.outputs[0].name == "output"


def test_factory_with_weights_only_state_dict(tmp_path):
    model = zoo_torch.small_cnn()
    with torch.no_grad():
        model.head.bias.fill_(3.0)
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    with open_model("tests.zoo_torch:small_cnn", weights=weights,
                    input_specs=parse_input_specs(["image:1,3,8,8"])) as session:
        out = session.run({"image": np.zeros((1, 3, 8, 8), np.float32)})["output"]
    np.testing.assert_allclose(out, model(torch.zeros(1, 3, 8, 8)).detach().numpy(), rtol=1e-6)


def test_state_dict_that_does_not_fit_is_refused(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(zoo_torch.gru_classifier().state_dict(), weights)
    with pytest.raises(InvalidModelError, match="do not fit"):
        open_model("tests.zoo_torch:small_cnn", weights=weights)


def test_pickled_module_needs_trust(tmp_path):
    path = tmp_path / "full.pt"
    torch.save(zoo_torch.small_cnn(), path)
    with pytest.raises(UntrustedPickleError, match="arbitrary code"):
        open_model(path)
    with open_model(path, trust_pickle=True, input_specs=parse_input_specs(["1,3,8,8"])) as session:
        assert session.kind == "pickled_module"
    # A pickled module given as --weights is refused the same way.
    with pytest.raises(UntrustedPickleError):
        open_model("tests.zoo_torch:small_cnn", weights=path)


def test_tflite_session_resizes_batch(keras_models):
    from tests import zoo_keras  # noqa: F401  (keras_models built the model)
    with open_model(keras_models["cnn_bn.tflite"]) as session:
        for batch in (1, 4):
            out = session.run({session.inputs[0].name: np.ones((batch, 16, 16, 3), np.float32)})
            assert next(iter(out.values())).shape == (batch, 10)


def test_parse_input_specs():
    specs = parse_input_specs(["x:1,3,224,224", "ids:1,16:int64", "2,?"])
    assert specs[0].shape == (1, 3, 224, 224) and specs[0].dtype == np.float32
    assert specs[1].name == "ids" and specs[1].dtype == np.int64
    assert specs[2].shape == (2, None)
    # A dim written as a name (or -1, ?) is dynamic and keeps its name; a size must be a positive integer.
    named = parse_input_specs(["x:1,seq,3", "y:1,3,-1:float"])
    assert named[0].shape == (1, None, 3) and named[0].dim_names == (None, "seq", None)
    assert named[1].dim_names == (None, None, "y_dim2") and named[1].dtype == np.float32  # torch's float
    for bad in ("x:1,3.5,3", "x:1,0,3", "x:1,-2,3", "x:1,3:complex_thing"):
        with pytest.raises(UsageError):
            parse_input_specs([bad])


def test_keras_lambda_layer_is_refused_in_safe_mode(cli, tmp_path):
    import keras
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    result = cli("info", path)
    assert result.code == 2
    assert "Python code" in result.err and "Lambda" in result.err
