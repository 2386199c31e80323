"""ONNX Resize (and Upsample): ``F.interpolate`` where its rules are ONNX's (nearest with
asymmetric/floor, bilinear/bicubic with half-pixel or align-corners centres), else a separable
interpolation with ONNX's own coordinate rules, one axis at a time."""
from __future__ import annotations

from typing import List, Optional

import math

import torch
import torch.nn.functional as F

from ...errors import UnsupportedOpError
from .graph import NodeContext, onnx_op
from .shapes import ShapeValue, is_traced


def _source_coordinates(out_len: int, in_len: int, scale: float, mode: str, roi_start: float, roi_end: float):
    """The input coordinate each output index samples, by coordinate_transformation_mode."""
    x = torch.arange(out_len, dtype=torch.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_len > 1 else torch.zeros_like(x)
    if mode == "align_corners":  # over the unrounded output length in_len * scale, as ONNX does
        resized = in_len * scale
        return x * (in_len - 1) / (resized - 1) if resized > 1 else torch.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "half_pixel_symmetric":
        adjustment = out_len / (scale * in_len)
        return in_len / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
    if mode == "tf_crop_and_resize":
        if out_len > 1:
            return roi_start * (in_len - 1) + x * (roi_end - roi_start) * (in_len - 1) / (out_len - 1)
        return torch.full_like(x, 0.5 * (roi_start + roi_end) * (in_len - 1))
    raise ValueError(f"Resize coordinate_transformation_mode {mode!r}")


def _nearest(coords: torch.Tensor, rule: str) -> torch.Tensor:
    if rule == "round_prefer_floor":
        return torch.ceil(coords - 0.5)
    if rule == "round_prefer_ceil":
        return torch.floor(coords + 0.5)
    if rule == "floor":
        return torch.floor(coords)
    return torch.ceil(coords)


def _filter(distance: torch.Tensor, mode: str, a: float) -> torch.Tensor:
    """The linear (triangle) or Keys cubic kernel at ``distance``."""
    d = distance.abs()
    if mode == "linear":
        return torch.clamp(1 - d, min=0)
    return torch.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                       torch.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, torch.zeros_like(d)))


def _resize_axis(x: torch.Tensor, axis: int, out_len: int, scale: float, mode: str, transform: str, nearest: str,
                 a: float, exclude: bool, extrapolation: float, antialias: bool, roi: Optional[List[float]]):
    in_len = x.shape[axis]
    roi_start, roi_end = roi if roi is not None else (0.0, 1.0)
    coords = _source_coordinates(out_len, in_len, scale, transform, roi_start, roi_end)
    last = in_len - 1
    shape = [1] * x.dim()
    shape[axis] = -1

    def take(index: torch.Tensor) -> torch.Tensor:
        return torch.index_select(x, axis, torch.clamp(index, 0, last).to(torch.int64))

    if mode == "nearest":
        y = take(_nearest(coords, nearest))
    else:  # linear / cubic: taps around the coordinate, the kernel widened by 1/scale with antialias
        stretch = min(scale, 1.0) if antialias else 1.0
        reach = 1 if mode == "linear" else 2
        first = int(math.floor(-reach / stretch)) + 1
        base = torch.ceil(coords) - 1  # the tap left of the coordinate; an exact hit counts as ratio 1
        ratio = coords - base
        offsets = list(range(first, 2 - first))
        weights = [_filter((offset - ratio) * stretch, mode, a) for offset in offsets]
        if exclude:  # taps outside the input get no weight
            weights = [torch.where((base + o < 0) | (base + o > last), torch.zeros_like(w), w)
                       for o, w in zip(offsets, weights)]
        total = sum(weights)
        weights = [w / total for w in weights]
        y = sum(take(base + o) * w.to(x.dtype).reshape(shape) for o, w in zip(offsets, weights))
    if transform == "tf_crop_and_resize":
        outside = ((coords < 0) | (coords > last)).reshape(shape)
        y = torch.where(outside, torch.tensor(extrapolation, dtype=x.dtype), y)
    return y


def resize(x: torch.Tensor, roi: Optional[torch.Tensor], scales: Optional[torch.Tensor],
           sizes: Optional[torch.Tensor], axes: Optional[List[int]], mode: str, transform: str, nearest: str,
           a: float, exclude: bool, extrapolation: float, antialias: bool, policy: str) -> torch.Tensor:
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [axis + rank if axis < 0 else axis for axis in axes]
    in_lengths = [x.shape[axis] for axis in axes]
    if isinstance(sizes, (list, tuple)) or (sizes is not None and sizes.numel()):
        # a list: folded shape arithmetic (ints, and the sizes torch.export keeps symbolic)
        wanted = list(sizes) if isinstance(sizes, (list, tuple)) else [int(v) for v in sizes.reshape(-1).tolist()]
        if len(wanted) == rank and len(axes) != rank:
            wanted = [wanted[axis] for axis in axes]
        ratios = [w / i for w, i in zip(wanted, in_lengths)]
        if policy in ("not_larger", "not_smaller"):
            ratio = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [ratio] * len(axes)
            wanted = [int(torch.round(torch.tensor(ratio * i, dtype=torch.float64))) for i in in_lengths]
    else:
        ratios = [float(v) for v in scales.reshape(-1).tolist()]
        if len(ratios) == rank and len(axes) != rank:
            ratios = [ratios[axis] for axis in axes]
        wanted = [int(r * i) for r, i in zip(ratios, in_lengths)]
    rois = None
    if roi is not None and roi.numel():
        values = [float(v) for v in roi.reshape(-1).tolist()]
        half = len(values) // 2
        starts, ends = values[:half], values[half:]
        if half == rank and len(axes) != rank:
            starts, ends = [starts[axis] for axis in axes], [ends[axis] for axis in axes]
        rois = list(zip(starts, ends))
    y = x
    for i, axis in enumerate(axes):
        if wanted[i] == y.shape[axis] and ratios[i] == 1.0 and transform != "tf_crop_and_resize":
            continue
        y = _resize_axis(y, axis, wanted[i], ratios[i], mode, transform, nearest, a, exclude, extrapolation,
                         antialias, rois[i] if rois is not None else None)
    return y


def interpolate(x: torch.Tensor, size: List[int], mode: str, align_corners: Optional[bool]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode=mode, align_corners=align_corners)


def _fast_path(ctx: NodeContext, x, scales, sizes, mode: str, transform: str, nearest: str):
    """An F.interpolate call computing the same as ONNX, when the sizes are known and the rules agree."""
    shape = ctx.shape(0)
    if shape is None or len(shape) not in (3, 4, 5) or None in shape[2:] or ctx.attr("axes") is not None:
        return None
    if ctx.attr("antialias", 0) or ctx.attr("exclude_outside", 0):
        return None
    if isinstance(sizes, list) or (isinstance(sizes, torch.Tensor) and sizes.numel()):
        wanted = list(sizes) if isinstance(sizes, list) else [int(v) for v in sizes.tolist()]
        if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
            return None
    elif isinstance(scales, torch.Tensor) and scales.numel():
        factors = [float(v) for v in scales.tolist()]
        if len(factors) == len(shape):
            if factors[:2] != [1.0, 1.0]:
                return None
            factors = factors[2:]
        elif len(factors) != len(shape) - 2:
            return None
        wanted = [int(f * d) for f, d in zip(factors, shape[2:])]
        # F.interpolate(size=...) samples at in/out ratios; ONNX at 1/scale: the same only when exact.
        if any(w != f * d for w, f, d in zip(wanted, factors, shape[2:])):
            return None
    else:
        return None
    if len(wanted) == len(shape):
        # batch and channels must stay as they are; a traced size there is the exporter's
        # Shape(x)[:2] of a dynamic dim (the parity check would catch any other)
        if any(is_traced(w) and d is not None or not is_traced(w) and w != d for w, d in zip(wanted[:2], shape[:2])):
            return None
        wanted = wanted[2:]
    if any(is_traced(w) for w in wanted):
        return None
    spatial = len(shape) - 2
    if mode == "nearest" and transform == "asymmetric" and nearest == "floor":
        return ctx.call(interpolate, x, wanted, "nearest", None)
    if mode in ("linear", "cubic") and (spatial == 2 or mode == "linear"):
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial] if mode == "linear" else "bicubic"
        if mode == "cubic" and ctx.attr("cubic_coeff_a", -0.75) != -0.75:
            return None
        if transform == "align_corners":
            return ctx.call(interpolate, x, wanted, torch_mode, True)
        upsampling_only = all(w > 1 for w in wanted)
        if transform == "half_pixel" or (transform == "pytorch_half_pixel" and upsampling_only):
            return ctx.call(interpolate, x, wanted, torch_mode, False)
    return None


@onnx_op("Resize", since=10)
def resize_op(ctx: NodeContext, x, roi=None, scales=None, sizes=None):
    if ctx.opset < 11:
        roi, scales, sizes = None, roi, None
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedOpError(f"Resize mode {mode!r}", ctx.opset, ["nearest", "linear", "cubic"])
    transform = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric")
    nearest = ctx.attr("nearest_mode", "round_prefer_floor")
    if isinstance(sizes, ShapeValue):  # sizes from shape arithmetic over a dynamic batch: their entries
        sizes = ctx.ints(3)
    fast = _fast_path(ctx, x, scales, sizes, mode, transform, nearest)
    if fast is not None:
        return fast
    axes = ctx.attr("axes")
    return ctx.call(resize, x, roi, scales, sizes, list(axes) if axes is not None else None, mode, transform, nearest,
                    float(ctx.attr("cubic_coeff_a", -0.75)), bool(ctx.attr("exclude_outside", 0)),
                    float(ctx.attr("extrapolation_value", 0.0)), bool(ctx.attr("antialias", 0)),
                    ctx.attr("keep_aspect_ratio_policy", "stretch"))


@onnx_op("Upsample", since=7)
def upsample(ctx: NodeContext, x, scales=None):
    if ctx.opset < 9:
        scales = torch.tensor(ctx.attr("scales"), dtype=torch.float32)
    ctx.attrs.setdefault("nearest_mode", "floor")  # Upsample's nearest takes floor(i / scale)
    ctx.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
    if ctx.attr("mode") == "bilinear":
        ctx.attrs["mode"] = "linear"
    return ctx.call(resize, x, None, scales, None, None, ctx.attr("mode", "nearest"), "asymmetric", "floor", -0.75,
                    False, 0.0, False, "stretch")
