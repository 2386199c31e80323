"""Lightning checkpoints (.ckpt + --factory) convert like PyTorch models; the reference for the
numbers here is the module Lightning itself loads from the checkpoint."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.conftest import listing

FACTORY = "tests.zoo_lightning:LitClassifier"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from tests import zoo_lightning
    return zoo_lightning.save_all(tmp_path_factory.mktemp("lightning"))


def test_checkpoint_is_a_trained_one(checkpoints):
    from tests.zoo_lightning import LitClassifier
    checkpoint = torch.load(checkpoints["classifier"], weights_only=True)
    assert checkpoint["global_step"] == 12 and checkpoint["hyper_parameters"]["hidden"] == 12
    fresh = LitClassifier(hidden=12)
    moved = checkpoint["state_dict"]["net.0.weight"] - fresh.state_dict()["net.0.weight"]
    assert moved.abs().max() > 1e-3  # the optimizer changed the weights
    running_var = checkpoint["state_dict"]["net.1.running_var"]
    assert not torch.allclose(running_var, torch.ones_like(running_var))  # BatchNorm saw data


def test_lightning_checkpoint_converts_with_parity(cli, checkpoints, tmp_path):
    from tests.zoo_lightning import LitClassifier
    dst = tmp_path / "classifier.onnx"
    result = cli("convert", checkpoints["classifier"], dst, "--factory", FACTORY, "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["source_format"] == "lightning" and report["checked"] and report["passed"]
    # Independently: Lightning's own loading of the checkpoint, against ONNX Runtime, at a new batch size.
    reference = LitClassifier.load_from_checkpoint(checkpoints["classifier"], map_location="cpu").eval()
    session = ort.InferenceSession(str(dst))
    assert [i.name for i in session.get_inputs()] == ["image"]  # forward()'s argument, shape from example_input_array
    image = np.random.default_rng(0).standard_normal((5, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(image)).numpy()
    got = session.run(None, {"image": image})[0]
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)


def test_plain_factory_takes_the_state_dict_without_its_prefix(cli, checkpoints, tmp_path):
    """A function building the bare network gets the checkpoint's 'model.*' weights."""
    from tests.zoo_lightning import LitWrapper
    dst = tmp_path / "plain.onnx"
    result = cli("convert", checkpoints["wrapper"], dst, "--factory", "tests.zoo_lightning:plain_net",
                 "--input-shape", "features:1,6", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]
    reference = LitWrapper.load_from_checkpoint(checkpoints["wrapper"], map_location="cpu").eval()
    features = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(features)).numpy()
    got = ort.InferenceSession(str(dst)).run(None, {"features": features})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)


def test_info_shows_what_the_checkpoint_recorded(cli, checkpoints):
    result = cli("info", checkpoints["classifier"], "--factory", FACTORY, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["format"] == "lightning" and data["kind"] == "Lightning checkpoint"
    assert data["hyper_parameters"] == {"hidden": 12, "classes": 3, "lr": 0.05}
    assert data["global_step"] == 12 and data["lightning_version"]
    assert data["inputs"] == [{"name": "image", "shape": [None, 3, 16, 16], "dtype": "float32"}]


def test_validate_takes_the_factory(cli, checkpoints, tmp_path):
    dst = tmp_path / "classifier.onnx"
    assert cli("convert", checkpoints["classifier"], dst, "--factory", FACTORY).code == 0
    result = cli("validate", checkpoints["classifier"], dst, "--factory", FACTORY, "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]


# -- bad input: exit 2, nothing written -------------------------------------------------------------
def test_missing_factory_says_what_to_give(cli, checkpoints, tmp_path):
    result = cli("convert", checkpoints["classifier"], tmp_path / "out.onnx")
    assert result.code == 2
    assert "holds weights and hyper-parameters, not the model's code" in result.err and "--factory" in result.err
    assert listing(tmp_path) == []


def test_wrong_class_is_refused(cli, checkpoints, tmp_path):
    result = cli("convert", checkpoints["wrapper"], tmp_path / "out.onnx", "--factory", FACTORY)
    assert result.code == 2
    assert "do not fit 'tests.zoo_lightning:LitClassifier'" in result.err
    assert listing(tmp_path) == []


def test_pickled_objects_in_a_checkpoint_are_not_unpickled(cli, checkpoints, tmp_path):
    """A checkpoint whose hyper-parameters hold a Python object would run code to load: refused."""
    checkpoint = torch.load(checkpoints["classifier"], weights_only=True)
    checkpoint["hyper_parameters"]["activation"] = torch.nn.ReLU()  # any class instance
    tainted = tmp_path / "tainted.ckpt"
    torch.save(checkpoint, tainted)
    result = cli("convert", tainted, tmp_path / "out.onnx", "--factory", FACTORY)
    assert result.code == 2
    assert "refusing to unpickle it" in result.err
    assert listing(tmp_path) == ["tainted.ckpt"]


def test_bad_factory_spelling_is_a_usage_error(cli, checkpoints, tmp_path):
    result = cli("convert", checkpoints["classifier"], tmp_path / "out.onnx", "--factory", "LitClassifier")
    assert result.code == 2 and "write package.module:ClassName" in result.err


def test_factory_for_another_format_is_a_warning(cli, tmp_path):
    from tests.conftest import REPO
    result = cli("convert", REPO / "tests" / "data" / "mxnet" / "mtcnn_det2", tmp_path / "det2.onnx",
                 "--input-shape", "data:1,3,24,24", "--factory", FACTORY, "--json")
    assert result.code == 0, result.err
    assert any("--factory is not used for MXNet" in w for w in result.json()["warnings"])
