"""Format detection reads content, and refuses a file whose content contradicts its suffix."""
import zipfile

import pytest

from modelport.errors import InvalidModelError, UnsupportedFormatError
from modelport.formats import detect, get_format


def test_each_format_is_recognised_by_content(keras_models, tmp_path):
    assert detect(keras_models["two_io.keras"]).name == "keras"
    assert detect(keras_models["two_io.h5"]).name == "keras"
    assert detect(keras_models["two_io_savedmodel"]).name == "savedmodel"
    assert detect(keras_models["cnn_bn.tflite"]).name == "tflite"
    # Without a telling suffix, content still decides.
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(keras_models["cnn_bn.tflite"].read_bytes())
    assert detect(renamed).name == "tflite"


def test_factory_spec_is_pytorch():
    assert detect("tests.zoo_torch:small_cnn").name == "pytorch"


@pytest.mark.parametrize("suffix,content,says", [
    (".onnx", b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
    (".tflite", b"", "empty"),
    (".pt", b"just some text\n", "text"),
    (".keras", b"PK\x03\x04 not really a zip", "damaged or truncated zip"),
])
def test_suffix_and_content_disagree(tmp_path, suffix, content, says):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(content)
    with pytest.raises(InvalidModelError, match=says):
        detect(path)


def test_valid_model_with_wrong_suffix_names_the_real_format(keras_models, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(keras_models["two_io.keras"].read_bytes())
    with pytest.raises(InvalidModelError) as info:
        detect(path)
    assert "Keras" in str(info.value) and ".keras" in str(info.value)


def test_unknown_content_without_suffix(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(200, 256)) * 4)
    with pytest.raises(UnsupportedFormatError, match="cannot tell"):
        detect(path)
    archive = tmp_path / "stuff.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedFormatError, match="zip archive of unknown content"):
        detect(archive)


def test_missing_path():
    with pytest.raises(InvalidModelError, match="no such file"):
        detect("does/not/exist.onnx")


def test_format_aliases():
    assert get_format("TorchScript").name == "pytorch"
    assert get_format("saved_model").name == "savedmodel"
    with pytest.raises(UnsupportedFormatError, match="unknown format 'coreml'"):
        get_format("coreml")
