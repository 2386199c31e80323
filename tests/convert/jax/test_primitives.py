"""Every lax primitive handler against JAX itself: one small function per primitive (or variant),
converted through the jaxpr and run by ONNX Runtime at a batch size other than the traced one."""
import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest
from jax import lax

from modelport.convert.jax_onnx.graph import build_model
from modelport.formats.jax import JaxModel
from modelport.tensors import TensorSpec

F = np.float32
rng = np.random.default_rng(0)
X = ("x", (3, 4, 5), F)
Y = ("y", (3, 4, 5), F)
TABLE = rng.standard_normal((10, 6)).astype(F)  # constants drawn once: the cases trace twice
KERNEL = rng.standard_normal((6, 2, 3, 3)).astype(F)


def _flax_conv_transpose():
    from flax import linen as nn
    module = nn.ConvTranspose(5, (3, 3), strides=(2, 2), padding="SAME")
    return module, module.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 6, 4)))


_CONV_T = _flax_conv_transpose()


def _conv_transpose(x):
    return _CONV_T[0].apply(_CONV_T[1], x)

CASES = {
    # elementwise
    "add": (lambda x, y: x + y, [X, Y]), "sub": (lambda x, y: x - y, [X, Y]), "mul": (lambda x, y: x * y, [X, Y]),
    "div": (lambda x, y: x / (jnp.abs(y) + 0.5), [X, Y]), "max": (jnp.maximum, [X, Y]), "min": (jnp.minimum, [X, Y]),
    "pow": (lambda x, y: lax.pow(jnp.abs(x) + 0.1, y), [X, Y]), "rem": (lambda x, y: lax.rem(x * 3, jnp.abs(y) + 0.5), [X, Y]),
    "int_div": (lambda x, y: (x * 10).astype(jnp.int32) // 3, [X, Y]),
    "compare": (lambda x, y: jnp.stack([x == y, x < y, x <= y, x > y, x >= y, x != y]).astype(F), [X, Y]),
    "logic": (lambda x, y: jnp.stack([(x > 0) & (y > 0), (x > 0) | (y > 0), (x > 0) ^ (y > 0), ~(x > 0)]).astype(F), [X, Y]),
    "bitwise": (lambda x, y: ((x * 8).astype(jnp.int32) & 5) + ((x * 8).astype(jnp.int32) | 2) + ((y * 8).astype(jnp.int32) ^ 3), [X, Y]),
    "unary": (lambda x: jnp.stack([-x, jnp.exp(x), jnp.log(jnp.abs(x) + 0.1), jnp.tanh(x), jax.nn.sigmoid(x),
                                   jnp.sqrt(jnp.abs(x)), jnp.abs(x), jnp.sign(x), jnp.floor(x * 3), jnp.ceil(x * 3),
                                   jnp.sin(x), jnp.cos(x), jnp.tan(x * 0.5), lax.erf(x)]), [X]),
    "inverse_trig": (lambda x: jnp.stack([jnp.arcsin(jnp.tanh(x)), jnp.arccos(jnp.tanh(x)), jnp.arctan(x), jnp.sinh(x),
                                          jnp.cosh(x), jnp.arcsinh(x), jnp.arccosh(jnp.abs(x) + 1.1),
                                          jnp.arctanh(jnp.tanh(x) * 0.9)]), [X]),
    "is_finite": (lambda x: jnp.isfinite(jnp.log(x)).astype(F), [X]),
    "rsqrt_square": (lambda x: lax.rsqrt(jnp.abs(x) + 0.1) + jnp.square(x), [X]),
    "integer_pow": (lambda x: jnp.stack([x ** 3, (jnp.abs(x) + 0.5) ** -2, x ** 0, x ** 6]), [X]),
    "exp2_log1p_expm1": (lambda x: jnp.exp2(x) + jnp.log1p(jnp.abs(x)) + jnp.expm1(x), [X]),
    "round": (lambda x: jnp.stack([jnp.round(x * 4), lax.round(x * 4)]), [X]),
    "atan2": (jnp.arctan2, [X, Y]),
    "markers": (lambda x: lax.stop_gradient(x) + lax.optimization_barrier(x) + jnp.array(x, copy=True)
                + lax.reduce_precision(x, exponent_bits=8, mantissa_bits=23), [X]),
    "convert": (lambda x: (x * 10).astype(jnp.int32).astype(F), [X]),
    "select": (lambda x, y: jnp.where(x > 0, x, y), [X, Y]),
    "select_n3": (lambda x, y: lax.select_n(jnp.clip((x * 2).astype(jnp.int32), 0, 2), x, y, x * y), [X, Y]),
    "clamp": (lambda x: lax.clamp(-0.5, x, 0.7), [X]),
    # shapes
    "broadcast": (lambda x: x[:, :1, :] + jnp.ones_like(x) * x.sum(axis=(1, 2))[:, None, None], [X]),
    "reshape": (lambda x: x.reshape(x.shape[0], -1) * 2, [X]),
    "reshape_two_dynamic": (lambda x: x.reshape(x.shape[0], x.shape[1] * 5), [("x", ("batch", "seq", 5), F)]),
    "squeeze": (lambda x: jnp.squeeze(x[:, :1, :], axis=1), [X]),
    "transpose": (lambda x: jnp.transpose(x, (2, 0, 1)), [X]),
    "concatenate": (lambda x, y: jnp.concatenate([x, y * 2], axis=-1), [X, Y]),
    "split": (lambda x: jnp.split(x, [1, 3], axis=1)[1] * 3, [X]),
    "slice": (lambda x: x[:, 1:4:2, ::-1][:, :, 1:], [X]),  # a gather, on a dynamic-size array
    "lax_slice": (lambda x: lax.slice_in_dim(x, 1, 4, 2, axis=1) * 2, [X]),
    "pad": (lambda x: jnp.pad(x, ((0, 0), (1, 2), (0, 1)), constant_values=0.5), [X]),
    "iota": (lambda x: x + jnp.arange(5, dtype=F), [X]),
    # reductions
    "reduce": (lambda x: jnp.concatenate([x.sum(1), x.max(1), x.min(1), jnp.prod(x, 1)], axis=-1), [X]),
    "all_any": (lambda x: jnp.stack([jnp.all(x > -1, axis=1), jnp.any(x > 1, axis=1)]).astype(F), [X]),
    "stack_rev": (lambda x, y: jnp.stack([x, y[:, ::-1]], axis=1), [X, Y]),
    "gather_rows": (lambda ids: jnp.asarray(TABLE)[ids], [("ids", (3, 7), np.int32)]),
    "take_axis": (lambda x: jnp.take(x, jnp.array([[4, 0, 2], [1, 1, 3]]), axis=2), [X]),
    "argmax": (lambda x: jnp.stack([jnp.argmax(x, axis=1)[:, :4], jnp.argmin(x, axis=2)]), [X]),
    "cumsum": (lambda x: jnp.cumsum(x, axis=2) + lax.cumsum(x, axis=1, reverse=True), [X]),
    # contractions and windows
    "matmul": (lambda x, w: x @ w, [X, ("w", (3, 5, 6), F)]),
    "einsum": (lambda x, y: jnp.einsum("bij,bkj->bik", x, y), [X, Y]),
    "conv_constant_kernel": (lambda x: lax.conv_general_dilated(
        x, jnp.asarray(KERNEL), (2, 1), ((1, 1), (0, 2)), rhs_dilation=(1, 2),
        feature_group_count=2), [("x", (3, 4, 9, 8), F)]),
    "conv_kernel_input_nhwc": (lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "OIHW", "NHWC")), [("x", (3, 7, 6, 4), F), ("w", (3, 4, 3, 3), F)]),
    "conv_transpose_flax": (lambda x: _conv_transpose(x), [("x", (3, 5, 6, 4), F)]),
    "conv_input_dilated_grouped": (lambda x: lax.conv_general_dilated(
        x, jnp.asarray(KERNEL), (1, 1), ((2, 1), (1, 3)), lhs_dilation=(2, 3), rhs_dilation=(1, 2),
        feature_group_count=2), [("x", (3, 4, 5, 4), F)]),
    "pooling": (lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
                + lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"), [("x", (3, 10, 8, 2), F)]),
    "pooling_dilated": (lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 1, 1), "VALID",
                                                    window_dilation=(1, 1, 2, 1)), [("x", (3, 2, 9, 8), F)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_primitive_matches_jax(case, tmp_path):
    fn, inputs = CASES[case]
    specs = []
    for name, shape, dtype in inputs:
        dims = tuple(None if isinstance(d, str) else d for d in shape)
        named = tuple(d if isinstance(d, str) else None for d in shape)
        specs.append(TensorSpec(name, dims, np.dtype(dtype), dim_names=named if any(named) else None))
    model = JaxModel(lambda _, *xs: fn(*xs), None, "jitted function")
    proto = build_model(model, specs)
    feeds = {}
    for (name, shape, dtype) in inputs:  # a batch of 2 (traced as N) and other sizes for named dims
        concrete = [2 if i == 0 else (6 if isinstance(d, str) else d) for i, d in enumerate(shape)]
        feeds[name] = rng.standard_normal(concrete).astype(dtype)
    expected = np.asarray(jax.jit(fn)(*feeds.values()))
    got = ort.InferenceSession(proto.SerializeToString()).run(None, feeds)[0]
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=2e-5)


@jax.custom_vjp
def _clipped_identity(x):
    return x


_clipped_identity.defvjp(lambda x: (x, None), lambda _, g: (jnp.clip(g, -1, 1),))


def _calls(x):
    """Calls the converter inlines: a nested jit, jax.checkpoint (remat), custom_jvp (relu), custom_vjp."""
    inner = jax.jit(lambda v: jnp.sin(v) * 2)
    return jax.checkpoint(lambda v: inner(v) + jax.nn.relu(v))(x) + _clipped_identity(x)


CASES["calls"] = (_calls, [X])


# A serialized jax.export artifact holds StableHLO, not a jaxpr: the same cases, exported with a
# symbolic batch, go through the StableHLO reader (which hands each operation to the same handlers).

@pytest.mark.parametrize("case", sorted(CASES))
def test_primitive_through_a_jax_export_artifact(case):
    from modelport.convert.jax_onnx.stablehlo import build_from_exported
    fn, inputs = CASES[case]
    scope = jax.export.SymbolicScope()
    avals, specs = [], []
    for name, shape, dtype in inputs:
        text = ",".join(["N" if i == 0 else (str(d) if not isinstance(d, str) else d) for i, d in enumerate(shape)])
        avals.append(jax.ShapeDtypeStruct(jax.export.symbolic_shape(text, scope=scope), dtype))
        dims = tuple(None if (i == 0 or isinstance(d, str)) else d for i, d in enumerate(shape))
        specs.append(TensorSpec(name, dims, np.dtype(dtype)))
    exported = jax.export.deserialize(jax.export.export(jax.jit(fn))(*avals).serialize())
    proto = build_from_exported(exported, specs, opset=18)
    feeds = {}
    for (name, shape, dtype) in inputs:
        concrete = [2 if i == 0 else (6 if isinstance(d, str) else d) for i, d in enumerate(shape)]
        feeds[name] = rng.standard_normal(concrete).astype(dtype)
    expected = np.asarray(exported.call(*feeds.values()))
    got = ort.InferenceSession(proto.SerializeToString()).run(None, feeds)[0]
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=2e-5)
