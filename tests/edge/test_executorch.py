"""modelport edge executorch: torch.export -> XNNPACK-lowered .pte files, fp32 and int8, each run in
ExecuTorch's own runtime against the source; the bundle says which ops XNNPACK took. A source from
Keras reaches PyTorch through ONNX, every hop checked."""
from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.edge.bundle import sha256_of
from tests.conftest import listing
from tests.edge.conftest import NORMALIZE

pytest.importorskip("executorch.runtime")




def test_a_trained_cnn_goes_to_fp32_and_int8_programs_checked_in_executorch(cli, tmp_path, stripes_cnn):
    out = tmp_path / "bundle"
    result = cli("edge", "executorch", stripes_cnn / "cnn.pt2", out, "--quantize", "fp32,int8",
                 "--calibration", stripes_cnn / "images", *NORMALIZE, "--max-batch", "4", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] and data["conversion"] == []  # a PyTorch source: no hop before torch.export
    fp32, int8 = data["models"]
    assert (fp32["file"], int8["file"]) == ("model_fp32.pte", "model_int8.pte")
    for entry in (fp32, int8):
        assert (out / entry["file"]).read_bytes()[4:8] == b"ET12"
        assert entry["placement"]["XNNPACK"]["aten_convolution_default"] == 2
        assert entry["report"]["batch_sizes"] == [72]  # every calibration image, 4 at a time
        (output,) = entry["report"]["outputs"]
        assert output["top1_agreement"] == 1.0
    assert fp32["report"]["outputs"][0]["max_abs"] < 1e-4 * fp32["report"]["outputs"][0]["scale"]
    assert "quantized_decomposed_quantize_per_tensor_default" in int8["placement"]["XNNPACK"]
    assert int8["bytes"] < fp32["bytes"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "executorch" and manifest["max_batch"] == 4
    assert [m["sha256"] for m in manifest["models"]] == [sha256_of(out / "model_fp32.pte"), sha256_of(out / "model_int8.pte")]
    # The golden pair replays in the runtime, and the program keeps the source's names and a dynamic batch.
    from modelport.formats import open_model
    with open_model(out / "model_fp32.pte") as program:
        assert program.format_name == "executorch" and program.inputs[0].name == "input"
        assert program.inputs[0].shape == (None, 3, 32, 32) and program.max_batch == 4
        got = program.run({"input": np.load(out / "inputs.npy")})["output"]
    np.testing.assert_allclose(got, np.load(out / "expected.npy"), atol=1e-5, rtol=1e-4)
    info = cli("info", out / "model_int8.pte", "--json")
    assert info.code == 0 and info.json()["format"] == "executorch"


def test_validate_compares_a_program_and_catches_a_one_percent_conv_defect(cli, tmp_path, stripes_cnn):
    out = tmp_path / "bundle"
    assert cli("edge", "executorch", stripes_cnn / "cnn.pt2", out).code == 0
    same = cli("validate", stripes_cnn / "cnn.pt2", out / "model_fp32.pte", "--json")
    assert same.code == 0, same.err
    assert same.json()["batch_sizes"] == [1, 3]  # a batch-1 program takes any batch, one row at a time
    defect = cli("validate", stripes_cnn / "defect.pt2", out / "model_fp32.pte")
    assert defect.code == 1 and "FAIL" in defect.out


def test_int8_validated_on_labelled_data_against_pytorch(cli, tmp_path, stripes_cnn):
    out = tmp_path / "bundle"
    made = cli("edge", "executorch", stripes_cnn / "cnn.pt2", out, "--quantize", "int8",
               "--calibration", stripes_cnn / "images", *NORMALIZE)
    assert made.code == 0, made.err
    result = cli("validate", stripes_cnn / "cnn.pt2", out / "model_int8.pte", "--data", stripes_cnn / "images",
                 *NORMALIZE, "--json")
    assert result.code == 0, result.err
    dataset = result.json()["dataset"]
    assert dataset["reference_top1"] >= 0.9 and dataset["agreement_top1"] >= 0.95


def test_int8_calibrated_on_a_blank_image_fails_on_labelled_data(cli, tmp_path, stripes_cnn):
    """Ranges observed on one flat grey image cannot hold stripes: checked on the labelled images,
    the program must fail (the bundle's own check ran on its calibration data, the grey image)."""
    from PIL import Image
    blank = tmp_path / "blank"
    blank.mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(blank / "grey.png")
    out = tmp_path / "bundle"
    cli("edge", "executorch", stripes_cnn / "cnn.pt2", out, "--quantize", "int8", "--calibration", blank, *NORMALIZE)
    assert (out / "model_int8.pte").is_file()
    result = cli("validate", stripes_cnn / "cnn.pt2", out / "model_int8.pte", "--data", stripes_cnn / "images",
                 *NORMALIZE, "--json")
    assert result.code == 1
    assert result.json()["dataset"]["agreement_top1"] < 0.9


@pytest.mark.slow
def test_a_keras_classifier_reaches_executorch_through_onnx(cli, tmp_path, keras_cnn):
    source, calibration = keras_cnn
    result = cli("edge", "executorch", source, tmp_path / "bundle", "--quantize", "fp32,int8",
                 "--calibration", calibration, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [h["edge"] for h in data["conversion"]] == ["keras->onnx", "onnx->pytorch"]
    assert all(h["parity"]["passed"] for h in data["conversion"])
    assert [m["passed"] for m in data["models"]] == [True, True]


@pytest.mark.parametrize("args, says", [
    (["--quantize", "int8"], "needs calibration data"),
    (["--quantize", "fp8"], "unknown ExecuTorch mode"),
    (["--max-batch", "0"], "--max-batch 0"),
])
def test_bad_requests_are_exit_2_and_write_nothing(cli, tmp_path, stripes_cnn, args, says):
    before = listing(tmp_path)
    result = cli("edge", "executorch", stripes_cnn / "cnn.pt2", tmp_path / "bundle", *args)
    assert result.code == 2 and says in result.err
    assert listing(tmp_path) == before


def test_an_op_executorch_lacks_is_named_exit_2_nothing_written(cli, tmp_path):
    import torch

    class Inverse(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.inv(x)
    torch.export.save(torch.export.export(Inverse(), (torch.eye(4)[None] * 2,)), tmp_path / "inverse.pt2")
    before = listing(tmp_path)
    result = cli("edge", "executorch", tmp_path / "inverse.pt2", tmp_path / "bundle")
    assert result.code == 2 and "linalg_inv" in result.err and "Core ATen" in result.err
    assert listing(tmp_path) == before


def test_without_executorch_installed_the_pip_line_is_given(tmp_path, stripes_cnn):
    import subprocess
    import sys
    code = ("import sys; sys.modules['executorch'] = None\n"
            "from modelport.cli import main\n"
            f"sys.exit(main(['edge', 'executorch', {str(stripes_cnn / 'cnn.pt2')!r}, {str(tmp_path / 'out')!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "pip install 'modelport[executorch]'" in run.stderr
    assert not (tmp_path / "out").exists()
