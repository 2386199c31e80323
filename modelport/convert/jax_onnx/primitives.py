"""One handler per lax primitive, following lax's definition of it (operand layouts given by
dimension numbers, explicit broadcasting, windows with per-dim padding)."""
from __future__ import annotations

import string

import numpy as np

from .graph import Context, jax_primitive, onnx_dtype


def _rank(ctx: Context, index: int = 0) -> int:
    return len(ctx.in_avals[index].shape)


# ------------------------------------------------------------------------------- elementwise
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "max": "Max", "min": "Min", "pow": "Pow",
           "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
           "and": "And", "or": "Or", "xor": "Xor"}


def _binary(onnx_op: str):
    def handler(ctx: Context):
        a, b = ctx.inputs
        if onnx_op in ("And", "Or", "Xor") and np.dtype(ctx.in_avals[0].dtype) != np.bool_:
            onnx_op_int = {"And": "BitwiseAnd", "Or": "BitwiseOr", "Xor": "BitwiseXor"}[onnx_op]
            return ctx.op(onnx_op_int, [a, b])
        return ctx.op(onnx_op, [a, b])
    handler.__doc__ = f"-> {onnx_op}"
    return handler


for _name, _onnx in _BINARY.items():
    jax_primitive(_name)(_binary(_onnx))


@jax_primitive("div")
def div(ctx: Context):
    """Division; on integers lax rounds toward zero, as ONNX's integer Div does."""
    return ctx.op("Div", ctx.inputs)


@jax_primitive("rem")
def rem(ctx: Context):
    """lax.rem: the remainder with the dividend's sign (C's fmod)."""
    return ctx.op("Mod", ctx.inputs, fmod=1)


@jax_primitive("ne")
def not_equal(ctx: Context):
    return ctx.op("Not", [ctx.op("Equal", ctx.inputs, "eq")])


_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "tanh": "Tanh", "logistic": "Sigmoid", "sqrt": "Sqrt",
          "abs": "Abs", "sign": "Sign", "floor": "Floor", "ceil": "Ceil", "sin": "Sin", "cos": "Cos", "tan": "Tan",
          "erf": "Erf", "not": "Not", "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh",
          "cosh": "Cosh", "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "is_finite": None}


def _unary(onnx_op: str):
    def handler(ctx: Context):
        return ctx.op(onnx_op, ctx.inputs)
    handler.__doc__ = f"-> {onnx_op}"
    return handler


for _name, _onnx in _UNARY.items():
    if _onnx:
        jax_primitive(_name)(_unary(_onnx))


@jax_primitive("is_finite")
def is_finite(ctx: Context):
    x = ctx.inputs[0]
    return ctx.op("Not", [ctx.op("Or", [ctx.op("IsNaN", [x], "nan"), ctx.op("IsInf", [x], "inf")], "bad")])


@jax_primitive("rsqrt")
def rsqrt(ctx: Context):
    return ctx.op("Reciprocal", [ctx.op("Sqrt", ctx.inputs, "sqrt")])


@jax_primitive("square")
def square(ctx: Context):
    return ctx.op("Mul", [ctx.inputs[0], ctx.inputs[0]])


@jax_primitive("integer_pow")
def integer_pow(ctx: Context):
    """x ** y for a constant integer y: repeated products (exact, as XLA computes it)."""
    x, y = ctx.inputs[0], int(ctx.params["y"])
    if y == 0:
        return ctx.op("Add", [ctx.op("Mul", [x, ctx.const(0, ctx.in_avals[0].dtype, "zero")], "zero"),
                              ctx.const(1, ctx.in_avals[0].dtype, "one")])
    result, base, n = None, x, abs(y)
    while n:  # square-and-multiply, as XLA expands integer_pow
        if n & 1:
            result = base if result is None else ctx.op("Mul", [result, base], "acc")
        n >>= 1
        if n:
            base = ctx.op("Mul", [base, base], "sq")
    return ctx.op("Reciprocal", [result]) if y < 0 else ctx.op("Identity", [result])


@jax_primitive("exp2")
def exp2(ctx: Context):
    return ctx.op("Pow", [ctx.const(2.0, ctx.in_avals[0].dtype), ctx.inputs[0]])


@jax_primitive("log1p")
def log1p(ctx: Context):
    return ctx.op("Log", [ctx.op("Add", [ctx.inputs[0], ctx.const(1.0, ctx.in_avals[0].dtype)], "plus1")])


@jax_primitive("expm1")
def expm1(ctx: Context):
    return ctx.op("Sub", [ctx.op("Exp", ctx.inputs, "exp"), ctx.const(1.0, ctx.in_avals[0].dtype)])


@jax_primitive("round")
def round_(ctx: Context):
    """lax.round: AWAY_FROM_ZERO (method 0) or TO_NEAREST_EVEN (1, ONNX's Round)."""
    x = ctx.inputs[0]
    if int(getattr(ctx.params.get("rounding_method"), "value", ctx.params.get("rounding_method", 0))) == 1:
        return ctx.op("Round", [x])
    dtype = ctx.in_avals[0].dtype
    magnitude = ctx.op("Floor", [ctx.op("Add", [ctx.op("Abs", [x], "abs"), ctx.const(0.5, dtype)], "half")], "floor")
    return ctx.op("Mul", [ctx.op("Sign", [x], "sign"), magnitude])


@jax_primitive("atan2")
def atan2(ctx: Context):
    """atan(y/x) moved to the right quadrant."""
    y, x = ctx.inputs
    dtype = ctx.in_avals[0].dtype
    base = ctx.op("Atan", [ctx.op("Div", [y, x], "ratio")], "atan")
    pi = ctx.const(np.pi, dtype, "pi")
    zero = ctx.const(0.0, dtype, "zero")
    shift = ctx.op("Where", [ctx.op("Less", [y, zero], "yneg"), ctx.op("Neg", [pi], "negpi"), pi], "shift")
    fixed = ctx.op("Add", [base, shift], "fixed")
    return ctx.op("Where", [ctx.op("Less", [x, zero], "xneg"), fixed, base])


@jax_primitive("reduce_precision")
def reduce_precision(ctx: Context):
    """Rounding to fewer bits; the identity when the type already has no more than asked."""
    finfo = np.finfo(np.dtype(ctx.in_avals[0].dtype))
    if int(ctx.params["exponent_bits"]) >= finfo.nexp and int(ctx.params["mantissa_bits"]) >= finfo.nmant:
        return ctx.op("Identity", ctx.inputs)
    raise ctx.unsupported(f"rounding {finfo.dtype} to {ctx.params['exponent_bits']} exponent and "
                          f"{ctx.params['mantissa_bits']} mantissa bits")


@jax_primitive("stop_gradient", "copy", "optimization_barrier")
def identity(ctx: Context):
    """Markers for autodiff and the compiler: the values pass through."""
    outs = [ctx.op("Identity", [x], f"out{i}") for i, x in enumerate(ctx.inputs)]
    return outs if len(outs) > 1 else outs[0]


@jax_primitive("convert_element_type")
def convert_element_type(ctx: Context):
    return ctx.op("Cast", ctx.inputs, to=onnx_dtype(ctx.params["new_dtype"]))


@jax_primitive("select_n")
def select_n(ctx: Context):
    """select_n(which, *cases): cases[which], elementwise (a bool picks case 1 when true)."""
    which, *cases = ctx.inputs
    if len(cases) == 1:
        return ctx.op("Identity", [cases[0]])
    if len(cases) == 2:
        condition = which if np.dtype(ctx.in_avals[0].dtype) == np.bool_ else \
            ctx.op("Cast", [which], "cond", to=onnx_dtype(np.bool_))
        return ctx.op("Where", [condition, cases[1], cases[0]])
    result = cases[0]
    for k, case in enumerate(cases[1:], start=1):
        pick = ctx.op("Equal", [which, ctx.const(k, ctx.in_avals[0].dtype, f"k{k}")], f"is{k}")
        result = ctx.op("Where", [pick, case, result], f"pick{k}")
    return result


@jax_primitive("clamp")
def clamp(ctx: Context):
    low, x, high = ctx.inputs
    return ctx.op("Max", [ctx.op("Min", [x, high], "min"), low])


# ------------------------------------------------------------------------------------ shapes
@jax_primitive("broadcast_in_dim")
def broadcast_in_dim(ctx: Context):
    """Unsqueeze to the target rank, then Expand (dims the operand keeps are given as 1)."""
    shape = ctx.params["shape"]
    kept = [int(d) for d in ctx.params["broadcast_dimensions"]]
    x = ctx.inputs[0]
    operand = ctx.in_avals[0].shape
    new_axes = [axis for axis in range(len(shape)) if axis not in kept]
    if new_axes:
        x = ctx.op("Unsqueeze", [x, ctx.ints(new_axes, "axes")], "unsqueeze")
    target = []
    for axis, size in enumerate(shape):
        if axis in kept and _same(operand[kept.index(axis)], size):
            target.append(1)
        else:
            target.append(size)
    if all(isinstance(d, (int, np.integer)) and d == 1 for d in target):
        return ctx.op("Identity", [x])
    return ctx.op("Expand", [x, ctx.dims.shape(target)])


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  (symbolic dims that cannot be compared)
        return False


@jax_primitive("reshape")
def reshape(ctx: Context):
    """Reshape; one symbolic dim becomes -1, several are computed in the graph."""
    sizes = list(ctx.params["new_sizes"])
    if ctx.params.get("dimensions") not in (None, ()):
        raise ctx.unsupported("reshape with a transposition (dimensions)")
    symbolic = [i for i, d in enumerate(sizes) if not isinstance(d, (int, np.integer))]
    if len(symbolic) == 1:
        sizes[symbolic[0]] = -1
        return ctx.op("Reshape", [ctx.inputs[0], ctx.ints(sizes, "shape")])
    return ctx.op("Reshape", [ctx.inputs[0], ctx.dims.shape(sizes)])


@jax_primitive("squeeze")
def squeeze(ctx: Context):
    return ctx.op("Squeeze", [ctx.inputs[0], ctx.ints(ctx.params["dimensions"], "axes")])


@jax_primitive("stack")
def stack(ctx: Context):
    axis = int(ctx.params["axis"])
    parts = [ctx.op("Unsqueeze", [x, ctx.ints([axis], f"axis{i}")], f"part{i}") for i, x in enumerate(ctx.inputs)]
    return ctx.op("Concat", parts, axis=axis)


@jax_primitive("rev")
def rev(ctx: Context):
    """Reversal along dims: a Slice with step -1 on each."""
    axes = [int(d) for d in ctx.params["dimensions"]]
    if not axes:
        return ctx.op("Identity", ctx.inputs)
    big = np.iinfo(np.int64).max
    return ctx.op("Slice", [ctx.inputs[0], ctx.ints([-1] * len(axes), "starts"), ctx.ints([-big] * len(axes), "ends"),
                            ctx.ints(axes, "axes"), ctx.ints([-1] * len(axes), "steps")])


@jax_primitive("gather")
def gather(ctx: Context):
    """The gathers of indexing: whole slices picked by index along some axes (x[idx], jnp.take,
    embeddings, strided views of dynamic-size arrays) -> Gather/GatherND on the indexed axes moved
    first, the result's dims then ordered as lax's offset_dims say; one window at a computed start
    (a static slice of a dynamic-size array) -> Slice."""
    numbers = ctx.params["dimension_numbers"]
    operand = ctx.in_avals[0].shape
    indices = ctx.in_avals[1].shape
    start = [int(a) for a in numbers.start_index_map]
    collapsed = [int(a) for a in numbers.collapsed_slice_dims]
    sizes = [s for s in ctx.params["slice_sizes"]]
    if (len(indices) == 1 and not collapsed and [int(d) for d in numbers.offset_dims] == list(range(len(operand)))
            and all(isinstance(sizes[a], (int, np.integer)) for a in start)):
        # One window at a computed start (x[:, :1] on a dynamic batch): a Slice.
        begin = ctx.op("Cast", [ctx.inputs[1]], "begin", to=onnx_dtype(np.int64))
        end = ctx.op("Add", [begin, ctx.ints([int(sizes[a]) for a in start], "sizes")], "end")
        return ctx.op("Slice", [ctx.inputs[0], begin, end, ctx.ints(start, "axes")])
    others = [k for k in range(len(operand)) if k not in start]
    if (sorted(collapsed) != sorted(start) or getattr(numbers, "operand_batching_dims", ())
            or int(indices[-1]) != len(start) or any(int(sizes[a]) != 1 for a in start)
            or any(not _same(sizes[k], operand[k]) for k in others)):
        raise ctx.unsupported("a gather other than whole slices picked by index (x[idx], jnp.take, strided views)")
    # Indexed axes first, then GatherND: the result is the index dims, then the other operand dims.
    perm = start + others
    data = ctx.op("Transpose", [ctx.inputs[0]], "indexed_first", perm=perm) if perm != list(range(len(perm))) \
        else ctx.inputs[0]
    index = ctx.op("Cast", [ctx.inputs[1]], "index", to=onnx_dtype(np.int64))
    if len(start) == 1:
        index = ctx.op("Squeeze", [index, ctx.ints([len(indices) - 1], "last")], "index1")
        y = ctx.op("Gather", [data, index], "gather", axis=0)
    else:
        y = ctx.op("GatherND", [data, index], "gather")
    batch = len(indices) - 1
    onnx_labels = [("i", j) for j in range(batch)] + [("o", k) for k in others]
    offset = [int(d) for d in numbers.offset_dims]
    kept, index_dims = iter(others), iter(range(batch))
    jax_labels = [("o", next(kept)) if position in offset else ("i", next(index_dims))
                  for position in range(len(onnx_labels))]
    order = [onnx_labels.index(label) for label in jax_labels]
    if order != list(range(len(order))):
        return ctx.op("Transpose", [y], perm=order)
    return ctx.op("Identity", [y])


@jax_primitive("transpose")
def transpose(ctx: Context):
    return ctx.op("Transpose", ctx.inputs, perm=[int(p) for p in ctx.params["permutation"]])


@jax_primitive("concatenate")
def concatenate(ctx: Context):
    return ctx.op("Concat", ctx.inputs, axis=int(ctx.params["dimension"]))


@jax_primitive("split")
def split(ctx: Context):
    sizes = [int(s) for s in ctx.params["sizes"]]
    return ctx.op("Split", [ctx.inputs[0], ctx.ints(sizes, "sizes")], outputs=len(sizes),
                  axis=int(ctx.params["axis"]))


@jax_primitive("slice")
def slice_(ctx: Context):
    """Static start/limit/stride per axis; an axis kept whole (a dynamic one included) is skipped."""
    shape = ctx.in_avals[0].shape
    strides = ctx.params.get("strides") or [1] * len(shape)
    starts, ends, axes, steps = [], [], [], []
    for axis, (start, limit, stride) in enumerate(zip(ctx.params["start_indices"], ctx.params["limit_indices"], strides)):
        if _same(start, 0) and _same(limit, shape[axis]) and _same(stride, 1):
            continue
        starts.append(int(start)), ends.append(int(limit)), axes.append(axis), steps.append(int(stride))
    if not axes:
        return ctx.op("Identity", ctx.inputs)
    return ctx.op("Slice", [ctx.inputs[0], ctx.ints(starts, "starts"), ctx.ints(ends, "ends"),
                            ctx.ints(axes, "axes"), ctx.ints(steps, "steps")])


@jax_primitive("pad")
def pad(ctx: Context):
    """lax.pad with a padding value; interior padding and negative edges are not supported."""
    config = ctx.params["padding_config"]
    if any(int(interior) != 0 for _, _, interior in config) or any(int(lo) < 0 or int(hi) < 0 for lo, hi, _ in config):
        raise ctx.unsupported("interior or negative padding")
    pads = [int(lo) for lo, _, _ in config] + [int(hi) for _, hi, _ in config]
    return ctx.op("Pad", [ctx.inputs[0], ctx.ints(pads, "pads"), ctx.inputs[1]], mode="constant")


@jax_primitive("iota")
def iota(ctx: Context):
    shape = ctx.params["shape"]
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        raise ctx.unsupported("iota of a symbolic size")
    dim = int(ctx.params["dimension"])
    values = np.arange(shape[dim], dtype=np.dtype(ctx.params["dtype"]))
    view = [1] * len(shape)
    view[dim] = shape[dim]
    return ctx.op("Identity", [ctx.const(np.broadcast_to(values.reshape(view), shape).copy())])


# -------------------------------------------------------------------------------- reductions
_REDUCE = {"reduce_sum": "ReduceSum", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin",
           "reduce_prod": "ReduceProd"}


def _reduce(onnx_op: str):
    def handler(ctx: Context):
        axes = [int(a) for a in ctx.params["axes"]]
        if not axes:
            return ctx.op("Identity", ctx.inputs)
        return ctx.op(onnx_op, [ctx.inputs[0], ctx.ints(axes, "axes")], keepdims=0)
    handler.__doc__ = f"-> {onnx_op} (keepdims=0)"
    return handler


for _name, _onnx in _REDUCE.items():
    jax_primitive(_name)(_reduce(_onnx))


@jax_primitive("reduce_and", "reduce_or")
def reduce_logical(ctx: Context):
    """All / any: through int32 min / max."""
    axes = [int(a) for a in ctx.params["axes"]]
    as_int = ctx.op("Cast", ctx.inputs, "int", to=onnx_dtype(np.int32))
    op = "ReduceMin" if ctx.eqn.primitive.name == "reduce_and" else "ReduceMax"
    reduced = ctx.op(op, [as_int, ctx.ints(axes, "axes")], "reduce", keepdims=0)
    return ctx.op("Cast", [reduced], to=onnx_dtype(np.bool_))


@jax_primitive("argmax", "argmin")
def argmax(ctx: Context):
    axes = [int(a) for a in ctx.params["axes"]]
    op = "ArgMax" if ctx.eqn.primitive.name == "argmax" else "ArgMin"
    index = ctx.op(op, ctx.inputs, "index", axis=axes[0], keepdims=0, select_last_index=0)
    return ctx.op("Cast", [index], to=onnx_dtype(ctx.params["index_dtype"]))


@jax_primitive("cumsum")
def cumsum(ctx: Context):
    axis = ctx.const(np.int64(ctx.params["axis"]), suffix="axis")
    return ctx.op("CumSum", [ctx.inputs[0], axis], reverse=int(bool(ctx.params.get("reverse"))))


# ------------------------------------------------------------------------ contractions, conv
@jax_primitive("dot_general")
def dot_general(ctx: Context):
    """MatMul when the contraction is a (batched) matrix product in order, else Einsum."""
    (lc, rc), (lb, rb) = ctx.params["dimension_numbers"]
    lc, rc, lb, rb = ([int(a) for a in t] for t in (lc, rc, lb, rb))
    lhs_rank, rhs_rank = _rank(ctx, 0), _rank(ctx, 1)
    a, b = ctx.inputs
    nb = len(lb)
    if (lb == rb == list(range(nb)) and lc == [lhs_rank - 1] and rhs_rank == nb + 2 and rc == [nb]
            and lhs_rank >= nb + 1):
        if nb == 0 or lhs_rank == nb + 2:
            y = ctx.op("MatMul", [a, b], "matmul")
            return _result_type(ctx, y)
    letters = iter(string.ascii_letters)
    lhs = [next(letters) for _ in range(lhs_rank)]
    rhs = [None] * rhs_rank
    for l_axis, r_axis in zip(lb + lc, rb + rc):
        rhs[r_axis] = lhs[l_axis]
    rhs = [s or next(letters) for s in rhs]
    out = [lhs[i] for i in lb] + [lhs[i] for i in range(lhs_rank) if i not in lb + lc] + \
        [rhs[i] for i in range(rhs_rank) if i not in rb + rc]
    y = ctx.op("Einsum", [a, b], "einsum", equation=f"{''.join(lhs)},{''.join(rhs)}->{''.join(out)}")
    return _result_type(ctx, y)


def _result_type(ctx: Context, y: str) -> str:
    wanted = np.dtype(ctx.out_avals[0].dtype)
    if wanted != np.dtype(ctx.in_avals[0].dtype):
        return ctx.op("Cast", [y], to=onnx_dtype(wanted))
    return ctx.op("Identity", [y])


def _inverse(perm):
    return [int(i) for i in np.argsort(perm)]


@jax_primitive("conv_general_dilated")
def conv_general_dilated(ctx: Context):
    """Any layout (dimension numbers) -> ONNX's channels-first Conv, and back."""
    p = ctx.params
    if int(p["batch_group_count"]) != 1:
        raise ctx.unsupported("batch_group_count > 1")
    lhs_spec, rhs_spec, out_spec = (list(map(int, s)) for s in p["dimension_numbers"])
    x = ctx.op("Transpose", [ctx.inputs[0]], "lhs", perm=lhs_spec) if lhs_spec != sorted(lhs_spec) else ctx.inputs[0]
    kernel = ctx.const_value(1)
    padding = p["padding"]
    if isinstance(padding, str):
        raise ctx.unsupported(f"padding {padding!r} left unresolved")
    group = int(p["feature_group_count"])
    dilations = [int(d) for d in p["rhs_dilation"]]
    if any(int(d) != 1 for d in p["lhs_dilation"]):
        y = _transposed_conv(ctx, x, kernel, rhs_spec, padding, group, dilations)
    else:
        if kernel is not None:  # a weight: transposed once, now
            w = ctx.const(np.ascontiguousarray(np.transpose(kernel, rhs_spec)), name=f"{ctx.inputs[1]}/oihw")
        else:
            w = ctx.op("Transpose", [ctx.inputs[1]], "rhs", perm=rhs_spec)
        pads = [int(lo) for lo, _ in padding] + [int(hi) for _, hi in padding]
        if any(v < 0 for v in pads):
            raise ctx.unsupported("negative padding")
        y = ctx.op("Conv", [x, w], "conv", strides=[int(s) for s in p["window_strides"]], pads=pads,
                   dilations=dilations, group=group)
    y = _result_type(ctx, y) if np.dtype(ctx.out_avals[0].dtype) != np.dtype(ctx.in_avals[0].dtype) else y
    if out_spec != sorted(out_spec):
        return ctx.op("Transpose", [y], perm=_inverse(out_spec))
    return ctx.op("Identity", [y])


def _transposed_conv(ctx: Context, x: str, kernel, rhs_spec, padding, group: int, dilations) -> str:
    """A convolution of the input dilated by lhs_dilation (Flax's ConvTranspose, the gradient of a
    strided convolution) is ONNX's ConvTranspose with that stride, the kernel flipped and its
    in/out features swapped per group, and pads of (dilated kernel extent - 1 - lax's pad)."""
    p = ctx.params
    if kernel is None:
        raise ctx.unsupported("input dilation with a kernel computed at run time")
    if any(int(s) != 1 for s in p["window_strides"]):
        raise ctx.unsupported("input dilation together with window strides")
    k = np.transpose(kernel, rhs_spec)  # O, I/g, spatial...
    out_features, in_per_group, *spatial = k.shape
    k = k.reshape(group, out_features // group, in_per_group, *spatial).swapaxes(1, 2)
    k = k.reshape(group * in_per_group, out_features // group, *spatial)
    k = np.flip(k, axis=tuple(range(2, k.ndim)))
    extent = [(size - 1) * d + 1 for size, d in zip(spatial, dilations)]
    pads = [e - 1 - int(lo) for e, (lo, _) in zip(extent, padding)] + \
        [e - 1 - int(hi) for e, (_, hi) in zip(extent, padding)]
    if any(v < 0 for v in pads):
        raise ctx.unsupported("input dilation with padding wider than the kernel")
    w = ctx.const(np.ascontiguousarray(k), name=f"{ctx.inputs[1]}/transposed")
    return ctx.op("ConvTranspose", [x, w], "conv_transpose", strides=[int(d) for d in p["lhs_dilation"]],
                  pads=pads, dilations=dilations, group=group)


# ----------------------------------------------------------------------------------- windows
def _window(ctx: Context, kind: str):
    """reduce_window_{max,sum} over any dims: the windowed dims go last, the others are folded into
    ONNX's (N, C), pooled, and put back."""
    p = ctx.params
    dims = [int(d) for d in p["window_dimensions"]]
    strides = [int(s) for s in p["window_strides"]]
    padding = [(int(lo), int(hi)) for lo, hi in p["padding"]]
    if any(int(d) != 1 for d in p["base_dilation"]):
        raise ctx.unsupported("base dilation")
    shape = ctx.in_avals[0].shape
    rank = len(shape)
    spatial = [a for a in range(rank) if dims[a] != 1 or strides[a] != 1 or padding[a] != (0, 0)]
    others = [a for a in range(rank) if a not in spatial]
    if not spatial:
        return ctx.op("Identity", ctx.inputs)
    if any(not isinstance(shape[a], (int, np.integer)) for a in spatial):
        raise ctx.unsupported("a window over a dynamic dim")
    perm = others + spatial
    x = ctx.op("Transpose", ctx.inputs[:1], "to_nc", perm=perm) if perm != list(range(rank)) else ctx.inputs[0]
    lead = ctx.op("Slice", [ctx.op("Shape", [x], "shape"), ctx.ints([0], "s0"), ctx.ints([len(others)], "s1")],
                  "lead") if others else None
    x = ctx.op("Reshape", [x, ctx.ints([1, -1, *[int(shape[a]) for a in spatial]], "nc")], "folded")
    attrs = dict(kernel_shape=[dims[a] for a in spatial], strides=[strides[a] for a in spatial],
                 pads=[padding[a][0] for a in spatial] + [padding[a][1] for a in spatial])
    dilations = [int(p["window_dilation"][a]) for a in spatial]
    if any(d != 1 for d in dilations):
        if kind != "max" and ctx.graph.opset < 19:
            raise ctx.unsupported("a dilated sum window below opset 19 (pass --opset 19)")
        attrs["dilations"] = dilations
    if kind == "max":
        y = ctx.op("MaxPool", [x], "pool", **attrs)
    else:  # a padded sum: the average counting the (zero) padding, times the window size
        y = ctx.op("AveragePool", [x], "pool", count_include_pad=1, **attrs)
        y = ctx.op("Mul", [y, ctx.const(np.prod([dims[a] for a in spatial]), ctx.in_avals[0].dtype, "area")], "sum")
    out_spatial = [int(ctx.out_avals[0].shape[a]) for a in spatial]
    shape_parts = ([lead] if lead else []) + [ctx.ints(out_spatial, "out")]
    y = ctx.op("Reshape", [y, ctx.op("Concat", shape_parts, "outshape", axis=0)], "unfolded")
    if perm != list(range(rank)):
        return ctx.op("Transpose", [y], perm=_inverse(perm))
    return ctx.op("Identity", [y])


@jax_primitive("reduce_window_max")
def reduce_window_max(ctx: Context):
    return _window(ctx, "max")


@jax_primitive("reduce_window_sum")
def reduce_window_sum(ctx: Context):
    return _window(ctx, "sum")
