"""Models written elsewhere, converted as a new user would: the shapes they compute, the way their
exporters write them, the way they were traced."""
from __future__ import annotations

import onnx
import pytest
import torch

from tests import zoo_torch


def _batch_dim(path) -> str:
    dim = onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_param or str(dim.dim_value)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo-exporter"])
def test_vit_onnx_converts_to_pytorch_with_a_dynamic_batch(cli, tmp_path, dynamo):
    """The shape arithmetic around the class token and the head split (Shape -> Gather -> Unsqueeze
    -> Concat -> Reshape, and the TorchScript exporter's Where(Equal(shape, -1), 1, shape) of
    expand(n, -1, -1)) folds, so torch.export keeps the batch dynamic."""
    source = tmp_path / "vit.onnx"
    kwargs = {"dynamic_axes": {"image": {0: "batch"}, "logits": {0: "batch"}}} if not dynamo else \
        {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
    torch.onnx.export(zoo_torch.small_vit(), (torch.randn(2, 3, 32, 32),), str(source), dynamo=dynamo,
                      opset_version=18, input_names=["image"], output_names=["logits"], **kwargs)
    result = cli("convert", source, tmp_path / "vit.pt2", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    report = result.json()["hops"][0]["parity"]
    assert report["batch_sizes"] == [1, 3] and report["passed"]
    info = cli("info", tmp_path / "vit.pt2", "--json").json()
    assert info["inputs"][0]["shape"][0] is None


def test_traced_module_reading_its_shapes_converts_with_a_dynamic_batch(cli, tmp_path):
    traced = torch.jit.trace(zoo_torch.shape_reading_block(), torch.randn(2, 3, 32, 32), check_trace=False)
    traced.save(str(tmp_path / "block.pt"))
    result = cli("convert", tmp_path / "block.pt", tmp_path / "block.onnx", "--input-shape", "x:2,3,32,32", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [1, 3]
    assert _batch_dim(tmp_path / "block.onnx") == "batch"


class _BakedBatch(zoo_torch.ShapeReadingBlock):
    def forward(self, x):
        y = super().forward(x)
        return y.reshape(int(y.shape[0]), -1)  # int() records the traced batch as a constant


def test_traced_module_that_baked_its_batch_converts_at_the_traced_batch_with_a_warning(cli, tmp_path):
    torch.manual_seed(0)
    traced = torch.jit.trace(_BakedBatch().eval(), torch.randn(2, 3, 32, 32), check_trace=False)
    traced.save(str(tmp_path / "baked.pt"))
    result = cli("convert", tmp_path / "baked.pt", tmp_path / "baked.onnx", "--input-shape", "x:2,3,32,32", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    data = result.json()
    assert any("fixes its batch at 2" in w for w in data["warnings"]), data["warnings"]
    assert data["hops"][0]["parity"]["batch_sizes"] == [2]
    assert _batch_dim(tmp_path / "baked.onnx") == "2"
