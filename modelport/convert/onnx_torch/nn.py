"""Layers with weights become real ``torch.nn`` modules (Conv, ConvTranspose, Linear, BatchNorm,
InstanceNorm, LayerNorm, GroupNorm) holding the ONNX weights as parameters, so the converted
model trains; where ONNX's semantics go beyond a module's (asymmetric pads, weights computed in
the graph, broadcast scales) the functional op runs on the same parameters instead."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import runtime
from .graph import NodeContext, is_traced, onnx_op

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _spatial(ctx: NodeContext, kernel: list[int]):
    """(strides, dilations, begin pads, end pads) of a conv or pool, from its attributes."""
    count = len(kernel)
    strides = ctx.attr("strides") or [1] * count
    dilations = ctx.attr("dilations") or [1] * count
    pads = ctx.attr("pads") or [0] * (2 * count)
    return list(strides), list(dilations), list(pads[:count]), list(pads[count:])


def _auto_pads(ctx: NodeContext, x, kernel, strides, dilations, begin, end):
    """Explicit pads for auto_pad SAME_UPPER / SAME_LOWER / VALID (static sizes: now; dynamic: at run)."""
    mode = ctx.attr("auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        return begin, end, None
    if mode == "VALID":
        return [0] * len(kernel), [0] * len(kernel), None
    shape = ctx.shape(0)
    sizes = shape[2:] if shape is not None and len(shape) == len(kernel) + 2 else [None] * len(kernel)
    if None in sizes:
        return [0] * len(kernel), [0] * len(kernel), (kernel, strides, dilations, mode == "SAME_UPPER")
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else large)
        end.append(large if mode == "SAME_UPPER" else small)
    return begin, end, None


def _pad_input(ctx: NodeContext, x, begin, end, same, fill: float = 0.0):
    """Pad ``x``'s spatial axes explicitly (what a module's symmetric padding cannot express)."""
    if same is not None:
        return ctx.call(runtime.same_pad, x, *same, fill)
    if any(begin) or any(end):
        flat = []
        for b, e in zip(reversed(begin), reversed(end)):
            flat += [b, e]
        return ctx.call(F.pad, x, flat, value=fill)
    return x


@onnx_op("Conv")
def conv(ctx: NodeContext, x, w, b=None):
    kernel = ctx.attr("kernel_shape") or (list(w.shape[2:]) if isinstance(w, torch.Tensor) else ctx.shape(1)[2:])
    strides, dilations, begin, end = _spatial(ctx, kernel)
    begin, end, same = _auto_pads(ctx, x, kernel, strides, dilations, begin, end)
    group = ctx.attr("group", 1)
    symmetric = same is None and begin == end
    if not symmetric:
        x = _pad_input(ctx, x, begin, end, same)
    padding = begin if symmetric else [0] * len(kernel)
    rank = len(kernel)
    if isinstance(w, torch.Tensor) and rank in _CONV and (b is None or isinstance(b, torch.Tensor)):
        module = _CONV[rank](w.shape[1] * group, w.shape[0], kernel, stride=strides, padding=padding,
                             dilation=dilations, groups=group, bias=b is not None, dtype=w.dtype)
        with torch.no_grad():
            module.weight.copy_(w)
            if b is not None:
                module.bias.copy_(b)
        return ctx.module(module, x)
    if rank not in _CONV_FN:
        return ctx.call(runtime.conv_nd, x, w, b, strides, padding, dilations, group)
    return ctx.call(_CONV_FN[rank], x, w, b, strides, padding, dilations, group)


@onnx_op("ConvTranspose")
def conv_transpose(ctx: NodeContext, x, w, b=None):
    kernel = ctx.attr("kernel_shape") or list(ctx.shape(1)[2:])
    rank = len(kernel)
    strides, dilations, begin, end = _spatial(ctx, kernel)
    group = ctx.attr("group", 1)
    extra = list(ctx.attr("output_padding") or [0] * rank)
    output_shape = ctx.attr("output_shape")
    mode = ctx.attr("auto_pad", "NOTSET")
    sizes = (ctx.shape(0) or [None] * (rank + 2))[2:]
    if output_shape is not None or mode in ("SAME_UPPER", "SAME_LOWER"):
        if None in sizes:
            from ...errors import UnsupportedOpError
            raise UnsupportedOpError("ConvTranspose", ctx.opset, where=f"node {ctx.name!r}",
                                     hint="output_shape / auto_pad need static spatial sizes")
        wanted = list(output_shape)[-rank:] if output_shape is not None else [size * s for size, s in zip(sizes, strides)]
        begin, end = [], []
        for i in range(rank):
            full = strides[i] * (sizes[i] - 1) + extra[i] + (kernel[i] - 1) * dilations[i] + 1
            total = full - wanted[i]
            if total < 0:  # the output is longer than the full result: more on the end, as output_padding
                extra[i] += -total
                total = 0
            upper = mode != "SAME_LOWER" if output_shape is None else mode == "SAME_UPPER"
            begin.append(total // 2 if upper else total - total // 2)
            end.append(total - total // 2 if upper else total // 2)
    elif mode == "VALID":
        begin, end = [0] * rank, [0] * rank
    constant = isinstance(w, torch.Tensor) and (b is None or isinstance(b, torch.Tensor)) and rank in _CONV_TRANSPOSE
    fits = begin == end and all(e < max(s, d) for e, s, d in zip(extra, strides, dilations))
    if constant:
        module = _CONV_TRANSPOSE[rank](w.shape[0], w.shape[1] * group, kernel, stride=strides,
                                       padding=begin if fits else 0, output_padding=extra if fits else 0,
                                       groups=group, bias=b is not None and fits, dilation=dilations, dtype=w.dtype)
        with torch.no_grad():
            module.weight.copy_(w)
            if b is not None and fits:
                module.bias.copy_(b)
        y = ctx.module(module, x)
        if fits:
            return y
        return ctx.call(runtime.crop_and_bias, y, begin, [e - o for e, o in zip(end, extra)], b)
    y = ctx.call(runtime.conv_transpose_nd, x, w, strides, dilations, group)
    return ctx.call(runtime.crop_and_bias, y, begin, [e - o for e, o in zip(end, extra)], b)


@onnx_op("Gemm")
def gemm(ctx: NodeContext, a, b, c=None):
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    trans_a, trans_b = ctx.attr("transA", 0), ctx.attr("transB", 0)
    linear = (isinstance(b, torch.Tensor) and b.is_floating_point() and not trans_a and alpha == 1.0 and
              (c is None or (isinstance(c, torch.Tensor) and beta == 1.0 and c.dim() <= 1 and
                             c.numel() in (1, b.shape[0 if trans_b else 1]))))
    if linear and is_traced(a):
        weight = b if trans_b else b.t()
        module = nn.Linear(weight.shape[1], weight.shape[0], bias=c is not None, dtype=b.dtype)
        with torch.no_grad():
            module.weight.copy_(weight)
            if c is not None:
                module.bias.copy_(c.reshape(-1).expand(weight.shape[0]))
        return ctx.module(module, a)
    return ctx.call(runtime.gemm, a, b, c, alpha, beta, bool(trans_a), bool(trans_b))


@onnx_op("MatMul")
def matmul(ctx: NodeContext, a, b):
    if isinstance(b, torch.Tensor) and b.dim() == 2 and b.is_floating_point() and is_traced(a) and ctx.rank(0) >= 2:
        module = nn.Linear(b.shape[0], b.shape[1], bias=False, dtype=b.dtype)
        with torch.no_grad():
            module.weight.copy_(b.t())
        return ctx.module(module, a)
    return ctx.call(torch.matmul, a, b)


@onnx_op("BatchNormalization")
def batch_norm(ctx: NodeContext, x, scale, bias, mean, var, *_legacy):
    eps = ctx.attr("epsilon", 1e-5)
    momentum = ctx.attr("momentum", 0.9)
    # training_mode (opset 14 on) normalizes by the batch's statistics and updates the running ones;
    # before it, a BatchNormalization in an exported graph is an inference one.
    if ctx.attr("training_mode", 0):
        result = ctx.call(runtime.batch_norm_training, x, scale, bias, mean, var, eps, momentum)
        return tuple(result[i] for i in range(len(ctx.node.output)))
    rank = ctx.rank(0)
    constant = all(isinstance(v, torch.Tensor) for v in (scale, bias, mean, var))
    if constant and 2 <= rank <= 5 and scale.is_floating_point():
        kind = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[rank]
        module = kind(scale.shape[0], eps=eps, momentum=1 - momentum, dtype=scale.dtype)
        with torch.no_grad():
            module.weight.copy_(scale)
            module.bias.copy_(bias)
            module.running_mean.copy_(mean)
            module.running_var.copy_(var)
        module.eval()
        return ctx.module(module, x)
    return ctx.call(runtime.batch_norm, x, scale, bias, mean, var, eps)


@onnx_op("InstanceNormalization")
def instance_norm(ctx: NodeContext, x, scale, bias):
    eps = ctx.attr("epsilon", 1e-5)
    rank = ctx.rank(0)
    if isinstance(scale, torch.Tensor) and isinstance(bias, torch.Tensor) and 3 <= rank <= 5:
        kind = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}[rank]
        module = kind(scale.shape[0], eps=eps, affine=True, dtype=scale.dtype)
        with torch.no_grad():
            module.weight.copy_(scale)
            module.bias.copy_(bias)
        return ctx.module(module, x)
    return ctx.call(runtime.instance_norm, x, scale, bias, eps)


@onnx_op("LayerNormalization", since=17)
def layer_norm(ctx: NodeContext, x, scale, bias=None):
    rank = ctx.rank(0)
    axis = ctx.attr("axis", -1)
    axis = axis + rank if axis < 0 else axis
    eps = ctx.attr("epsilon", 1e-5)
    shape = ctx.shape(0)
    normalized = shape[axis:] if shape is not None else None
    simple = (len([o for o in ctx.node.output if o]) == 1 and isinstance(scale, torch.Tensor) and
              normalized is not None and None not in normalized and list(scale.shape) == normalized and
              (bias is None or (isinstance(bias, torch.Tensor) and list(bias.shape) == normalized)) and
              ctx.attr("stash_type", 1) == 1 and scale.dtype in (torch.float32, torch.float64))
    if simple:
        module = nn.LayerNorm(normalized, eps=eps, bias=bias is not None, dtype=scale.dtype)
        with torch.no_grad():
            module.weight.copy_(scale)
            if bias is not None:
                module.bias.copy_(bias)
        return ctx.module(module, x)
    result = ctx.call(runtime.layer_norm, x, scale, bias, axis, eps, ctx.attr("stash_type", 1) == 1)
    return tuple(result[i] for i in range(len(ctx.node.output)))


@onnx_op("GroupNormalization", since=18)
def group_norm(ctx: NodeContext, x, scale, bias):
    groups = ctx.attr("num_groups")
    eps = ctx.attr("epsilon", 1e-5)
    channels = (ctx.shape(0) or [None, None])[1]
    if ctx.opset < 21 and isinstance(scale, torch.Tensor) and channels is not None:  # a scale per group: per channel
        scale = scale.repeat_interleave(channels // groups)
        bias = bias.repeat_interleave(channels // groups)
    if isinstance(scale, torch.Tensor) and isinstance(bias, torch.Tensor) and channels is not None and \
            ctx.attr("stash_type", 1) == 1:
        module = nn.GroupNorm(groups, channels, eps=eps, dtype=scale.dtype)
        with torch.no_grad():
            module.weight.copy_(scale)
            module.bias.copy_(bias)
        return ctx.module(module, x)
    return ctx.call(runtime.group_norm, x, groups, scale, bias, eps, ctx.opset < 21)


_POOL_FN = {"max": {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d},
            "avg": {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}}


def _plain_pool(ctx: NodeContext, kernel, begin, end, same) -> bool:
    """Whether torch's pooling function computes this pool as it is (symmetric pads of at most half
    the kernel, floor mode, a float input): the readable, exportable form."""
    dtype = ctx.dtype(0)
    return (same is None and begin == end and len(kernel) in (1, 2, 3) and not ctx.attr("ceil_mode", 0)
            and all(p <= k // 2 for p, k in zip(begin, kernel)) and dtype is not None and dtype.is_floating_point)


@onnx_op("MaxPool")
def max_pool(ctx: NodeContext, x):
    kernel = ctx.attr("kernel_shape")
    strides, dilations, begin, end = _spatial(ctx, kernel)
    begin, end, same = _auto_pads(ctx, x, kernel, strides, dilations, begin, end)
    if _plain_pool(ctx, kernel, begin, end, same) and len(ctx.node.output) == 1:
        return ctx.call(_POOL_FN["max"][len(kernel)], x, kernel, strides, begin, dilations)
    result = ctx.call(runtime.max_pool, x, kernel, strides, dilations, begin, end, same,
                      bool(ctx.attr("ceil_mode", 0)), ctx.attr("storage_order", 0), len(ctx.node.output) > 1)
    if len(ctx.node.output) > 1:
        return result[0], result[1]
    return result


@onnx_op("AveragePool")
def average_pool(ctx: NodeContext, x):
    kernel = ctx.attr("kernel_shape")
    strides, dilations, begin, end = _spatial(ctx, kernel)
    begin, end, same = _auto_pads(ctx, x, kernel, strides, dilations, begin, end)
    if _plain_pool(ctx, kernel, begin, end, same) and all(d == 1 for d in dilations):
        return ctx.call(_POOL_FN["avg"][len(kernel)], x, kernel, strides, begin,
                        count_include_pad=bool(ctx.attr("count_include_pad", 0)))
    return ctx.call(runtime.average_pool, x, kernel, strides, dilations, begin, end, same,
                    bool(ctx.attr("ceil_mode", 0)), bool(ctx.attr("count_include_pad", 0)))


@onnx_op("LpPool")
def lp_pool(ctx: NodeContext, x):
    kernel = ctx.attr("kernel_shape")
    strides, dilations, begin, end = _spatial(ctx, kernel)
    begin, end, same = _auto_pads(ctx, x, kernel, strides, dilations, begin, end)
    return ctx.call(runtime.lp_pool, x, kernel, strides, dilations, begin, end, same, bool(ctx.attr("ceil_mode", 0)),
                    ctx.attr("p", 2))


@onnx_op("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(ctx: NodeContext, x):
    axes = list(range(2, ctx.rank(0)))
    if ctx.node.op_type == "GlobalAveragePool":
        return ctx.call(torch.mean, x, axes, keepdim=True)
    if ctx.node.op_type == "GlobalMaxPool":
        return ctx.call(torch.amax, x, axes, keepdim=True)
    return ctx.call(runtime.global_lp_pool, x, axes, ctx.attr("p", 2))


@onnx_op("Softmax", "LogSoftmax", "Hardmax")
def softmax(ctx: NodeContext, x):
    rank = ctx.rank(0)
    legacy = ctx.opset < 13
    axis = ctx.attr("axis", 1 if legacy else -1)
    axis = axis + rank if axis < 0 else axis
    return ctx.call(runtime.softmax, x, axis, ctx.node.op_type, legacy)


@onnx_op("Dropout")
def dropout(ctx: NodeContext, x, ratio=None, training=None):
    """Identity at inference (ONNX's default, and before opset 12 always: the model was exported
    for inference); with training_mode, a random mask when the model runs."""
    masked = len(ctx.node.output) > 1 and bool(ctx.node.output[1])
    if ctx.opset < 12 or training is None or (isinstance(training, torch.Tensor) and not bool(training)):
        return (x, ctx.call(torch.ones_like, x, dtype=torch.bool)) if masked else x
    rate = ratio if ratio is not None else 0.5
    result = ctx.call(runtime.dropout, x, rate, training, ctx.attr("seed"))
    return (result[0], result[1]) if masked else result[0]


@onnx_op("LRN")
def lrn(ctx: NodeContext, x):
    return ctx.call(F.local_response_norm, x, ctx.attr("size"), ctx.attr("alpha", 1e-4), ctx.attr("beta", 0.75),
                    ctx.attr("bias", 1.0))


@onnx_op("Einsum")
def einsum(ctx: NodeContext, *inputs):
    return ctx.call(torch.einsum, ctx.attr("equation").replace(" ", ""), *inputs)


@onnx_op("MeanVarianceNormalization")
def mean_variance_normalization(ctx: NodeContext, x):
    return ctx.call(runtime.mean_variance_normalization, x, list(ctx.attr("axes", [0, 2, 3])))


@onnx_op("LpNormalization")
def lp_normalization(ctx: NodeContext, x):
    axis = ctx.attr("axis", -1)
    return ctx.call(runtime.lp_normalization, x, axis + ctx.rank(0) if axis < 0 else axis, ctx.attr("p", 2))
