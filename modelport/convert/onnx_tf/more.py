"""More ONNX ops: triangular masks, cumulative sums, top-k, one-hot, einsum, scatter/gather by
index, depth/space rearrangements, transposed convolution."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op, trailing_axes
from .layout import AWARE, ELEMENTWISE, Laid, arrange, channels_last, logical, rank_of


def _tf():
    import tensorflow as tf
    return tf


@onnx_op("Trilu", since=14)
def convert_trilu(ctx: NodeContext):
    """ONNX Trilu: keep the upper (or lower) triangle from diagonal k of the last two dims."""
    tf = _tf()
    x = ctx.inputs[0]
    k = ctx.input(1)
    k = tf.cast(tf.reshape(k, []), tf.int64) if k is not None else tf.constant(0, tf.int64)
    rows = tf.range(tf.shape(x, out_type=tf.int64)[-2])[:, None]
    cols = tf.range(tf.shape(x, out_type=tf.int64)[-1])[None, :]
    keep = (cols - rows >= k) if ctx.attr("upper", 1) else (cols - rows <= k)
    return tf.where(keep, x, tf.zeros_like(x))


@onnx_op("CumSum", since=11)
def convert_cumsum(ctx: NodeContext):
    """ONNX CumSum (exclusive, reverse)."""
    tf = _tf()
    constant = ctx.const(1)
    rank = ctx.inputs[0].shape.rank
    # A constant axis stays a constant, counted from the front: TF.js's Cumsum takes a negative axis
    # for a dim of NaN size.
    axis = int(np.reshape(constant, -1)[0]) if constant is not None else tf.reshape(tf.cast(ctx.inputs[1], tf.int32), [])
    if isinstance(axis, int) and axis < 0 and rank is not None:
        axis += rank
    return tf.cumsum(ctx.inputs[0], axis=axis, exclusive=bool(ctx.attr("exclusive", 0)),
                     reverse=bool(ctx.attr("reverse", 0)))


@onnx_op("TopK", since=10)
def convert_topk(ctx: NodeContext):
    """ONNX TopK: values and int64 indices along ``axis``, largest or smallest, sorted."""
    tf = _tf()
    x = ctx.inputs[0]
    axis = ctx.attr("axis", -1)
    rank = len(x.shape)
    axis = axis + rank if axis < 0 else axis
    k = tf.reshape(tf.cast(ctx.inputs[1], tf.int32), [])
    perm = [*[d for d in range(rank) if d != axis], axis]
    moved = tf.transpose(x, perm)
    largest = ctx.attr("largest", 1)
    values, indices = tf.math.top_k(moved if largest else -moved, k=k, sorted=True)
    values = values if largest else -values
    back = np.argsort(perm).tolist()
    return [tf.transpose(values, back), tf.transpose(tf.cast(indices, tf.int64), back)]


@onnx_op("OneHot", since=9)
def convert_one_hot(ctx: NodeContext):
    """ONNX OneHot(indices, depth, [off, on]) along ``axis``; negative indices wrap."""
    tf = _tf()
    indices, depth, values = ctx.inputs[:3]
    depth = tf.cast(tf.reshape(depth, []), tf.int32)  # TF's one_hot takes an int32 depth
    indices = tf.cast(indices, tf.int64)
    indices = tf.where(indices < 0, indices + tf.cast(depth, tf.int64), indices)
    axis = ctx.attr("axis", -1)
    axis = axis + len(indices.shape) + 1 if axis < -1 else axis  # TF takes -1 or a position
    return tf.one_hot(indices, depth, on_value=values[1], off_value=values[0], axis=axis)


@onnx_op("Einsum", since=12)
def convert_einsum(ctx: NodeContext):
    """ONNX Einsum."""
    equation = ctx.attr("equation")
    return _tf().einsum(equation, *ctx.inputs)


@onnx_op("Hardmax")
def convert_hardmax(ctx: NodeContext):
    """ONNX Hardmax: 1 at the first maximum along ``axis`` (flattened 2-D before opset 13)."""
    tf = _tf()
    x = ctx.inputs[0]
    if ctx.opset < 13:
        raise UnsupportedOpError("Hardmax", ctx.opset, where=f"node {ctx.node.name!r}",
                                 hint="Hardmax converts from opset 13")
    axis = ctx.attr("axis", -1)
    return tf.one_hot(tf.argmax(x, axis=axis), tf.shape(x)[axis], axis=axis, dtype=x.dtype)


@onnx_op("GatherND", since=11)
def convert_gather_nd(ctx: NodeContext):
    """ONNX GatherND with batch_dims. Without batch dims and with a known index depth it is a Gather on
    the leading dims flattened (the linear index computed from the index tuples): TF.js's WebAssembly
    GatherNd aborts on the deep index tensors that exporters write for masks, and LiteRT's GATHER_ND
    refuses empty operands, where GATHER runs."""
    tf = _tf()
    params, indices = ctx.inputs[0], tf.cast(ctx.inputs[1], tf.int64)
    depth = indices.shape[-1] if indices.shape.rank else None
    if ctx.attr("batch_dims", 0) or depth is None or params.shape.rank is None or depth > params.shape.rank:
        return tf.gather_nd(params, indices, batch_dims=ctx.attr("batch_dims", 0))
    dims = tf.shape(params, out_type=tf.int64)
    lead = dims[:depth]
    indices = tf.where(indices < 0, indices + lead, indices)  # ONNX allows indices counted from the end
    # Row-major strides of the indexed dims: products of slices (no Cumprod, which TFLite lacks; no
    # product of an empty slice, which TF.js gets wrong), the last one 1.
    strides = tf.stack([tf.reduce_prod(lead[j + 1:]) for j in range(depth - 1)] + [tf.constant(1, tf.int64)])
    flat_index = tf.reduce_sum(indices * strides, axis=-1)
    rest = params.shape[depth:]
    if rest.is_fully_defined():  # a static target, which every runtime's Reshape takes
        flat = tf.reshape(params, [-1, *rest.as_list()])
    else:
        flat = tf.reshape(params, tf.concat([tf.constant([-1], tf.int64), dims[depth:]], 0))
    return tf.gather(flat, flat_index)


@onnx_op("ScatterND", since=11)
def convert_scatter_nd(ctx: NodeContext):
    """ONNX ScatterND (reduction none or add/mul/max/min)."""
    tf = _tf()
    data, indices, updates = ctx.inputs[:3]
    indices = tf.cast(indices, tf.int64)
    reduction = ctx.attr("reduction", "none")
    scatter = {"none": tf.tensor_scatter_nd_update, "add": tf.tensor_scatter_nd_add, "mul": _scatter_nd_multiply,
               "max": tf.tensor_scatter_nd_max, "min": tf.tensor_scatter_nd_min}.get(reduction)
    if scatter is None:
        raise UnsupportedOpError(f"ScatterND reduction {reduction!r}", ctx.opset, ["none", "add", "mul", "max", "min"])
    return scatter(data, indices, updates)


def _scatter_nd_multiply(data, indices, updates):
    """ScatterND with reduction mul (TF has none): the product of the updates aimed at each slice
    (a segment product over the linearized index), multiplied into the data."""
    tf = _tf()
    depth = indices.shape[-1]
    lead = tf.shape(data, out_type=tf.int64)[:depth]
    rest = tf.shape(data, out_type=tf.int64)[depth:]
    strides = tf.math.cumprod(lead, exclusive=True, reverse=True)
    flat_index = tf.reshape(tf.reduce_sum(indices * strides, axis=-1), [-1])
    flat_updates = tf.reshape(updates, tf.concat([[-1], rest], 0))
    factors = tf.math.unsorted_segment_prod(flat_updates, flat_index, tf.reduce_prod(lead))
    return data * tf.reshape(factors, tf.shape(data))


@onnx_op("NonZero", since=9)
def convert_non_zero(ctx: NodeContext):
    """ONNX NonZero: indices of the non-zero elements, one row per dim (int64)."""
    tf = _tf()
    return tf.transpose(tf.where(tf.not_equal(ctx.inputs[0], tf.zeros_like(ctx.inputs[0]))))


@onnx_op("DepthToSpace")
def convert_depth_to_space(ctx: NodeContext):
    """ONNX DepthToSpace (DCR or CRD order) on NCHW."""
    tf = _tf()
    x, b = ctx.inputs[0], ctx.attr("blocksize")
    mode = ctx.attr("mode", "DCR")
    n, c, h, w = (tf.shape(x)[i] for i in range(4))
    if mode == "DCR":
        y = tf.reshape(x, tf.stack([n, b, b, c // (b * b), h, w]))
        y = tf.transpose(y, [0, 3, 4, 1, 5, 2])
    else:
        y = tf.reshape(x, tf.stack([n, c // (b * b), b, b, h, w]))
        y = tf.transpose(y, [0, 1, 4, 2, 5, 3])
    return tf.reshape(y, tf.stack([n, c // (b * b), h * b, w * b]))


@onnx_op("SpaceToDepth")
def convert_space_to_depth(ctx: NodeContext):
    """ONNX SpaceToDepth on NCHW."""
    tf = _tf()
    x, b = ctx.inputs[0], ctx.attr("blocksize")
    n, c, h, w = (tf.shape(x)[i] for i in range(4))
    y = tf.reshape(x, tf.stack([n, c, h // b, b, w // b, b]))
    mode = ctx.attr("mode", "DCR")
    crd = mode == "CRD"
    y = tf.transpose(y, [0, 1, 3, 5, 2, 4] if crd else [0, 3, 5, 1, 2, 4])
    return tf.reshape(y, tf.stack([n, c * b * b, h // b, w // b]))


def _spread(tf, x, axis: int, stride: int):
    """Insert stride - 1 zeros between neighbours along ``axis`` (n -> (n - 1) * stride + 1)."""
    if stride == 1:
        return x
    x = tf.expand_dims(x, axis + 1)
    paddings = [[0, 0]] * len(x.shape)
    paddings[axis + 1] = [0, stride - 1]
    x = tf.pad(x, paddings)
    shape = tf.shape(x)
    merged = tf.concat([shape[:axis], [shape[axis] * stride], shape[axis + 2:]], 0)
    x = tf.reshape(x, merged)
    length = tf.shape(x)[axis] - (stride - 1)
    return tf.gather(x, tf.range(length), axis=axis)


def _transposed_by_conv(tf, ctx: NodeContext, x, w, order, strides, dilations, reach, group: int):
    """The full transposed convolution as a Conv: the input spread by the strides and fully padded,
    convolved with the flipped kernel; group j's output channels read group j's inputs."""
    from .nn import convert_conv
    spatial = len(strides)
    kernel = list(w.shape[2:])
    for i in range(spatial):
        x = _spread(tf, x, 1 + i, strides[i])
    x = tf.pad(x, [[0, 0], *[[r - 1, r - 1] for r in reach], [0, 0]])
    c_in, c_out_per_group = w.shape[0], w.shape[1]
    grouped = tf.reshape(w, [group, c_in // group, c_out_per_group, *kernel])
    grouped = tf.transpose(grouped, [0, 2, 1, *range(3, 3 + spatial)])
    filters = tf.reverse(tf.reshape(grouped, [group * c_out_per_group, c_in // group, *kernel]),
                         axis=list(range(2, 2 + spatial)))
    conv_attrs = {"group": group, "dilations": dilations}
    return convert_conv(ctx.derive([Laid(x, order), filters], conv_attrs)).tensor


@onnx_op("ConvTranspose", layout=AWARE)
def convert_conv_transpose(ctx: NodeContext):
    """ONNX ConvTranspose (1-3 spatial dims, groups, dilations, output_padding, explicit or SAME
    pads, output_shape), channels-last: the full result (TF's conv2d_transpose where it applies,
    else a convolution), then cut to the output."""
    tf = _tf()
    w = logical(tf, ctx.inputs[1])  # C_in x C_out/group x k...
    rank = rank_of(ctx.inputs[0])
    spatial = rank - 2
    order = channels_last(rank)
    x = arrange(tf, ctx.inputs[0], order)
    sizes = x.shape.as_list()[1:-1]
    kernel = list(w.shape[2:])
    strides = list(ctx.attr("strides", [1] * spatial))
    dilations = list(ctx.attr("dilations", [1] * spatial))
    extra = list(ctx.attr("output_padding", [0] * spatial))
    reach = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    group = ctx.attr("group", 1)
    if spatial == 2 and group == 1 and dilations == [1, 1]:  # TF's own kernel (TFLite's TRANSPOSE_CONV)
        shape = tf.shape(x)
        natural = [((sizes[i] if sizes[i] is not None else shape[1 + i]) - 1) * strides[i] + kernel[i]
                   for i in range(2)]
        full = tf.nn.conv2d_transpose(x, tf.transpose(w, [2, 3, 1, 0]),  # -> kh x kw x C_out x C_in
                                      tf.stack([shape[0], natural[0], natural[1], w.shape[1]]), strides=strides,
                                      padding="VALID")
    else:
        full = _transposed_by_conv(tf, ctx, x, w, order, strides, dilations, reach, group)
    # Output size and the begin pad cut from the full result (ONNX's rules for each way to give them).
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    output_shape = ctx.attr("output_shape")
    pads = ctx.attr("pads")
    begins, lengths = [], []
    for i in range(spatial):
        natural = (sizes[i] - 1) * strides[i] + reach[i] + extra[i] if sizes[i] is not None else None
        if pads is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = list(output_shape)[-spatial:][i] if output_shape is not None else sizes[i] * strides[i]
            total = natural - out
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        elif output_shape is not None:
            out, begin = list(output_shape)[-spatial:][i], (pads[i] if pads else 0)
        else:
            begin = pads[i] if pads else 0
            end = pads[i + spatial] if pads else 0
            out = None if natural is None else natural - begin - end
            if out is None:  # a dynamic size: computed
                out = (tf.shape(arrange(tf, ctx.inputs[0], order))[1 + i] - 1) * strides[i] + reach[i] + extra[i] \
                    - begin - end
        begins.append(begin)
        lengths.append(out)
    y = full
    for i in range(spatial):  # positions past the full result (output_padding, output_shape) are zeros
        known = y.shape[1 + i]
        if known is not None and isinstance(lengths[i], int) and begins[i] + lengths[i] <= known:
            if begins[i] or lengths[i] != known:  # a plain crop
                index = [slice(None)] * rank
                index[1 + i] = slice(begins[i], begins[i] + lengths[i])
                y = y[tuple(index)]
            continue
        have = tf.shape(y)[1 + i]
        short = tf.maximum(begins[i] + lengths[i] - have, 0)
        paddings = tf.tensor_scatter_nd_update(tf.zeros([rank, 2], tf.int32), [[1 + i]], [[0, short]])
        y = tf.gather(tf.pad(y, paddings), tf.range(begins[i], begins[i] + lengths[i]), axis=1 + i)
    bias = ctx.input(2)
    if bias is not None:
        y = y + logical(tf, bias)
    return Laid(y, order)


@onnx_op("MeanVarianceNormalization", since=9)
def convert_mean_variance_normalization(ctx: NodeContext):
    """ONNX MeanVarianceNormalization over ``axes`` (batch and spatial by default)."""
    tf = _tf()
    x = ctx.inputs[0]
    axes = list(ctx.attr("axes", [0, 2, 3]))
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
    return (x - mean) / (tf.sqrt(var) + 1e-9)


@onnx_op("Shrink", since=9)
def convert_shrink(ctx: NodeContext):
    """ONNX Shrink."""
    tf = _tf()
    x = ctx.inputs[0]
    lambd, bias = ctx.attr("lambd", 0.5), ctx.attr("bias", 0.0)
    return tf.where(x < -lambd, x + tf.cast(bias, x.dtype),
                    tf.where(x > lambd, x - tf.cast(bias, x.dtype), tf.zeros_like(x)))


@onnx_op("Det", since=11)
def convert_det(ctx: NodeContext):
    """ONNX Det."""
    return _tf().linalg.det(ctx.inputs[0])


@onnx_op("BitShift", since=11)
def convert_bit_shift(ctx: NodeContext):
    """ONNX BitShift, LEFT or RIGHT; a shift outside [0, bit width) gives 0 (or -1 for a negative
    number shifted right)."""
    tf = _tf()
    x, shift = ctx.inputs[:2]
    direction = ctx.attr("direction")
    shift = tf.cast(shift, x.dtype) * tf.ones_like(x)
    outside = (shift < 0) | (shift >= x.dtype.size * 8)
    safe = tf.where(outside, tf.zeros_like(shift), shift)
    if direction == "LEFT":
        return tf.where(outside, tf.zeros_like(x), tf.bitwise.left_shift(x, safe))
    fill = tf.where(x < 0, -tf.ones_like(x), tf.zeros_like(x)) if x.dtype.is_unsigned is False else tf.zeros_like(x)
    return tf.where(outside, fill, tf.bitwise.right_shift(x, safe))


@onnx_op("CumProd", since=26)
def convert_cumprod(ctx: NodeContext):
    """ONNX CumProd (exclusive, reverse)."""
    tf = _tf()
    axis = tf.reshape(tf.cast(ctx.inputs[1], tf.int32), [])
    return tf.math.cumprod(ctx.inputs[0], axis=axis, exclusive=bool(ctx.attr("exclusive", 0)),
                           reverse=bool(ctx.attr("reverse", 0)))


@onnx_op("Scatter", since=9)  # ScatterElements under its deprecated name
@onnx_op("ScatterElements", since=11)
def convert_scatter_elements(ctx: NodeContext):
    """ONNX ScatterElements along ``axis`` (reduction none/add/mul/max/min), as a scatter by full index."""
    tf = _tf()
    data, indices, updates = ctx.inputs[:3]
    axis = ctx.attr("axis", 0)
    rank = len(data.shape)
    axis = axis + rank if axis < 0 else axis
    indices = tf.cast(indices, tf.int64)
    indices = tf.where(indices < 0, indices + tf.shape(data, out_type=tf.int64)[axis], indices)
    grids = tf.meshgrid(*[tf.range(n, dtype=tf.int64) for n in tf.unstack(tf.shape(indices, out_type=tf.int64))],
                        indexing="ij")
    grids[axis] = indices
    coordinates = tf.stack(grids, axis=-1)
    reduction = ctx.attr("reduction", "none")
    if reduction == "mul":  # the product of every update landing on an element, times the element
        shape = tf.shape(data, out_type=tf.int64)
        strides = tf.math.cumprod(shape, exclusive=True, reverse=True)
        flat = tf.reduce_sum(coordinates * strides, axis=-1)
        products = tf.math.unsorted_segment_prod(tf.reshape(updates, [-1]), tf.reshape(flat, [-1]),
                                                 tf.reduce_prod(shape))
        return data * tf.reshape(products, shape)
    scatter = {"none": tf.tensor_scatter_nd_update, "add": tf.tensor_scatter_nd_add,
               "max": tf.tensor_scatter_nd_max, "min": tf.tensor_scatter_nd_min}.get(reduction)
    if scatter is None:
        raise UnsupportedOpError(f"ScatterElements reduction {reduction!r}", ctx.opset, ["none", "add", "mul", "max", "min"])
    return scatter(data, coordinates, updates)


@onnx_op("Compress", since=9)
def convert_compress(ctx: NodeContext):
    """ONNX Compress: the slices along ``axis`` (or of the flattened input) where the condition holds."""
    tf = _tf()
    x, condition = ctx.inputs[:2]
    axis = ctx.attr("axis")
    if axis is None:
        x, axis = tf.reshape(x, [-1]), 0
    axis = axis + len(x.shape) if axis < 0 else axis
    length = tf.shape(x)[axis]
    condition = tf.cast(condition, tf.bool)[:length]  # a shorter condition keeps the leading slices only
    keep = tf.concat([condition, tf.zeros(tf.maximum(length - tf.size(condition), 0), tf.bool)], 0)
    return tf.boolean_mask(x, keep, axis=axis)


@onnx_op("LpNormalization")
def convert_lp_normalization(ctx: NodeContext):
    """ONNX LpNormalization (p 1 or 2) along ``axis``; zero vectors stay zero."""
    tf = _tf()
    x = ctx.inputs[0]
    axis, p = ctx.attr("axis", -1), ctx.attr("p", 2)
    norm = tf.reduce_sum(tf.abs(x), axis, keepdims=True) if p == 1 else tf.norm(x, axis=axis, keepdims=True)
    return tf.where(tf.equal(norm, 0), tf.zeros_like(x), x / norm)


@onnx_op("RMSNormalization", since=23)
def convert_rms_normalization(ctx: NodeContext):
    """ONNX RMSNormalization from ``axis`` to the last dim, times scale."""
    tf = _tf()
    x, scale = ctx.inputs[:2]
    mean_square = tf.reduce_mean(tf.square(tf.cast(x, tf.float32)), axis=trailing_axes(x, ctx.attr("axis", -1)),
                                 keepdims=True)
    normal = tf.cast(tf.cast(x, tf.float32) * tf.math.rsqrt(mean_square + ctx.attr("epsilon", 1e-5)), x.dtype)
    return normal * scale


@onnx_op("Swish", since=24, layout=ELEMENTWISE)
def convert_swish(ctx: NodeContext):
    """ONNX Swish: x * sigmoid(alpha * x)."""
    tf = _tf()
    x = ctx.inputs[0]
    return x * tf.sigmoid(tf.cast(ctx.attr("alpha", 1.0), x.dtype) * x)
