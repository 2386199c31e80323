"""validate --localize between an ONNX model and the SavedModel modelport made from it: the
SavedModel records which of its tensors computes each ONNX value (kept under the ONNX node's name
scope), so the first diverging ONNX node is named, whatever layout the tensor is kept in."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def _convert(cli, tmp_path):
    source, saved = tmp_path / "cnn.onnx", tmp_path / "cnn_savedmodel"
    assert cli("convert", "tests.zoo_torch:small_cnn", source, "--input-shape", "image:1,3,16,16", "--no-check").code == 0
    assert cli("convert", source, saved, "--to", "savedmodel", "--no-check").code == 0
    return source, saved


def test_agreeing_models_compare_every_recorded_tensor(cli, tmp_path):
    source, saved = _convert(cli, tmp_path)
    result = cli("validate", source, saved, "--localize", "--json")
    assert result.code == 0, result.err
    found = result.json()["localization"]
    assert found["method"] == "onnx-scopes" and found["status"] == "none" and found["compared"] >= 6


def test_first_diverging_onnx_node_is_named(cli, tmp_path):
    """The reference's second convolution gets other weights: the SavedModel (converted before)
    agrees up to that node, which is named, though it keeps its tensors channels-last."""
    source, saved = _convert(cli, tmp_path)
    model = onnx.load(str(source))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    weights = {init.name: init for init in model.graph.initializer}
    target = weights[convs[1].input[1]]
    target.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(target) * 1.5, target.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, str(tampered))
    result = cli("validate", tampered, saved, "--localize", "--json")
    assert result.code == 1
    found = result.json()["localization"]
    assert found["status"] == "found", found
    assert found["node"] == convs[1].name and found["op_type"] == "Conv"
    assert all(row["passed"] for row in found["trace"][:-1])  # what came before it agreed
    assert np.isfinite(found["max_abs"]) and found["max_abs"] > 0
