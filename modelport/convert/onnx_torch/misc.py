"""ONNX ops without a torch.nn counterpart: CenterCropPad, CumProd, Det, NonMaxSuppression, RoiAlign,
DeformConv, MaxUnpool, Col2Im, the optimizer steps (Adagrad, Adam, Momentum), and the numeric
ONNX-ML ops (Binarizer, ArrayFeatureExtractor, LabelEncoder, TfIdfVectorizer on integers)."""
from __future__ import annotations

import itertools
from typing import List, Optional

import torch
import torch.nn.functional as F

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op

TRAINING = "ai.onnx.preview.training"


def center_crop_pad(x: torch.Tensor, sizes: torch.Tensor, axes: Optional[List[int]]) -> torch.Tensor:
    """Crop or zero-pad each listed axis around its center (the odd element at the end)."""
    rank = x.dim()
    axes = [a % rank for a in (axes if axes is not None else range(rank))]
    for index, axis in enumerate(axes):
        size, dim = int(sizes[index]), x.shape[axis]
        if dim > size:
            x = x.narrow(axis, (dim - size) // 2, size)
        elif size > dim:
            extra = size - dim
            pads = [0] * (2 * rank)
            pads[2 * (rank - 1 - axis)], pads[2 * (rank - 1 - axis) + 1] = extra // 2, extra - extra // 2
            x = F.pad(x, pads)
    return x


@onnx_op("CenterCropPad", since=18)
def center_crop_pad_op(ctx: NodeContext, x, sizes):
    axes = ctx.attr("axes")
    return ctx.call(center_crop_pad, x, sizes, list(axes) if axes is not None else None)


def cumprod(x: torch.Tensor, axis: torch.Tensor, exclusive: bool, reverse: bool) -> torch.Tensor:
    axis = int(axis.reshape(-1)[0]) % x.dim()
    if reverse:
        x = x.flip(axis)
    out = torch.cumprod(x, axis, dtype=x.dtype)
    if exclusive:
        out = torch.cat([torch.ones_like(x.narrow(axis, 0, 1)), out.narrow(axis, 0, x.shape[axis] - 1)], axis)
    return out.flip(axis) if reverse else out


@onnx_op("CumProd", since=26)
def cumprod_op(ctx: NodeContext, x, axis):
    return ctx.call(cumprod, x, axis, bool(ctx.attr("exclusive", 0)), bool(ctx.attr("reverse", 0)))


@onnx_op("Det", since=11)
def det(ctx: NodeContext, x):
    return ctx.call(torch.linalg.det, x)


def _iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Intersection over union of ``box`` with each of ``others``, all [y1, x1, y2, x2] in any corner order."""
    def normal(b):
        return (torch.minimum(b[..., 0], b[..., 2]), torch.minimum(b[..., 1], b[..., 3]),
                torch.maximum(b[..., 0], b[..., 2]), torch.maximum(b[..., 1], b[..., 3]))
    ay1, ax1, ay2, ax2 = normal(box)
    by1, bx1, by2, bx2 = normal(others)
    height = torch.clamp(torch.minimum(ay2, by2) - torch.maximum(ay1, by1), min=0)
    width = torch.clamp(torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1), min=0)
    inter = height * width
    union = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(union))


def non_max_suppression(boxes: torch.Tensor, scores: torch.Tensor, limit: Optional[torch.Tensor],
                        iou: Optional[torch.Tensor], threshold: Optional[torch.Tensor], center: bool) -> torch.Tensor:
    """Per batch and class, greedy NMS by descending score; rows [batch, class, box]."""
    keep_max = 0 if limit is None else int(limit.reshape(-1)[0])
    overlap = 0.0 if iou is None else float(iou.reshape(-1)[0])
    floor = None if threshold is None else float(threshold.reshape(-1)[0])
    boxes = boxes.to(torch.float32)
    if center:  # [x_centre, y_centre, width, height] -> [y1, x1, y2, x2]
        xc, yc, w, h = boxes.unbind(-1)
        boxes = torch.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], -1)
    rows: List[List[int]] = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            score = scores[b, c].to(torch.float32)
            order = torch.argsort(score, descending=True, stable=True)
            kept: List[int] = []
            for index in order.tolist():
                if keep_max and len(kept) >= keep_max:
                    break
                if floor is not None and float(score[index]) <= floor:
                    continue
                if kept and bool((_iou(boxes[b, index], boxes[b, kept]) > overlap).any()):
                    continue
                kept.append(index)
            rows += [[b, c, index] for index in kept]
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)


@onnx_op("NonMaxSuppression", since=10)
def non_max_suppression_op(ctx: NodeContext, boxes, scores, limit=None, iou=None, threshold=None):
    return ctx.call(non_max_suppression, boxes, scores, limit, iou, threshold, bool(ctx.attr("center_point_box", 0)))


def _roi_axis(start: torch.Tensor, size: torch.Tensor, bins: int, grid: int, extent: int):
    """RoiAlign's sample positions along one axis, per roi [R, bins, grid]: the two neighbouring
    pixels, their weights, and whether the sample lies near enough the image to count."""
    step = size / bins
    pos = (start[:, None, None] + torch.arange(bins, dtype=start.dtype)[None, :, None] * step[:, None, None]
           + (torch.arange(grid, dtype=start.dtype)[None, None, :] + 0.5) * (step / grid)[:, None, None])
    inside = (pos >= -1.0) & (pos <= extent)
    pos = torch.clamp(pos, min=0.0)
    low = torch.floor(pos).to(torch.int64)
    at_end = low >= extent - 1  # the last pixel: both neighbours are it
    low = torch.where(at_end, torch.full_like(low, extent - 1), low)
    high = torch.where(at_end, low, low + 1)
    pos = torch.where(at_end, low.to(pos.dtype), pos)
    frac = pos - low.to(pos.dtype)
    return low, high, 1.0 - frac, frac, inside


def roi_align(x: torch.Tensor, rois: torch.Tensor, batch: torch.Tensor, out_h: int, out_w: int, grid: int,
              scale: float, half_pixel: bool, mode: str) -> torch.Tensor:
    """Each roi cut into out_h x out_w bins, each the average (or max) of grid^2 bilinear samples."""
    rois = rois.to(torch.float32) * scale - (0.5 if half_pixel else 0.0)
    width, height = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    if not half_pixel:
        width, height = torch.clamp(width, min=1.0), torch.clamp(height, min=1.0)
    y0, y1, hy, ly, in_y = _roi_axis(rois[:, 1], height, out_h, grid, x.shape[2])
    x0, x1, hx, lx, in_x = _roi_axis(rois[:, 0], width, out_w, grid, x.shape[3])
    image = x.permute(0, 2, 3, 1).to(torch.float32)  # [N, H, W, C]
    index = batch.to(torch.int64)[:, None, None, None, None]

    def at(ys, xs):  # [R, out_h, grid, out_w, grid, C]
        ys, xs = ys[:, :, :, None, None], xs[:, None, None, :, :]
        shape = torch.broadcast_shapes(ys.shape, xs.shape)
        return image[index.expand(shape), ys.expand(shape), xs.expand(shape)]

    def weight(wy, wx):
        valid = (in_y[:, :, :, None, None] & in_x[:, None, None, :, :]).to(torch.float32)
        return (wy[:, :, :, None, None] * wx[:, None, None, :, :] * valid).unsqueeze(-1)
    terms = [weight(hy, hx) * at(y0, x0), weight(hy, lx) * at(y0, x1),
             weight(ly, hx) * at(y1, x0), weight(ly, lx) * at(y1, x1)]
    if mode == "max":
        pooled = torch.amax(torch.amax(torch.stack(terms), 0), (2, 4))
    else:
        pooled = torch.sum(terms[0] + terms[1] + terms[2] + terms[3], (2, 4)) / float(grid * grid)
    return pooled.permute(0, 3, 1, 2).to(x.dtype)


@onnx_op("RoiAlign", since=10)
def roi_align_op(ctx: NodeContext, x, rois, batch):
    grid = ctx.attr("sampling_ratio", 0)
    if grid <= 0:
        raise UnsupportedOpError("RoiAlign with sampling_ratio 0 (adaptive: a sample count per roi)", ctx.opset,
                                 where=f"node {ctx.name!r}", hint="export with a fixed sampling_ratio")
    half_pixel = ctx.attr("coordinate_transformation_mode", "half_pixel") == "half_pixel" and ctx.opset >= 16
    return ctx.call(roi_align, x, rois, batch, ctx.attr("output_height", 1), ctx.attr("output_width", 1), grid,
                    ctx.attr("spatial_scale", 1.0), half_pixel, ctx.attr("mode", "avg"))


def _bilinear_at(image: torch.Tensor, batch: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``image`` [N, H, W, C] at fractional positions (corners outside count as zero): [N, ..., C]."""
    height, width = image.shape[1], image.shape[2]
    y0, x0 = torch.floor(ys), torch.floor(xs)
    total = 0
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yy, xx = y0 + dy, x0 + dx
        weight = (1 - torch.abs(ys - yy)) * (1 - torch.abs(xs - xx))
        inside = (yy >= 0) & (yy <= height - 1) & (xx >= 0) & (xx <= width - 1)
        shape = yy.shape
        picked = image[batch.expand(shape), torch.clamp(yy, 0, height - 1).to(torch.int64),
                       torch.clamp(xx, 0, width - 1).to(torch.int64)]
        total = total + picked * torch.where(inside, weight, torch.zeros_like(weight)).unsqueeze(-1)
    return total


def deform_conv(x: torch.Tensor, w: torch.Tensor, offset: torch.Tensor, bias: Optional[torch.Tensor],
                mask: Optional[torch.Tensor], kernel: List[int], strides: List[int], dilations: List[int],
                pads: List[int], group: int, offset_groups: int) -> torch.Tensor:
    """2-D deformable convolution: each tap reads the input at its grid position plus an offset
    (bilinear, zero outside), optionally scaled by a mask; then a grouped convolution."""
    kh, kw = kernel
    n, channels = x.shape[0], x.shape[1]
    oh, ow = offset.shape[2], offset.shape[3]
    offset = offset.reshape(n, offset_groups, kh, kw, 2, oh, ow)
    mask = torch.ones(n, offset_groups, kh, kw, oh, ow, dtype=x.dtype) if mask is None else \
        mask.reshape(n, offset_groups, kh, kw, oh, ow)
    grid_y = ((torch.arange(kh) * dilations[0]).to(x.dtype)[:, None, None, None]
              + (torch.arange(oh) * strides[0] - pads[0]).to(x.dtype)[None, None, :, None])
    grid_x = ((torch.arange(kw) * dilations[1]).to(x.dtype)[None, :, None, None]
              + (torch.arange(ow) * strides[1] - pads[1]).to(x.dtype)[None, None, None, :])
    image = x.permute(0, 2, 3, 1)
    batch = torch.arange(n).reshape(-1, 1, 1, 1, 1)
    per_group = channels // offset_groups
    sampled = []
    for g in range(offset_groups):  # [N, kh, kw, oh, ow, C / offset_groups]
        ys, xs = grid_y[None] + offset[:, g, :, :, 0], grid_x[None] + offset[:, g, :, :, 1]
        taps = _bilinear_at(image[..., g * per_group:(g + 1) * per_group], batch, ys, xs)
        sampled.append(taps * mask[:, g].unsqueeze(-1))
    columns = torch.cat(sampled, -1)
    outs, ins = w.shape[0] // group, channels // group
    y = torch.cat([torch.einsum("nijhwc,ocij->nohw", columns[..., g * ins:(g + 1) * ins], w[g * outs:(g + 1) * outs])
                   for g in range(group)], 1)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


@onnx_op("DeformConv", since=19)
def deform_conv_op(ctx: NodeContext, x, w, offset, bias=None, mask=None):
    if ctx.rank(0) != 4:
        raise UnsupportedOpError(f"DeformConv on rank {ctx.rank(0)}", ctx.opset, where=f"node {ctx.name!r}",
                                 hint="2-D deformable convolution converts")
    kernel = list(ctx.attr("kernel_shape") or ctx.shape(1)[2:])
    return ctx.call(deform_conv, x, w, offset, bias, mask, kernel, list(ctx.attr("strides") or [1, 1]),
                    list(ctx.attr("dilations") or [1, 1]), list(ctx.attr("pads") or [0, 0, 0, 0]), ctx.attr("group", 1),
                    ctx.attr("offset_group", 1))


def max_unpool(x: torch.Tensor, where: torch.Tensor, output_shape: Optional[torch.Tensor], kernel: List[int],
               strides: List[int], pads: List[int]) -> torch.Tensor:
    """Each value written at its flat index (MaxPool's Indices) in a zero tensor of the shape the
    pool's geometry gives, then zero-padded at the end to ``output_shape`` if given."""
    rank = len(kernel)
    shape = [x.shape[0], x.shape[1]] + [(x.shape[2 + d] - 1) * strides[d] - pads[d] - pads[d + rank] + kernel[d]
                                        for d in range(rank)]
    total = 1
    for size in shape:
        total *= size
    flat = torch.zeros(total, dtype=x.dtype).scatter(0, where.reshape(-1).to(torch.int64), x.reshape(-1))
    y = flat.reshape(shape)
    if output_shape is not None:
        grow = [int(v) - s for v, s in zip(output_shape.tolist(), shape)]
        pad: List[int] = []
        for amount in reversed(grow):
            pad += [0, amount]
        y = F.pad(y, pad)
    return y


@onnx_op("MaxUnpool", since=9)
def max_unpool_op(ctx: NodeContext, x, where, output_shape=None):
    kernel = list(ctx.attr("kernel_shape"))
    return ctx.call(max_unpool, x, where, output_shape, kernel, list(ctx.attr("strides") or [1] * len(kernel)),
                    list(ctx.attr("pads") or [0] * (2 * len(kernel))))


def col2im(x: torch.Tensor, image: torch.Tensor, block: torch.Tensor, dilations: Optional[List[int]],
           strides: Optional[List[int]], pads: Optional[List[int]]) -> torch.Tensor:
    """Sum the columns [N, C * prod(block), L] back into an image [N, C, *image] (torch's fold for
    2-D; the same index arithmetic for any number of axes)."""
    size = [int(v) for v in image.tolist()]
    kernel = [int(v) for v in block.tolist()]
    rank = len(size)
    dilations = dilations or [1] * rank
    strides = strides or [1] * rank
    pads = pads or [0] * (2 * rank)
    if rank == 2 and pads[:2] == pads[2:]:
        return F.fold(x, size, kernel, dilation=dilations, padding=pads[:2], stride=strides)
    counts = [(size[d] + pads[d] + pads[d + rank] - dilations[d] * (kernel[d] - 1) - 1) // strides[d] + 1
              for d in range(rank)]
    taps = 1
    for k in kernel:
        taps *= k
    n, channels = x.shape[0], x.shape[1] // taps
    columns = x.reshape(n, channels, taps, -1)
    pixels = 1
    for s in size:
        pixels *= s
    out = torch.zeros(n, channels, pixels + 1, dtype=x.dtype)  # the last slot takes what falls in the padding
    for j, offset in enumerate(itertools.product(*[range(k) for k in kernel])):
        for l_index, start in enumerate(itertools.product(*[range(c) for c in counts])):
            flat, valid = 0, True
            for d in range(rank):
                coord = start[d] * strides[d] + offset[d] * dilations[d] - pads[d]
                valid = valid and 0 <= coord < size[d]
                flat = flat * size[d] + coord
            out[:, :, flat if valid else pixels] += columns[:, :, j, l_index]
    return out[:, :, :pixels].reshape([n, channels] + size)


@onnx_op("Col2Im", since=18)
def col2im_op(ctx: NodeContext, x, image, block):
    dilations, strides, pads = ctx.attr("dilations"), ctx.attr("strides"), ctx.attr("pads")
    return ctx.call(col2im, x, image, block, list(dilations) if dilations else None,
                    list(strides) if strides else None, list(pads) if pads else None)


# -- the optimizer steps ---------------------------------------------------------------------------
def _groups(values: List[torch.Tensor], per: int) -> List[tuple]:
    n = len(values) // per
    return [tuple(values[j * n + i] for j in range(per)) for i in range(n)]


def _outputs(updated: List[tuple]) -> tuple:
    """ONNX's output order: every weight, then every first state, then every second state."""
    return tuple(group[k] for k in range(len(updated[0])) for group in updated)


def adagrad(rate: torch.Tensor, step: torch.Tensor, values: List[torch.Tensor], decay: float, norm: float,
            epsilon: float) -> tuple:
    rate = rate / (1 + step.to(rate.dtype) * decay)
    updated = []
    for x, g, h in _groups(values, 3):
        g = norm * x + g
        h = h + g * g
        updated.append((x - rate.to(x.dtype) * g / (torch.sqrt(h) + epsilon), h))
    return _outputs(updated)


def adam(rate: torch.Tensor, step: torch.Tensor, values: List[torch.Tensor], alpha: float, beta: float, norm: float,
         norm_post: float, epsilon: float) -> tuple:
    t = step.to(torch.float64)
    corrected = rate.to(torch.float64) * torch.sqrt(1 - beta ** t) / (1 - alpha ** t)
    rate = torch.where(t > 0, corrected, rate.to(torch.float64))
    updated = []
    for x, g, v, h in _groups(values, 4):
        g = norm * x + g
        v = alpha * v + (1 - alpha) * g
        h = beta * h + (1 - beta) * g * g
        x = x - rate.to(x.dtype) * (v / (torch.sqrt(h) + epsilon))
        updated.append(((1 - norm_post) * x, v, h))
    return _outputs(updated)


def momentum(rate: torch.Tensor, step: torch.Tensor, values: List[torch.Tensor], alpha: float, beta: float,
             norm: float, nesterov: bool) -> tuple:
    updated = []
    for x, g, v in _groups(values, 3):
        g = norm * x + g
        coefficient = beta if int(step) > 0 else 1.0  # the gradient counts fully at the first step
        v = alpha * v + coefficient * g
        change = g + alpha * v if nesterov else v
        updated.append((x - rate.to(x.dtype) * change, v))
    return _outputs(updated)


@onnx_op("Adagrad", domain=TRAINING)
def adagrad_op(ctx: NodeContext, rate, step, *values):
    result = ctx.call(adagrad, rate, step, list(values), ctx.attr("decay_factor", 0.0),
                      ctx.attr("norm_coefficient", 0.0), ctx.attr("epsilon", 0.0))
    return tuple(result[i] for i in range(len(ctx.node.output)))


@onnx_op("Adam", domain=TRAINING)
def adam_op(ctx: NodeContext, rate, step, *values):
    result = ctx.call(adam, rate, step, list(values), ctx.attr("alpha", 0.9), ctx.attr("beta", 0.999),
                      ctx.attr("norm_coefficient", 0.0), ctx.attr("norm_coefficient_post", 0.0),
                      ctx.attr("epsilon", 0.0))
    return tuple(result[i] for i in range(len(ctx.node.output)))


@onnx_op("Momentum", domain=TRAINING)
def momentum_op(ctx: NodeContext, rate, step, *values):
    result = ctx.call(momentum, rate, step, list(values), ctx.attr("alpha"), ctx.attr("beta"),
                      ctx.attr("norm_coefficient", 0.0), ctx.attr("mode", "standard") == "nesterov")
    return tuple(result[i] for i in range(len(ctx.node.output)))


# -- ONNX-ML on numbers ------------------------------------------------------------------------------
def binarizer(x: torch.Tensor, threshold: float) -> torch.Tensor:
    return (x > threshold).to(x.dtype)


@onnx_op("Binarizer", domain="ai.onnx.ml")
def binarizer_op(ctx: NodeContext, x):
    return ctx.call(binarizer, x, ctx.attr("threshold", 0.0))


def array_feature_extractor(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return torch.index_select(x, x.dim() - 1, indices.reshape(-1).to(torch.int64))


@onnx_op("ArrayFeatureExtractor", domain="ai.onnx.ml")
def array_feature_extractor_op(ctx: NodeContext, x, indices):
    return ctx.call(array_feature_extractor, x, indices)


def label_encode(x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, default: torch.Tensor) -> torch.Tensor:
    """Each key's value, else the default; a comparison with every key (small vocabularies)."""
    hit = x.unsqueeze(-1) == keys
    picked = values[torch.argmax(hit.to(torch.int32), -1)]
    return torch.where(hit.any(-1), picked, default)


@onnx_op("LabelEncoder", since=2, domain="ai.onnx.ml")
def label_encoder_op(ctx: NodeContext, x):
    from onnx import numpy_helper
    from .dtypes import tensor_from_numpy
    if ctx.attr("keys_strings") is not None or ctx.attr("values_strings") is not None:
        raise UnsupportedOpError("LabelEncoder with string keys or values", ctx.opset, where=f"node {ctx.name!r}",
                                 hint="PyTorch tensors cannot hold strings")

    def tensor(name: str):
        value = ctx.attr(name)
        if value is None:
            return None
        return tensor_from_numpy(numpy_helper.to_array(value)) if hasattr(value, "data_type") else torch.tensor(value)
    keys = next(t for t in (tensor("keys_int64s"), tensor("keys_floats"), tensor("keys_tensor")) if t is not None)
    if ctx.attr("values_int64s") is not None:
        values, default = tensor("values_int64s").to(torch.int64), torch.tensor(ctx.attr("default_int64", -1))
    elif ctx.attr("values_floats") is not None:
        values, default = tensor("values_floats").to(torch.float32), torch.tensor(ctx.attr("default_float", -0.0),
                                                                                  dtype=torch.float32)
    else:
        values, default = tensor("values_tensor"), tensor("default_tensor").reshape(())
    return ctx.call(label_encode, x, keys.to(ctx.dtype(0)), values, default.to(values.dtype))


def tfidf(x: torch.Tensor, pool: List[int], starts: List[int], indexes: List[int], low: int, high: int, skips: int,
          mode: str, weights: Optional[List[float]]) -> torch.Tensor:
    """Per row, how often each pool n-gram occurs (tokens ``d`` apart for every d up to
    max_skip_count + 1; 1-grams once), weighted as TF, IDF or TFIDF."""
    vector = x.dim() <= 1
    rows = x.reshape(1, -1) if vector else x
    width = max(indexes) + 1
    length = rows.shape[1]
    out = torch.zeros(rows.shape[0], width, dtype=torch.float32)
    item = 0
    weight_of = {}
    for n, (begin, end) in enumerate(zip(starts[:-1], starts[1:]), start=1):
        grams = torch.tensor(pool[begin:end], dtype=rows.dtype).reshape(-1, n)
        ids = list(range(item, item + grams.shape[0]))
        item += grams.shape[0]
        if not low <= n <= high or not grams.shape[0]:
            continue
        for distance in range(1, (1 if n == 1 else skips + 1) + 1):
            span = max(length - (n - 1) * distance, 0)
            match = torch.ones(rows.shape[0], span, grams.shape[0], dtype=torch.bool)
            for k in range(n):
                window = rows[:, k * distance:k * distance + span]
                match = match & (window.unsqueeze(-1) == grams[:, k])
            counts = match.to(torch.float32).sum(1)  # [rows, grams]
            for g, pool_item in enumerate(ids):
                out[:, indexes[pool_item]] += counts[:, g]
        for pool_item in ids:
            weight_of[indexes[pool_item]] = weights[pool_item] if weights is not None else 1.0
    if mode == "IDF":
        out = torch.clamp(out, max=1.0)
    if mode in ("IDF", "TFIDF") and weights is not None:
        out = out * torch.tensor([weight_of.get(i, 1.0) for i in range(width)], dtype=torch.float32)
    return out[0] if vector else out


@onnx_op("TfIdfVectorizer", since=9)
def tfidf_op(ctx: NodeContext, x):
    if ctx.attr("pool_strings") is not None:
        raise UnsupportedOpError("TfIdfVectorizer over strings", ctx.opset, where=f"node {ctx.name!r}",
                                 hint="PyTorch tensors cannot hold strings")
    weights = ctx.attr("weights")
    return ctx.call(tfidf, x, [int(v) for v in ctx.attr("pool_int64s")], list(ctx.attr("ngram_counts")) +
                    [len(ctx.attr("pool_int64s"))], list(ctx.attr("ngram_indexes")), ctx.attr("min_gram_length"),
                    ctx.attr("max_gram_length"), ctx.attr("max_skip_count", 0), ctx.attr("mode"),
                    list(weights) if weights is not None else None)
