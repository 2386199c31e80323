"""Functions the converted graphs call where ONNX's op is not one torch function. They are plain
PyTorch (``torch.export`` traces through them), and ``--as-code`` copies the ones a model uses into
its generated source, so that source needs nothing but torch."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

def ints(value) -> list[int]:
    """Axes, sizes or pads given as a list or as an int64 tensor (read when the model runs)."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) if not isinstance(v, torch.SymInt) else v for v in value]
    return [int(value)]


def dim(x: torch.Tensor, axis) -> int:
    """``axis`` (an int or a one-element tensor; negative counts from the end) as a dim of ``x``."""
    axis = ints(axis)[0]
    return axis + x.dim() if axis < 0 else axis


def cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x.to(dtype)


def clip(x: torch.Tensor, low: Optional[torch.Tensor], high: Optional[torch.Tensor]) -> torch.Tensor:
    return torch.clamp(x, low, high)


def prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, x * slope, x)


def selu(x: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x))


def thresholded_relu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.where(x > alpha, x, torch.zeros_like(x))


def hard_sigmoid(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    return torch.clamp(x * alpha + beta, 0.0, 1.0)


def softplus(x: torch.Tensor) -> torch.Tensor:
    # log(1 + exp(x)), stable for large x (F.softplus switches to x above its threshold, which
    # differs from ONNX's exact formula by up to exp(-20) only).
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def shrink(x: torch.Tensor, lambd: float, bias: float) -> torch.Tensor:
    zero = torch.zeros_like(x)
    return torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, zero))


def swish(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x * torch.sigmoid(x * alpha)


# -- shapes and indexing -------------------------------------------------------------------------
def shape_tensor(x: torch.Tensor, start: int, end: Optional[int]) -> torch.Tensor:
    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64)


def reshape(x: torch.Tensor, shape: torch.Tensor, allowzero: bool) -> torch.Tensor:
    """ONNX Reshape with a computed shape: a 0 copies the input's dim unless allowzero."""
    dims = [int(d) for d in shape.tolist()]
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return torch.reshape(x, dims)


def flatten(x: torch.Tensor, axis: int) -> torch.Tensor:
    axis = dim(x, axis)
    outer = 1
    for size in x.shape[:axis]:
        outer = outer * size
    inner = 1
    for size in x.shape[axis:]:
        inner = inner * size
    return x.reshape(outer, inner)


def squeeze(x: torch.Tensor, axes) -> torch.Tensor:
    if axes is None:
        return torch.squeeze(x)
    return torch.squeeze(x, tuple(dim(x, a) for a in ints(axes)))


def trilu(x: torch.Tensor, k, upper: bool) -> torch.Tensor:
    return torch.triu(x, ints(k)[0]) if upper else torch.tril(x, ints(k)[0])


def unsqueeze(x: torch.Tensor, axes) -> torch.Tensor:
    axes = ints(axes)
    rank = x.dim() + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        x = x.unsqueeze(axis)
    return x


def slice_axes(x: torch.Tensor, starts: list[int], ends: list[int], axes: list[int], steps: list[int]) -> torch.Tensor:
    """ONNX Slice: Python's slicing rules per axis (negative steps included, which torch indexing
    lacks: taken on the flipped axis)."""
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = dim(x, axis)
        if step > 0:  # torch's slicing clamps as Python's does (and keeps dynamic sizes symbolic)
            x = x[(slice(None),) * axis + (slice(start, end, step),)]
        else:
            size = x.shape[axis]
            begin, stop, stride = slice(start, end, step).indices(size)
            count = len(range(begin, stop, stride))
            flipped = x.flip(axis)
            first = size - 1 - begin
            x = flipped[(slice(None),) * axis + (slice(first, first + count * -stride, -stride),)]
    return x


def slice_dynamic(x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, axes: Optional[torch.Tensor],
                  steps: Optional[torch.Tensor]) -> torch.Tensor:
    begin, end = ints(starts), ints(ends)
    axis = ints(axes) if axes is not None else list(range(len(begin)))
    step = ints(steps) if steps is not None else [1] * len(begin)
    return slice_axes(x, begin, end, axis, step)


def gather(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    axis = dim(x, axis)
    size = x.shape[axis]
    indices = torch.where(indices < 0, indices + size, indices).to(torch.int64)
    picked = torch.index_select(x, axis, indices.reshape(-1))
    return picked.reshape(list(x.shape[:axis]) + list(indices.shape) + list(x.shape[axis + 1:]))


def gather_elements(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    axis = dim(x, axis)
    indices = indices.to(torch.int64)
    return torch.gather(x, axis, torch.where(indices < 0, indices + x.shape[axis], indices))


def gather_nd(x: torch.Tensor, indices: torch.Tensor, batch_dims: int) -> torch.Tensor:
    indices = indices.to(torch.int64)
    depth = indices.shape[-1]
    batch_shape = list(x.shape[:batch_dims])
    batch = 1
    for dim in batch_shape:
        batch = batch * dim
    data = x.reshape([batch] + list(x.shape[batch_dims:]))
    index = indices.reshape([batch, -1, depth])
    sizes = torch.tensor(list(x.shape[batch_dims:batch_dims + depth]), dtype=torch.int64)
    index = torch.where(index < 0, index + sizes, index)
    rows = torch.arange(batch).reshape(batch, 1).expand(batch, index.shape[1])
    picked = data[(rows,) + tuple(index[..., k] for k in range(depth))]
    return picked.reshape(list(indices.shape[:-1]) + list(x.shape[batch_dims + depth:]))


def scatter_elements(x: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor, axis: int,
                     reduction: str) -> torch.Tensor:
    axis = dim(x, axis)
    indices = indices.to(torch.int64)
    indices = torch.where(indices < 0, indices + x.shape[axis], indices)
    if reduction == "none":
        return torch.scatter(x, axis, indices, updates)
    mode = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}[reduction]
    return torch.scatter_reduce(x, axis, indices, updates, mode, include_self=True)


def scatter_nd(x: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor, reduction: str) -> torch.Tensor:
    out = x.clone()
    depth = indices.shape[-1]
    index = indices.reshape(-1, depth).to(torch.int64)
    sizes = torch.tensor(list(x.shape[:depth]), dtype=torch.int64)
    index = torch.where(index < 0, index + sizes, index)
    rows = updates.reshape([index.shape[0]] + list(x.shape[depth:]))
    key = tuple(index[:, k] for k in range(depth))
    if reduction == "none":
        out[key] = rows
    elif reduction == "add":
        out.index_put_(key, rows, accumulate=True)
    else:  # mul, max, min: applied one update at a time (duplicates combine in order)
        for i in range(index.shape[0]):
            where = tuple(int(index[i, k]) for k in range(depth))
            if reduction == "mul":
                out[where] = out[where] * rows[i]
            elif reduction == "max":
                out[where] = torch.maximum(out[where], rows[i])
            else:
                out[where] = torch.minimum(out[where], rows[i])
    return out


def expand(x: torch.Tensor, shape) -> torch.Tensor:
    """ONNX Expand broadcasts both ways: a 1 in ``shape`` keeps the input's dim."""
    shape = ints(shape)
    return torch.broadcast_to(x, torch.broadcast_shapes(tuple(x.shape), tuple(shape))).clone()


def pad(x: torch.Tensor, pads, mode: str, value: Optional[torch.Tensor], axes=None) -> torch.Tensor:
    """ONNX Pad: ``pads`` holds the begin amounts of each axis (of ``axes``, default all), then the ends."""
    rank = x.dim()
    pads = ints(pads)
    if axes is not None:
        chosen = [dim(x, a) for a in ints(axes)]
        full = [0] * (2 * rank)
        for i, axis in enumerate(chosen):
            full[axis], full[axis + rank] = pads[i], pads[i + len(chosen)]
        pads = full
    if mode == "constant":
        flat: list[int] = []
        for axis in reversed(range(rank)):
            flat += [pads[axis], pads[axis + rank]]
        fill = 0.0 if value is None else (value.item() if isinstance(value, torch.Tensor) else value)
        if x.dtype == torch.bool:
            return F.pad(x.to(torch.uint8), flat, value=float(fill)).to(torch.bool)
        return F.pad(x, flat, value=fill)
    for axis in range(rank):
        before, after = pads[axis], pads[axis + rank]
        if before < 0:
            x = x.narrow(axis, -before, x.shape[axis] + before)
            before = 0
        if after < 0:
            x = x.narrow(axis, 0, x.shape[axis] + after)
            after = 0
        if before == 0 and after == 0:
            continue
        size = x.shape[axis]
        if mode == "edge":
            head = x.narrow(axis, 0, 1).repeat_interleave(before, axis)
            tail = x.narrow(axis, size - 1, 1).repeat_interleave(after, axis)
        elif mode == "reflect":
            head = x.narrow(axis, 1, before).flip(axis)
            tail = x.narrow(axis, size - 1 - after, after).flip(axis)
        else:  # wrap
            head = x.narrow(axis, size - before, before)
            tail = x.narrow(axis, 0, after)
        x = torch.cat([head, x, tail], axis)
    return x


def one_hot(indices: torch.Tensor, depth: torch.Tensor, values: torch.Tensor, axis: int) -> torch.Tensor:
    size = int(depth.reshape(-1)[0].item())
    indices = indices.to(torch.int64)
    indices = torch.where(indices < 0, indices + size, indices)
    rank = indices.dim() + 1
    axis = axis + rank if axis < 0 else axis
    shape = [1] * rank
    shape[axis] = size
    hot = indices.unsqueeze(axis) == torch.arange(size).reshape(shape)
    return torch.where(hot, values[1], values[0])


def top_k(x: torch.Tensor, k, axis: int, largest: bool, is_sorted: bool):
    """ONNX TopK: ties keep the lower index first (a stable sort)."""
    axis, k = dim(x, axis), ints(k)[0]
    values, indices = torch.sort(x, dim=axis, descending=largest, stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)


def arg_reduce(x: torch.Tensor, axis: int, keepdims: bool, last: bool, largest: bool) -> torch.Tensor:
    axis = dim(x, axis)
    if last:
        flipped = x.flip(axis)
        found = torch.argmax(flipped, axis, keepdim=keepdims) if largest else torch.argmin(flipped, axis, keepdim=keepdims)
        return x.shape[axis] - 1 - found
    return torch.argmax(x, axis, keepdim=keepdims) if largest else torch.argmin(x, axis, keepdim=keepdims)


def reduce(x: torch.Tensor, kind: str, axes, keepdims: bool, noop_with_empty_axes: bool = False) -> torch.Tensor:
    """The ONNX Reduce* ops; ``axes`` None or empty reduces every axis (unless noop_with_empty_axes).
    An empty reduction gives the op's identity (ONNX defines it; torch's amax/amin refuse empty input)."""
    if axes is not None and not ints(axes):
        if noop_with_empty_axes:
            return x
        axes = None
    dims = list(range(x.dim())) if axes is None else [a % max(x.dim(), 1) for a in ints(axes)]
    if x.dim() == 0:
        dims = []
    if kind in ("max", "min") and x.numel() == 0:
        shape = [1 if i in dims else s for i, s in enumerate(x.shape)] if keepdims else \
            [s for i, s in enumerate(x.shape) if i not in dims]
        fill = float("-inf") if kind == "max" else float("inf")
        if x.dtype == torch.bool:
            fill = kind == "min"
        elif not x.is_floating_point():
            info = torch.iinfo(x.dtype)
            fill = info.min if kind == "max" else info.max
        return torch.full(shape, fill, dtype=x.dtype)
    if not dims:
        return x.clone() if kind not in ("l1", "sum_square", "l2") else \
            {"l1": torch.abs, "sum_square": torch.square, "l2": torch.abs}[kind](x)
    if kind == "sum":
        return torch.sum(x, dims, keepdim=keepdims, dtype=x.dtype)
    if kind == "mean":
        return torch.mean(x, dims, keepdim=keepdims)
    if kind == "max":
        return torch.amax(x, dims, keepdim=keepdims)
    if kind == "min":
        return torch.amin(x, dims, keepdim=keepdims)
    if kind == "prod":
        for axis in sorted(dims, reverse=True):
            x = torch.prod(x, axis, keepdim=keepdims, dtype=x.dtype)
        return x
    if kind == "l1":
        return torch.sum(torch.abs(x), dims, keepdim=keepdims, dtype=x.dtype)
    if kind == "l2":
        return torch.sqrt(torch.sum(x * x, dims, keepdim=keepdims)).to(x.dtype)
    if kind == "sum_square":
        return torch.sum(x * x, dims, keepdim=keepdims, dtype=x.dtype)
    if kind == "log_sum":
        return torch.log(torch.sum(x, dims, keepdim=keepdims))
    return torch.logsumexp(x, dims, keepdim=keepdims)  # log_sum_exp


def cumsum(x: torch.Tensor, axis, exclusive: bool, reverse: bool) -> torch.Tensor:
    axis = dim(x, axis)
    if reverse:
        x = x.flip(axis)
    out = torch.cumsum(x, axis, dtype=x.dtype)
    if exclusive:
        out = out - x
    return out.flip(axis) if reverse else out


def eye_like(x: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    rows = torch.arange(x.shape[0]).reshape(-1, 1)
    cols = torch.arange(x.shape[1]).reshape(1, -1)
    return (cols - rows == k).to(dtype)


def depth_to_space(x: torch.Tensor, block: int, mode: str) -> torch.Tensor:
    n, c, h, w = x.shape
    if mode == "DCR":
        y = x.reshape(n, block, block, c // (block * block), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (block * block), block, block, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (block * block), h * block, w * block)


def space_to_depth(x: torch.Tensor, block: int, mode: str = "DCR") -> torch.Tensor:
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // block, block, w // block, block)
    y = y.permute(0, 3, 5, 1, 2, 4) if mode == "DCR" else y.permute(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * block * block, h // block, w // block)


def compress(x: torch.Tensor, condition: torch.Tensor, axis: Optional[int]) -> torch.Tensor:
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = dim(x, axis)
    keep = torch.nonzero(condition.reshape(-1)).reshape(-1)
    keep = keep[keep < x.shape[axis]]
    return torch.index_select(x, axis, keep)


def unique(x: torch.Tensor, axis: Optional[int], is_sorted: bool):
    """ONNX Unique: values, first-occurrence indices, inverse indices and counts; unsorted keeps
    the order of first occurrence."""
    flat = x.reshape(-1) if axis is None else x
    dim_ = 0 if axis is None else dim(x, axis)
    values, inverse, counts = torch.unique(flat, sorted=True, return_inverse=True, return_counts=True, dim=dim_)
    positions = torch.arange(flat.shape[dim_])
    first = torch.full((values.shape[dim_],), flat.shape[dim_], dtype=torch.int64)
    first = first.scatter_reduce(0, inverse.reshape(-1), positions, "amin", include_self=True)
    if not is_sorted:
        order = torch.argsort(first, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.shape[0])
        values, first, counts, inverse = torch.index_select(values, dim_, order), first[order], counts[order], rank[inverse]
    return values, first, inverse.reshape(-1), counts


def reverse_sequence(x: torch.Tensor, lengths: torch.Tensor, batch_axis: int, time_axis: int) -> torch.Tensor:
    steps = x.shape[time_axis]
    time = torch.arange(steps).reshape(-1, 1)
    lengths = lengths.to(torch.int64).reshape(1, -1)
    source = torch.where(time < lengths, lengths - 1 - time, time)  # [time, batch]
    if batch_axis == 0:
        source = source.t()
    shape = [1] * x.dim()
    shape[batch_axis], shape[time_axis] = x.shape[batch_axis], x.shape[time_axis]
    return torch.gather(x, time_axis, source.reshape(shape).expand(x.shape))


def range_(start: torch.Tensor, limit: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)


def constant_of_shape(shape: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return torch.full([int(d) for d in shape.tolist()], value.reshape(-1)[0].item(), dtype=value.dtype)


def tile(x: torch.Tensor, repeats) -> torch.Tensor:
    return x.repeat(ints(repeats))


def split(x: torch.Tensor, sizes, axis: int):
    return torch.split(x, ints(sizes), dim(x, axis))


def split_even(x: torch.Tensor, parts: int, axis: int):
    """ONNX Split into ``parts`` outputs of ceil(dim / parts), the last smaller."""
    axis = dim(x, axis)
    size = x.shape[axis]
    chunk = (size + parts - 1) // parts
    return [x.narrow(axis, min(i * chunk, size), max(0, min(chunk, size - i * chunk))) for i in range(parts)]


# -- convolution, pooling, normalization ---------------------------------------------------------
def same_pad(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int], upper: bool,
             fill: float) -> torch.Tensor:
    """auto_pad SAME_UPPER / SAME_LOWER on inputs whose spatial sizes are known only at run time."""
    flat: list[int] = []
    for axis in reversed(range(len(kernel))):
        size = x.shape[2 + axis]
        stride, extent = strides[axis], (kernel[axis] - 1) * dilations[axis] + 1
        total = max(((size + stride - 1) // stride - 1) * stride + extent - size, 0)
        small, large = total // 2, total - total // 2
        flat += [small, large] if upper else [large, small]
    return F.pad(x, flat, value=fill)


def crop_and_bias(y: torch.Tensor, begin: list[int], end: list[int], bias: Optional[torch.Tensor]) -> torch.Tensor:
    """Remove ``begin``/``end`` from the spatial axes (negative: append zeros), then add the bias."""
    flat: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        flat += [-b, -e]
    y = F.pad(y, flat)
    if bias is not None:
        y = y + bias.reshape([1, -1] + [1] * (y.dim() - 2))
    return y


def conv_transpose_nd(x: torch.Tensor, w: torch.Tensor, strides: list[int], dilations: list[int],
                      group: int) -> torch.Tensor:
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[x.dim() - 2]
    return fn(x, w, None, strides, 0, 0, group, dilations)


def gemm(a: torch.Tensor, b: torch.Tensor, c: Optional[torch.Tensor], alpha: float, beta: float, trans_a: bool,
         trans_b: bool) -> torch.Tensor:
    y = torch.matmul(a.t() if trans_a else a, b.t() if trans_b else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def _channel(v: torch.Tensor, rank: int) -> torch.Tensor:
    return v.reshape([1, -1] + [1] * (rank - 2))


def batch_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
               eps: float) -> torch.Tensor:
    rank = x.dim()
    return (x - _channel(mean, rank)) / torch.sqrt(_channel(var, rank) + eps) * _channel(scale, rank) + _channel(bias, rank)


def batch_norm_training(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor,
                        var: torch.Tensor, eps: float, momentum: float):
    """BatchNormalization with training_mode=1: normalized by the batch's statistics; the running
    statistics updated as ONNX defines (running * momentum + batch * (1 - momentum))."""
    axes = [0] + list(range(2, x.dim()))
    batch_mean = torch.mean(x, axes)
    batch_var = torch.var(x, axes, unbiased=False)
    y = batch_norm(x, scale, bias, batch_mean, batch_var, eps)
    return y, mean * momentum + batch_mean * (1 - momentum), var * momentum + batch_var * (1 - momentum)


def instance_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    axes = list(range(2, x.dim()))
    mean = torch.mean(x, axes, keepdim=True)
    var = torch.var(x, axes, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * _channel(scale, x.dim()) + _channel(bias, x.dim())


def layer_norm(x: torch.Tensor, scale: torch.Tensor, bias: Optional[torch.Tensor], axis: int, eps: float,
               stash_float: bool):
    """LayerNormalization with its optional Mean and InvStdDev outputs (computed in float32 when
    stash_type says so, as ONNX does)."""
    work = x.to(torch.float32) if stash_float and x.dtype != torch.float64 else x
    axes = list(range(axis, x.dim()))
    mean = torch.mean(work, axes, keepdim=True)
    inv = torch.rsqrt(torch.mean((work - mean) ** 2, axes, keepdim=True) + eps)
    y = ((work - mean) * inv).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return y, mean.to(x.dtype), inv.to(x.dtype)


def group_norm(x: torch.Tensor, groups: int, scale: torch.Tensor, bias: torch.Tensor, eps: float,
               per_group: bool) -> torch.Tensor:
    n, c = x.shape[0], x.shape[1]
    work = x.to(torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x
    grouped = work.reshape(n, groups, -1)
    mean = torch.mean(grouped, -1, keepdim=True)
    var = torch.var(grouped, -1, unbiased=False, keepdim=True)
    y = ((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape).to(x.dtype)
    if per_group:
        scale, bias = scale.repeat_interleave(c // groups), bias.repeat_interleave(c // groups)
    return y * _channel(scale, x.dim()) + _channel(bias, x.dim())


def _pool_ends(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int], begin: list[int],
               end: list[int], ceil_mode: bool) -> list[int]:
    """The end pads that give exactly ONNX's output size (a window starting in the end padding
    is dropped in ceil mode)."""
    ends = []
    for axis in range(len(kernel)):
        size = x.shape[2 + axis]
        extent = (kernel[axis] - 1) * dilations[axis] + 1
        span = size + begin[axis] + end[axis] - extent
        count = (-(-span // strides[axis]) if ceil_mode else span // strides[axis]) + 1
        if ceil_mode and (count - 1) * strides[axis] >= size + begin[axis]:
            count -= 1
        ends.append((count - 1) * strides[axis] + extent - size - begin[axis])
    return ends


def _pad_spatial(x: torch.Tensor, begin: list[int], end: list[int], fill: float) -> torch.Tensor:
    flat: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        flat += [b, e]
    return F.pad(x, flat, value=fill)


def _windows(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int]) -> torch.Tensor:
    """Every pooling window as trailing axes: [N, C, *out, *kernel]."""
    spatial = len(kernel)
    for axis in range(spatial):
        extent = (kernel[axis] - 1) * dilations[axis] + 1
        x = x.unfold(2 + axis, extent, strides[axis])
        x = x[..., :: dilations[axis]]
    return x


def _resolve_same(x: torch.Tensor, kernel, strides, dilations, begin, end, same, fill: float):
    if same is not None:
        x = same_pad(x, same[0], same[1], same[2], same[3], fill)
        return x, [0] * len(kernel), [0] * len(kernel)
    return x, begin, end


def max_pool(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int], begin: list[int],
             end: list[int], same: Optional[tuple], ceil_mode: bool, storage_order: int, with_indices: bool):
    lowest = float("-inf") if x.is_floating_point() else float(torch.iinfo(x.dtype).min)
    source = x
    x, begin, end = _resolve_same(x, kernel, strides, dilations, begin, end, same, lowest)
    offset = [0] * len(kernel)
    if same is not None:  # where the SAME pads put the input inside the padded plane
        offset = [(p - s) // 2 if same[3] else (p - s) - (p - s) // 2 for p, s in zip(x.shape[2:], source.shape[2:])]
    ends = _pool_ends(x, kernel, strides, dilations, begin, end, ceil_mode)
    work = x if x.is_floating_point() else x.to(torch.float64)
    padded = _pad_spatial(work, begin, ends, float("-inf"))
    spatial = len(kernel)
    if not with_indices:
        if spatial in (1, 2, 3):
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
            return fn(padded, kernel, strides, 0, dilations).to(x.dtype)
        windows = _windows(padded, kernel, strides, dilations)
        return torch.amax(windows, list(range(-spatial, 0))).to(x.dtype)
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
    values, index = fn(padded, kernel, strides, 0, dilations, return_indices=True)
    # torch's index is into the padded plane; ONNX's into the whole input tensor, row- or column-major.
    sizes = list(source.shape[2:])
    padded_sizes = list(padded.shape[2:])
    coords = []
    rest = index
    for axis in reversed(range(spatial)):
        coords.insert(0, rest % padded_sizes[axis] - begin[axis] - offset[axis])
        rest = rest // padded_sizes[axis]
    flat = torch.zeros_like(index)
    order = range(spatial) if storage_order == 0 else reversed(range(spatial))
    for axis in order:
        flat = flat * sizes[axis] + coords[axis]
    plane = 1
    for size in sizes:
        plane *= size
    n, c = source.shape[0], source.shape[1]
    base = (torch.arange(n).reshape(n, 1) * c + torch.arange(c).reshape(1, c)).reshape([n, c] + [1] * spatial)
    return values.to(x.dtype), flat + base * plane


def average_pool(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int], begin: list[int],
                 end: list[int], same: Optional[tuple], ceil_mode: bool, count_include_pad: bool) -> torch.Tensor:
    """Sums over the windows divided by how many of their elements count: the real ones, plus the
    explicit (or SAME) pads with count_include_pad, never the ceil-mode overhang."""
    fill = 1.0 if count_include_pad else 0.0
    counted = torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype)
    if same is not None:
        counted = same_pad(counted, same[0], same[1], same[2], same[3], fill)
        x = same_pad(x, same[0], same[1], same[2], same[3], 0.0)
        begin, end = [0] * len(kernel), [0] * len(kernel)
    ends = _pool_ends(x, kernel, strides, dilations, begin, end, ceil_mode)
    total = _sum_pool(_pad_spatial(x, begin, ends, 0.0), kernel, strides, dilations)
    mask = _pad_spatial(_pad_spatial(counted, begin, end, fill), [0] * len(kernel),
                        [e - o for e, o in zip(ends, end)], 0.0)
    return total / _sum_pool(mask, kernel, strides, dilations)


def _sum_pool(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int]) -> torch.Tensor:
    spatial = len(kernel)
    if all(d == 1 for d in dilations) and spatial in (1, 2, 3):
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
        count = 1
        for k in kernel:
            count *= k
        return fn(x, kernel, strides, 0) * count
    return torch.sum(_windows(x, kernel, strides, dilations), list(range(-spatial, 0)))


def lp_pool(x: torch.Tensor, kernel: list[int], strides: list[int], dilations: list[int], begin: list[int],
            end: list[int], same: Optional[tuple], ceil_mode: bool, p: int) -> torch.Tensor:
    x, begin, end = _resolve_same(x, kernel, strides, dilations, begin, end, same, 0.0)
    ends = _pool_ends(x, kernel, strides, dilations, begin, end, ceil_mode)
    total = _sum_pool(_pad_spatial(torch.abs(x) ** p, begin, ends, 0.0), kernel, strides, dilations)
    return total ** (1.0 / p)


def global_lp_pool(x: torch.Tensor, axes: list[int], p: int) -> torch.Tensor:
    return torch.sum(torch.abs(x) ** p, axes, keepdim=True) ** (1.0 / p)


def softmax(x: torch.Tensor, axis: int, kind: str, legacy: bool) -> torch.Tensor:
    """Softmax, LogSoftmax and Hardmax; before opset 13 over the input coerced to 2-D at ``axis``."""
    shape = x.shape
    if legacy:
        x = flatten(x, axis)
        axis = 1
    if kind == "Softmax":
        y = torch.softmax(x, axis)
    elif kind == "LogSoftmax":
        y = torch.log_softmax(x, axis)
    else:
        y = F.one_hot(torch.argmax(x, axis), x.shape[axis]).to(x.dtype).movedim(-1, axis)
    return y.reshape(shape)


def dropout(x: torch.Tensor, ratio, training, seed: Optional[int]):
    """Dropout in training mode: zero with probability ``ratio``, the rest scaled by 1 / (1 - ratio)."""
    rate = float(ratio) if isinstance(ratio, torch.Tensor) else ratio
    if not bool(training) or rate == 0:
        return x, torch.ones_like(x, dtype=torch.bool)
    keep = torch.rand(x.shape) >= rate
    return torch.where(keep, x / (1.0 - rate), torch.zeros_like(x)), keep


def mean_variance_normalization(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    mean = torch.mean(x, axes, keepdim=True)
    var = torch.mean(x * x, axes, keepdim=True) - mean * mean
    return (x - mean) / torch.sqrt(var + 1e-9)


def lp_normalization(x: torch.Tensor, axis: int, p: int) -> torch.Tensor:
    norm = torch.sum(torch.abs(x) ** p, axis, keepdim=True) ** (1.0 / p)
    return torch.where(norm == 0, torch.zeros_like(x), x / torch.where(norm == 0, torch.ones_like(norm), norm))


def conv_nd(x, w, b, strides, padding, dilations, group):
    raise NotImplementedError(f"a convolution over {x.dim() - 2} spatial axes: PyTorch has 1, 2 and 3")
