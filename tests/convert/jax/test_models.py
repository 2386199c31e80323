"""JAX / Flax models (MLP as a jitted function, linen CNN with BatchNorm, NNX transformer block)
convert from the command line; JAX itself is the reference."""
import jax
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from flax import nnx, serialization

from tests import zoo_jax
from tests.conftest import listing

MODELS = {  # factory, --input-shape, feeds at other sizes than traced
    "mlp": ("tests.zoo_jax:mlp", ["x:1,8"], {"x": (5, 8)}),
    "cnn": ("tests.zoo_jax:cnn", ["image:1,16,16,3"], {"image": (4, 16, 16, 3)}),
    "block": ("tests.zoo_jax:block", ["tokens:batch,seq,32"], {"tokens": (3, 11, 32)}),
}


def _jax_outputs(name, feeds):
    built = getattr(zoo_jax, name)()
    if isinstance(built, tuple):
        module, variables = built
        return np.asarray(module.apply(variables, *feeds.values()))
    if hasattr(built, "eval"):
        built.eval()  # an NNX module: inference mode (no dropout), as modelport runs it
    return np.asarray(built(*feeds.values()))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_converts_with_parity(cli, tmp_path, name):
    factory, shapes, sizes = MODELS[name]
    dst = tmp_path / f"{name}.onnx"
    flags = [flag for shape in shapes for flag in ("--input-shape", shape)]
    result = cli("convert", factory, dst, *flags, "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["source_format"] == "jax" and report["checked"] and report["passed"], report
    model = onnx.load(str(dst))
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(7)
    feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in sizes.items()}
    expected = _jax_outputs(name, feeds)
    got = ort.InferenceSession(str(dst)).run(None, feeds)[0]
    assert got.shape == expected.shape
    assert np.abs(expected).std() > 0.1, "outputs near a constant prove nothing"
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
    assert listing(tmp_path) == [dst.name]


def test_weights_are_named_by_their_pytree_path(cli, tmp_path):
    dst = tmp_path / "cnn.onnx"
    assert cli("convert", "tests.zoo_jax:cnn", dst, "--input-shape", "image:1,16,16,3").code == 0
    names = {init.name for init in onnx.load(str(dst)).graph.initializer}
    # A convolution kernel is stored in ONNX's layout, under its path plus that layout's name.
    assert {"params/Conv_0/kernel/oihw", "batch_stats/BatchNorm_1/var", "params/Dense_0/bias"} <= names
    assert "params/Conv_0/kernel" not in names  # the HWIO original is not kept beside it


def test_dynamic_dims_follow_the_input_shape(cli, tmp_path):
    dst = tmp_path / "block.onnx"
    assert cli("convert", "tests.zoo_jax:block", dst, "--input-shape", "tokens:batch,seq,32").code == 0
    graph = onnx.load(str(dst)).graph
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(graph.input[0]) == ["batch", "seq", 32] and dims(graph.output[0]) == ["batch", "seq", 32]
    fixed = tmp_path / "fixed.onnx"
    assert cli("convert", "tests.zoo_jax:mlp", fixed, "--input-shape", "x:2,8", "--fixed-batch").code == 0
    assert dims(onnx.load(str(fixed)).graph.input[0]) == [2, 8]


@pytest.mark.parametrize("kind", ["linen", "linen-orbax", "nnx"])
def test_weights_restore_a_checkpoint(cli, tmp_path, kind):
    checkpoint = tmp_path / "trained.msgpack"
    if kind == "linen-orbax":
        import orbax.checkpoint as ocp
        checkpoint = tmp_path / "orbax_checkpoint"
        writer = ocp.StandardCheckpointer()
        writer.save(checkpoint, zoo_jax.cnn()[1])
        writer.wait_until_finished()
        factory, shape, feeds = "tests.zoo_jax:cnn_init", "image:1,16,16,3", {"image": (2, 16, 16, 3)}
    elif kind == "linen":
        _, variables = zoo_jax.cnn()
        checkpoint.write_bytes(serialization.to_bytes(variables))
        factory, shape, feeds = "tests.zoo_jax:cnn_init", "image:1,16,16,3", {"image": (2, 16, 16, 3)}
    else:
        trained = nnx.state(zoo_jax.block(), nnx.Not(nnx.RngState)).to_pure_dict()
        checkpoint.write_bytes(serialization.to_bytes(trained))
        factory, shape, feeds = "tests.zoo_jax:block_init", "tokens:1,7,32", {"tokens": (2, 7, 32)}
    dst = tmp_path / "restored.onnx"
    result = cli("convert", factory, dst, "--input-shape", shape, "--weights", checkpoint, "--json")
    assert result.code == 0, result.err and result.json()["passed"]
    rng = np.random.default_rng(3)
    arrays = {k: rng.standard_normal(v).astype(np.float32) for k, v in feeds.items()}
    trained = _jax_outputs("block" if kind == "nnx" else "cnn", arrays)
    untrained = _jax_outputs("block_init", arrays) if kind == "nnx" else \
        np.asarray(zoo_jax.cnn_init()[0].apply(zoo_jax.cnn_init()[1], *arrays.values()))
    got = ort.InferenceSession(str(dst)).run(None, arrays)[0]
    np.testing.assert_allclose(got, trained, atol=2e-5, rtol=1e-4)
    assert np.abs(got - untrained).max() > 1e-2  # the checkpoint's weights, not the fresh ones


def test_info_and_validate(cli, tmp_path):
    info = cli("info", "tests.zoo_jax:cnn", "--input-shape", "image:1,16,16,3", "--json")
    assert info.code == 0, info.err
    data = info.json()
    assert data["format"] == "jax" and data["kind"] == "Flax linen module" and data["parameters"] == 3306
    assert data["outputs"] == [{"name": "output", "shape": [None, 10], "dtype": "float32"}]
    dst = tmp_path / "cnn.onnx"
    assert cli("convert", "tests.zoo_jax:cnn", dst, "--input-shape", "image:1,16,16,3").code == 0
    result = cli("validate", "tests.zoo_jax:cnn", dst, "--input-shape", "image:1,16,16,3", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"]


# -- bad input: exit 2, nothing written -------------------------------------------------------------
def test_missing_input_shape(cli, tmp_path):
    result = cli("convert", "tests.zoo_jax:mlp", tmp_path / "out.onnx")
    assert result.code == 2
    assert "its inputs have no recorded shapes" in result.err and "--input-shape" in result.err
    assert listing(tmp_path) == []


def test_unsupported_primitive_is_named(cli, tmp_path):
    result = cli("convert", "tests.zoo_jax:sorted_values", tmp_path / "out.onnx", "--input-shape", "x:1,5")
    assert result.code == 2
    assert "JAX op 'sort' cannot be converted" in result.err and "jax_primitive" in result.err
    assert listing(tmp_path) == []


def test_weights_for_a_jitted_function_are_refused(cli, tmp_path):
    (tmp_path / "w.msgpack").write_bytes(serialization.to_bytes({"a": np.zeros(2)}))
    result = cli("convert", "tests.zoo_jax:mlp", tmp_path / "out.onnx", "--input-shape", "x:1,8",
                 "--weights", tmp_path / "w.msgpack")
    assert result.code == 2 and "closes over its own" in result.err
    assert listing(tmp_path) == ["w.msgpack"]


def test_checkpoint_of_another_model_is_refused(cli, tmp_path):
    (tmp_path / "w.msgpack").write_bytes(serialization.to_bytes({"params": {"other": np.zeros(2)}}))
    result = cli("convert", "tests.zoo_jax:cnn_init", tmp_path / "out.onnx", "--input-shape", "image:1,16,16,3",
                 "--weights", tmp_path / "w.msgpack")
    assert result.code == 2 and "cannot restore 'w.msgpack'" in result.err
    assert listing(tmp_path) == ["w.msgpack"]


def test_a_non_model_factory_is_refused(cli, tmp_path):
    result = cli("convert", "tests.zoo_jax:not_a_model", tmp_path / "out.onnx")
    assert result.code == 2 and "gave a dict" in result.err
    assert jax.__version__  # (jax imported: the factory module is JAX code)


# -- serialized jax.export artifacts (StableHLO) ----------------------------------------------------
def _export(tmp_path, name, shape, symbolic):
    fn = jax.jit(_callable(name))
    if symbolic:
        arg = jax.ShapeDtypeStruct(jax.export.symbolic_shape(",".join(["b", *map(str, shape[1:])])), np.float32)
    else:
        arg = jax.ShapeDtypeStruct(shape, np.float32)
    exported = jax.export.export(fn)(arg)
    path = tmp_path / f"{name}_{'symbolic' if symbolic else 'static'}.jax"
    path.write_bytes(exported.serialize())
    return path, exported


def _callable(name):
    built = getattr(zoo_jax, name)()
    if isinstance(built, tuple):
        module, variables = built
        return lambda x: module.apply(variables, x)
    built.eval() if hasattr(built, "eval") else None
    return built


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic_batch"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_jax_export_artifact_converts(cli, tmp_path, name, symbolic):
    shape = {"mlp": (2, 8), "cnn": (2, 16, 16, 3), "block": (2, 7, 32)}[name]
    path, exported = _export(tmp_path, name, shape, symbolic)
    dst = tmp_path / f"{name}.onnx"
    result = cli("convert", path, dst, "--json")
    assert result.code == 0, result.err
    assert result.json()["source_format"] == "jax" and result.json()["passed"]
    batch = 5 if symbolic else 2
    x = np.random.default_rng(2).standard_normal((batch, *shape[1:])).astype(np.float32)
    session = ort.InferenceSession(str(dst))
    first = session.get_inputs()[0]
    assert first.shape[0] == ("b" if symbolic else 2)
    got = session.run(None, {first.name: x})[0]
    expected = np.asarray(exported.call(x))
    assert np.abs(expected).std() > 0.1
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(got, np.asarray(_callable(name)(x)), atol=2e-5, rtol=1e-4)  # the model itself


def test_artifact_info_and_input_names(cli, tmp_path):
    path, _ = _export(tmp_path, "cnn", (2, 16, 16, 3), True)
    data = cli("info", path, "--json").json()
    assert data["format"] == "jax" and data["kind"] == "jax.export artifact" and data["platforms"] == ["cpu"]
    assert data["inputs"] == [{"name": "input_0", "shape": [None, 16, 16, 3], "dtype": "float32"}]
    dst = tmp_path / "named.onnx"
    assert cli("convert", path, dst, "--input-shape", "image:1,16,16,3").code == 0
    assert [i.name for i in onnx.load(str(dst)).graph.input] == ["image"]


def test_damaged_artifact_is_refused(cli, tmp_path):
    path, _ = _export(tmp_path, "mlp", (2, 8), False)
    path.write_bytes(path.read_bytes()[:200])
    result = cli("convert", path, tmp_path / "out.onnx")
    assert result.code == 2 and "is not a serialized jax.export artifact" in result.err
    assert listing(tmp_path) == [path.name]


def test_artifact_with_an_unconvertible_operation(cli, tmp_path):
    exported = jax.export.export(zoo_jax.sorted_values())(jax.ShapeDtypeStruct((2, 5), np.float32))
    path = tmp_path / "sort.jax"
    path.write_bytes(exported.serialize())
    result = cli("convert", path, tmp_path / "out.onnx")
    assert result.code == 2 and "StableHLO op 'stablehlo.sort' cannot be converted" in result.err
    assert listing(tmp_path) == ["sort.jax"]
