"""The default check's verdict, both ways: correct conversions of models written elsewhere pass at
default tolerances, and a one-op defect fails on every route.

A rule that passes everything is as wrong as one that fails correct models, so each route has its
passing case beside the defects it must catch. The defects are real edits of a correct ONNX model
(tests/validate/onnx_edits.py), carried to the route's runtime by the real converter, and judged
against the correct model as a user's `modelport validate` would judge them.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.validate import onnx_edits

PROBE = "tests.zoo_torch:defect_probe"
PROBE_SHAPE = ("--input-shape", "image:1,3,32,32")
DEFECTS = {"conv weights x1.01": onnx_edits.scale_conv_weights, "GELU as tanh": onnx_edits.gelu_to_tanh,
           "resize with align_corners": onnx_edits.resize_corners}


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """The probe net as ONNX (torch's exporter through modelport), and each defective edit of it."""
    from modelport.convert import convert
    from modelport.formats.input_specs import parse_input_specs
    folder = tmp_path_factory.mktemp("probe")
    good = folder / "probe.onnx"
    convert(PROBE, good, input_specs=parse_input_specs([PROBE_SHAPE[1]]))
    model = onnx.load(good)
    paths = {}
    for name, edit in DEFECTS.items():
        paths[name] = folder / f"{name.split()[0]}.onnx"
        onnx.save(edit(model)[0], paths[name])
    return good, paths


def test_pytorch_to_onnx_passes_and_each_defect_fails(cli, probe):
    good, defects = probe
    assert cli("validate", PROBE, good, *PROBE_SHAPE).code == 0
    for name, path in defects.items():
        result = cli("validate", PROBE, path, *PROBE_SHAPE, "--json")
        assert result.code == 1, f"{name}: passed ({result.out[-400:]})"


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".tflite", ".pt2"])
def test_onnx_routes_pass_and_each_defect_fails(cli, probe, tmp_path, suffix):
    """ONNX -> TFLite (through a SavedModel, run by LiteRT) and ONNX -> PyTorch: the defective ONNX
    converted faithfully is a candidate that differs from the correct model by the one op."""
    good, defects = probe
    assert cli("convert", good, tmp_path / f"good{suffix}").code == 0
    for name, path in defects.items():
        converted = tmp_path / f"{path.stem}{suffix}"
        assert cli("convert", path, converted, "--no-check").code == 0
        result = cli("validate", good, converted, "--json")
        assert result.code == 1, f"{name} through {suffix}: passed ({result.out[-400:]})"


@pytest.mark.slow
def test_tfjs_route_passes_and_each_defect_fails(cli, probe, tmp_path):
    good, defects = probe
    assert cli("validate", good, _tfjs(cli, good, tmp_path / "good")).code == 0
    for name, path in defects.items():
        result = cli("validate", good, _tfjs(cli, path, tmp_path / path.stem), "--json")
        assert result.code == 1, f"{name} through TF.js: passed ({result.out[-400:]})"


def _tfjs(cli, source, out):
    result = cli("edge", "tfjs", source, out, "--json")
    assert result.code == 0, result.out[-1500:] + result.err[-1500:]
    return out


# -- keras.applications: calibrated on pixels 0..255 as trained ones are ------------------------------
@pytest.fixture(scope="module")
def keras_pixels_models(tmp_path_factory):
    """EfficientNetV2B0 and MobileNetV3Small (two initialisations) at 96 px, their BatchNorm
    statistics calibrated on images of pixels 0..255 (what their built-in Rescaling expects)."""
    import keras
    from tests.zoo_keras import calibrate_batchnorm
    folder = tmp_path_factory.mktemp("keras_apps")
    paths = {}
    for name, seed in (("EfficientNetV2B0", 0), ("MobileNetV3Small", 0), ("MobileNetV3Small", 1)):
        keras.utils.set_random_seed(seed)
        model = getattr(keras.applications, name)(weights=None, input_shape=(96, 96, 3), classifier_activation=None)
        pixels = np.random.default_rng(seed).uniform(0, 255, (8, 96, 96, 3)).astype("float32")
        calibrate_batchnorm(model, pixels)
        paths[f"{name}-{seed}"] = folder / f"{name}-{seed}.keras"
        model.save(paths[f"{name}-{seed}"])
    return paths


@pytest.mark.slow
def test_keras_applications_pass_at_defaults_fed_pixels(cli, keras_pixels_models, tmp_path):
    for label, path in keras_pixels_models.items():
        out = tmp_path / f"{label}.onnx"
        result = cli("convert", path, out, "--json")
        assert result.code == 0, f"{label}: {result.out[-2000:]}"
        report = result.json()["hops"][0]["parity"]
        assert "uniform in [0, 255]" in report["feeds"][0] and "Rescaling" in report["feeds"][0], report["feeds"]
        # The range travels with the ONNX model: validating it again feeds the same pixels.
        again = cli("validate", path, out, "--json")
        assert again.code == 0 and "uniform in [0, 255]" in again.json()["feeds"][0]


@pytest.mark.slow
def test_keras_defect_fails_fed_pixels(cli, keras_pixels_models, tmp_path):
    path = keras_pixels_models["EfficientNetV2B0-0"]
    assert cli("convert", path, tmp_path / "good.onnx").code == 0
    edited, node = onnx_edits.scale_conv_weights(onnx.load(tmp_path / "good.onnx"))
    onnx.save(edited, tmp_path / "defect.onnx")
    result = cli("validate", path, tmp_path / "defect.onnx", "--json")
    assert result.code == 1, f"conv weights of {node} x1.01 passed: {result.out[-600:]}"


@pytest.mark.slow
def test_standard_normal_noise_is_what_failed_keras_models(cli, keras_pixels_models, tmp_path):
    """The false alarm this replaces: the same correct conversion fed standard-normal noise (what
    the check fed before it read the model's range) blows the activations up, and the rounding
    differences with them, far beyond what the model meets in use."""
    path = keras_pixels_models["EfficientNetV2B0-0"]
    out = tmp_path / "m.onnx"
    assert cli("convert", path, out).code == 0
    fed_pixels = cli("validate", path, out, "--json").json()["outputs"][0]
    fed_noise = cli("validate", path, out, "--input-range", "-1.7,1.7", "--rtol", "1e-3", "--relative-to",
                    "element", "--json")
    assert fed_noise.code == 1, "the old rule on noise was expected to fail this correct conversion"
    assert fed_noise.json()["outputs"][0]["max_abs"] > 100 * fed_pixels["max_abs"]


def _image_folder(folder, count=4, size=40):
    from PIL import Image
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):  # smooth gradients with noise: image-like, not white noise
        y, x = np.mgrid[0:size, 0:size]
        pixels = np.stack([(x * (3 + i)) % 256, (y * (2 + i)) % 256, ((x + y) * 2) % 256], -1) + rng.integers(0, 20, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_an_image_folder_feeds_the_check_normalized_as_the_model_expects(cli, probe, tmp_path):
    good, defects = probe
    images = _image_folder(tmp_path / "images")
    result = cli("validate", PROBE, good, *PROBE_SHAPE, "--inputs", images, "--json")
    assert result.code == 0, result.out[-1500:]
    fed = result.json()["feeds"][0]
    assert "4 image(s)" in fed and "ImageNet's mean and std" in fed
    explicit = cli("validate", PROBE, good, *PROBE_SHAPE, "--inputs", images, "--mean", "127.5", "--std", "127.5",
                   "--json")
    assert explicit.code == 0 and "(pixels - 127.5) / 127.5" in explicit.json()["feeds"][0]
    # Real images catch the defect too.
    assert cli("validate", PROBE, defects["GELU as tanh"], *PROBE_SHAPE, "--inputs", images).code == 1


@pytest.mark.slow
def test_an_image_folder_goes_to_a_pixel_model_as_pixels(cli, keras_pixels_models, tmp_path):
    images = _image_folder(tmp_path / "images", size=96)
    path = keras_pixels_models["MobileNetV3Small-0"]
    result = cli("convert", path, tmp_path / "m.onnx", "--inputs", images, "--json")
    assert result.code == 0, result.out[-1500:]
    fed = result.json()["hops"][0]["parity"]["feeds"][0]
    assert "mapped onto [0, 255]" in fed
