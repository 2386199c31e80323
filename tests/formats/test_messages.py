"""Models that need something this process lacks get a message naming it, not "truncated or
corrupt": a custom Keras layer, TFLite Flex ops, a .pt2 returning a library's types; --import
brings in the user's code, and a factory may return a Keras model as well as a torch one."""
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _modelport(*args):
    """A fresh process: nothing the test itself imported is registered there."""
    return subprocess.run([sys.executable, "-m", "modelport.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_custom_keras_layer_names_the_module_to_import(tmp_path):
    from tests.custom_layers import model_with_custom_layer
    path = tmp_path / "custom.keras"
    model_with_custom_layer().save(path)
    refused = _modelport("info", path)
    assert refused.returncode == 2, refused.stderr
    assert "custom Keras class 'LeCunTanh'" in refused.stderr and "--import tests.custom_layers" in refused.stderr
    assert "truncated" not in refused.stderr
    opened = _modelport("info", path, "--import", "tests.custom_layers", "--json")
    assert opened.returncode == 0, opened.stderr
    assert '"layers": 4' in opened.stdout


def test_pt2_returning_library_types_names_the_module_to_import(tmp_path):
    import torch
    from tests import zoo_hf
    path = tmp_path / "bert.pt2"
    torch.export.save(torch.export.export(zoo_hf.bert(), (torch.randint(0, 100, (2, 8)),), strict=False), str(path))
    refused = _modelport("info", path)
    assert refused.returncode == 2, refused.stderr
    assert "--import transformers.modeling_outputs" in refused.stderr and "truncated" not in refused.stderr
    assert "Traceback" not in refused.stderr  # torch's logged traceback is not dumped on the user
    assert _modelport("info", path, "--import", "transformers.modeling_outputs").returncode == 0


def test_tflite_with_flex_ops_says_so(cli, tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def cumulative(x):
        return tf.math.cumprod(x, axis=1)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([cumulative.get_concrete_function()], cumulative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    path = tmp_path / "flex.tflite"
    path.write_bytes(converter.convert())
    result = cli("info", path)
    assert result.code == 2
    assert "FlexCumprod" in result.err and "Flex delegate" in result.err and "truncated" not in result.err


def test_keras_model_from_a_factory(cli, tmp_path):
    dst = tmp_path / "cnn.onnx"
    result = cli("convert", "tests.zoo_keras:cnn_batchnorm", dst, "--json")
    assert result.code == 0, result.err
    assert result.json()["source_format"] == "keras" and result.json()["passed"]


@pytest.mark.parametrize("module,says", [("no_such_module_anywhere", "No module named"),
                                         ("tests.zoo_torch.nope", "No module named")])
def test_import_of_a_missing_module_is_exit_2(cli, module, says):
    result = cli("info", "tests.zoo_torch:small_cnn", "--import", module)
    assert result.code == 2 and says in result.err
