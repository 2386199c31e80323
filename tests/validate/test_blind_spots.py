"""A check that cannot fail says so: outputs within atol of zero, or the same for every input."""
import pytest


@pytest.mark.parametrize("factory,says", [("dead_head", "within atol of zero"),
                                          ("saturated_softmax", "is the same for all 12 inputs")])
def test_convert_warns_when_the_check_proves_nothing(cli, tmp_path, factory, says):
    report = tmp_path / "report.html"
    result = cli("convert", f"tests.zoo_torch:{factory}", tmp_path / "m.onnx", "--input-shape", "x:1,16",
                 "--report", report, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"]  # it passes ...
    assert any(says in w and "cannot tell the models apart" in w for w in data["warnings"])  # ... and says why that means little
    assert data["hops"][0]["parity"]["blind_spots"]
    assert "cannot tell the models apart" in report.read_text()
    table = cli("convert", f"tests.zoo_torch:{factory}", tmp_path / "n.onnx", "--input-shape", "x:1,16")
    assert table.err.count("cannot tell the models apart") == 1  # said once, not per table and summary


def test_validate_warns_and_a_live_model_does_not(cli, tmp_path):
    dead = tmp_path / "dead.onnx"
    assert cli("convert", "tests.zoo_torch:dead_head", dead, "--input-shape", "x:1,16").code == 0
    result = cli("validate", "tests.zoo_torch:dead_head", dead, "--input-shape", "x:1,16", "--json")
    assert result.code == 0 and result.json()["blind_spots"]
    assert any("cannot tell the models apart" in w for w in result.json()["warnings"])
    live = tmp_path / "cnn.onnx"
    assert cli("convert", "tests.zoo_torch:small_cnn", live, "--input-shape", "1,3,16,16").code == 0
    clean = cli("validate", "tests.zoo_torch:small_cnn", live, "--input-shape", "1,3,16,16", "--json")
    assert clean.code == 0 and clean.json()["blind_spots"] == []
