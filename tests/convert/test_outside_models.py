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


def test_keras_dense_on_feature_maps_from_tf2onnx_converts_to_pytorch_with_a_dynamic_batch(cli, tmp_path):
    """A Dense layer on a 4-d tensor (ConvNeXt's pointwise convs in keras.applications) is TF's
    Tensordot, which tf2onnx writes as Shape -> Gather -> Cast -> ReduceProd -> Concat -> Reshape:
    the product of the leading dims folds, so the batch stays dynamic."""
    import keras
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(6, 3, padding="same")(inputs)
    hidden = keras.layers.Dense(5, activation="gelu")(hidden)
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(hidden))
    source = tmp_path / "m.keras"
    keras.Model(inputs, outputs).save(source)
    assert cli("convert", source, tmp_path / "m.onnx").code == 0
    assert "ReduceProd" in {n.op_type for n in onnx.load(tmp_path / "m.onnx").graph.node}
    result = cli("convert", tmp_path / "m.onnx", tmp_path / "m.pt2", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [1, 3]
    assert cli("info", tmp_path / "m.pt2", "--json").json()["inputs"][0]["shape"][0] is None


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


def test_a_converted_model_its_runtime_cannot_run_is_modelports_failure(cli, tmp_path, monkeypatch):
    """A conversion whose artifact fails in its own runtime on feeds the source ran is modelport's
    bug (exit 3, nothing written), not bad input (exit 2): here LiteRT is made to fail as it did on
    a Reshape the converter had emptied."""
    from modelport.formats import tflite
    source = tmp_path / "cnn.onnx"
    assert cli("convert", "tests.zoo_torch:small_cnn", source, "--input-shape", "image:1,3,16,16").code == 0

    def broken(self, feeds):
        raise RuntimeError("num_input_elements != num_output_elements (0 != 512) Node number 93 (RESHAPE)")
    monkeypatch.setattr(tflite.TFLiteSession, "_run", broken)
    result = cli("convert", source, tmp_path / "cnn.tflite", "--json")
    assert result.code == 3, result.out[-1500:]
    message = result.json()["error"]["message"]
    assert "RESHAPE" in message and "fails when run" in message and "not of your model" in result.json()["error"]["hint"]
    assert not (tmp_path / "cnn.tflite").exists()
    # The same failure of a model the user brings to validate stays the user's (exit 2).
    assert cli("validate", source, source).code == 0


def test_dim_sizes_the_trace_and_a_model_that_needs_more_finds_its_size(cli, tmp_path):
    """wav2vec2's convolutional front-end cannot run 16 samples, the default trace size: --dim sizes
    the export and the check; without it the smallest size that runs is found and said."""
    shape = ("--input-shape", "input_values:1,samples")
    given = cli("convert", "tests.zoo_hf:wav2vec2", tmp_path / "a.onnx", *shape, "--dim", "samples=3200", "--json")
    assert given.code == 0, given.out[-2000:] + given.err[-2000:]
    dims = onnx.load(tmp_path / "a.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "samples"]
    found = cli("convert", "tests.zoo_hf:wav2vec2", tmp_path / "b.onnx", *shape, "--json")
    assert found.code == 0, found.out[-2000:]
    assert any("traced and checked at 64" in w and "--dim samples=N" in w for w in found.json()["warnings"])


def test_a_cached_decoder_from_a_factory_is_refused_with_what_works(cli, tmp_path):
    result = cli("convert", "tests.zoo_hf:gpt2", tmp_path / "g.onnx", "--input-shape", "input_ids:1,seq:int64",
                 "--input-shape", "cache:1,2,past,16", "--json")
    assert result.code == 2
    error = result.json()["error"]
    assert "Cache object, not a tensor" in error["message"] and "input_ids (and attention_mask)" in error["hint"]
    assert not (tmp_path / "g.onnx").exists()
