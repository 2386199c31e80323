"""One model per family of the zoo (benchmarks/zoo_bench.py runs them all), through the routes a user
takes: to ONNX, then to PyTorch, TFLite (LiteRT runs it) and TF.js (TF.js in Node runs it), each
judged by modelport's default check at default tolerances.

timm comes from its own folder (tests/zoo_timm.py says why); the transformers models are tiny
configs with dynamic sequence lengths, which must survive every route.
"""
from __future__ import annotations

import pytest

from tests import zoo_hf, zoo_timm

pytestmark = pytest.mark.slow

TIMM = [(name, size) for name, _, size in zoo_timm.ARCHITECTURES if name in zoo_timm.SUITE]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Each model's ONNX, written once by `modelport convert` (asserted to pass there)."""
    folder = tmp_path_factory.mktemp("zoo")
    done = {}

    def onnx_of(cli, name, source, *args):
        if name not in done:
            path = folder / f"{name}.onnx"
            result = cli("convert", source, path, *args, "--json")
            assert result.code == 0, f"{name} -> onnx: {result.out[-2000:]}{result.err[-2000:]}"
            done[name] = path
        return done[name]
    return onnx_of


@pytest.mark.skipif(not zoo_timm.available(), reason="timm is installed by `make install`")
@pytest.mark.parametrize("name,size", TIMM, ids=[n for n, _ in TIMM])
def test_timm_family_to_onnx_and_back_to_pytorch(cli, converted, tmp_path, name, size):
    model = converted(cli, name, f"tests.zoo_timm:{name}", "--input-shape", f"x:1,3,{size},{size}")
    result = cli("convert", model, tmp_path / f"{name}.pt2", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [1, 3]


@pytest.mark.parametrize("name", zoo_hf.SUITE)
def test_transformers_family_to_onnx_and_back_to_pytorch(cli, converted, tmp_path, name):
    _, args = zoo_hf.ARCHITECTURES[name]
    model = converted(cli, name, f"tests.zoo_hf:{name}", *args)
    dims = [a for i, a in enumerate(args) if args[i - 1] == "--dim" or a == "--dim"]
    result = cli("convert", model, tmp_path / f"{name}.pt2", *dims, "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]


@pytest.mark.parametrize("name", ["bert", "gpt2", "vit"])
def test_transformers_with_a_dynamic_sequence_run_in_litert_and_tfjs(cli, converted, tmp_path, name):
    """The sequence length stays dynamic through ONNX -> SavedModel -> TFLite (LiteRT resizes the
    input, checked at two lengths) and in TF.js: nothing is written that fails when run."""
    _, args = zoo_hf.ARCHITECTURES[name]
    model = converted(cli, name, f"tests.zoo_hf:{name}", *args)
    tflite = cli("convert", model, tmp_path / f"{name}.tflite", "--json")
    assert tflite.code == 0, tflite.out[-2000:] + tflite.err[-2000:]
    if name != "vit":
        feeds = tflite.json()["hops"][-1]["parity"]
        assert feeds["batch_sizes"] == [1, 3]
    tfjs = cli("edge", "tfjs", model, tmp_path / f"{name}_tfjs", "--json")
    assert tfjs.code == 0, tfjs.out[-2000:] + tfjs.err[-2000:]


SHAPE_ARITHMETIC = [(name, size) for name, _, size in zoo_timm.ARCHITECTURES
                    if name in ("mobilevit_xxs", "edgenext_xx_small", "efficientvit_b0")]


@pytest.mark.skipif(not zoo_timm.available(), reason="timm is installed by `make install`")
@pytest.mark.parametrize("name,size", SHAPE_ARITHMETIC, ids=[n for n, _ in SHAPE_ARITHMETIC])
def test_timm_onnx_with_data_dependent_shape_arithmetic_comes_back_to_pytorch(cli, converted, tmp_path, name, size):
    """The ONNX torch's dynamo exporter writes for these carries shape arithmetic and constant
    operands (Pad's fill, CumSum's axis) that torch.export would read as data ("data-dependent
    expression u0"): folded or inlined, they convert with the batch dynamic."""
    model = converted(cli, name, f"tests.zoo_timm:{name}", "--input-shape", f"x:1,3,{size},{size}")
    result = cli("convert", model, tmp_path / f"{name}.pt2", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["hops"][0]["parity"]["batch_sizes"] == [1, 3]


@pytest.mark.skipif(not zoo_timm.available(), reason="timm is installed by `make install`")
def test_timm_depthwise_convolutions_lower_to_tflite_builtins(cli, converted, tmp_path):
    """MobileViTV2's depthwise convolutions become TFLite's DEPTHWISE_CONV_2D, no TensorFlow op left."""
    size = next(s for n, _, s in zoo_timm.ARCHITECTURES if n == "mobilevitv2_050")
    model = converted(cli, "mobilevitv2_050", "tests.zoo_timm:mobilevitv2_050", "--input-shape", f"x:1,3,{size},{size}")
    result = cli("convert", model, tmp_path / "m.tflite", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    from modelport.formats.tflite import TFLiteFile
    written = TFLiteFile(tmp_path / "m.tflite")
    assert "DEPTHWISE_CONV_2D" in written.ops and not written.flex_ops, sorted(written.ops)


@pytest.mark.parametrize("name,target", [("mpnet", "tflite"), ("wav2vec2", "tflite"), ("swin", "tfjs")])
def test_integer_arithmetic_runs_where_tflite_and_tfjs_lack_its_ops(cli, converted, tmp_path, name, target):
    """Integer Abs (MPNet's relative positions: TFLite's ABS takes no int64), integer Div (wav2vec2's
    and Swin's sizes: TruncateDiv is neither a TFLite builtin nor a TF.js op) and Pad with computed
    amounts (Swin: TF.js's TensorScatterUpdate) are written with ops both run."""
    _, args = zoo_hf.ARCHITECTURES[name]
    model = converted(cli, name, f"tests.zoo_hf:{name}", *args)
    dims = [a for i, a in enumerate(args) if args[i - 1] == "--dim" or a == "--dim"]
    if target == "tflite":
        result = cli("convert", model, tmp_path / f"{name}.tflite", *dims, "--json")
    else:
        result = cli("edge", "tfjs", model, tmp_path / f"{name}_tfjs", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]


def test_an_encoder_decoder_with_audio_features_goes_to_tfjs(cli, converted, tmp_path):
    """Whisper's [batch, mel, frames] features are not an image: the channels-last hop towards TF.js
    leaves them (and the decoder's ids) in their layout."""
    _, args = zoo_hf.ARCHITECTURES["whisper"]
    model = converted(cli, "whisper", "tests.zoo_hf:whisper", *args)
    result = cli("edge", "tfjs", model, tmp_path / "whisper_tfjs", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]


@pytest.mark.parametrize("name,target", [("segformer", "tflite"), ("segformer", "pt2"), ("swin", "tflite")])
def test_what_an_exporter_leaves_dynamic_or_spelled_out_reaches_tflite_and_pytorch(cli, converted, tmp_path,
                                                                                   name, target):
    """SegFormer's decode head resizes to sizes computed as Concat(Shape(x)[:2], constants): the
    lengths known while converting stay numbers, so TFLite's converter sees the channels of the
    1x1 convolution after it, and torch.export keeps the batch symbolic. Swin's GELU, spelled Div,
    Erf, Add, Mul, Mul by torch's TorchScript exporter, reaches TFLite as its GELU builtin."""
    _, args = zoo_hf.ARCHITECTURES[name]
    model = converted(cli, name, f"tests.zoo_hf:{name}", *args)
    dst = tmp_path / f"{name}.{target}"
    result = cli("convert", model, dst, "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert all(hop["parity"]["batch_sizes"] == [1, 3] for hop in result.json()["hops"])
    if target == "tflite":
        from modelport.formats.tflite import TFLiteFile
        written = TFLiteFile(dst)
        assert not written.flex_ops and "GELU" in written.ops, sorted(written.ops)


def test_t5_transposed_reshapes_export_with_dynamo_at_every_length(cli, tmp_path):
    """T5's attention output, transpose(1, 2).reshape(b, s, -1), made the dynamo exporter's
    decompositions fail ("Cannot view a tensor ..."); the TorchScript exporter it fell back to
    baked the sequence length in, which the check caught at other lengths. A contiguous copy before
    each reshape lets dynamo export it, valid at lengths it was not traced at."""
    _, args = zoo_hf.ARCHITECTURES["t5"]
    dst = tmp_path / "t5.onnx"
    result = cli("convert", "tests.zoo_hf:t5", dst, *args, "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["hops"][0]["exporter"] == "dynamo"
    checked = cli("validate", "tests.zoo_hf:t5", dst, *args, "--dim", "seq=5", "--dim", "target=11", "--json")
    assert checked.code == 0, checked.out[-2000:]


def test_edge_bundles_take_dim_for_inputs_that_need_a_size(cli, converted, tmp_path):
    """wav2vec2's raw audio must be longer than its convolution stack's receptive field: the check's
    generated feeds take --dim, and without it the refusal says so (exit 2)."""
    _, args = zoo_hf.ARCHITECTURES["wav2vec2"]
    model = converted(cli, "wav2vec2", "tests.zoo_hf:wav2vec2", *args)
    refused = cli("edge", "tfjs", model, tmp_path / "short")
    assert refused.code == 2 and "--dim" in refused.out + refused.err and not (tmp_path / "short").exists()
    result = cli("edge", "tfjs", model, tmp_path / "tfjs", "--dim", "samples=3200", "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["passed"]
