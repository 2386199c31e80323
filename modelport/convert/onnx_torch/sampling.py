"""ONNX's sampling ops: AffineGrid and GridSample (``F.affine_grid`` / ``F.grid_sample``, whose
conventions are ONNX's: normalized [-1, 1] coordinates, the grid listing the last spatial axis
first), with the generic N-d gather where torch stops (cubic in 3-D, more than 3 spatial axes)."""
from __future__ import annotations

import itertools
from typing import List

import torch
import torch.nn.functional as F

from .graph import NodeContext, onnx_op


def affine_grid(theta: torch.Tensor, size: torch.Tensor, align: bool) -> torch.Tensor:
    dims = [int(d) for d in size.tolist()]
    wide = theta.to(torch.float64)
    return F.affine_grid(wide, dims, align_corners=align).to(theta.dtype)


@onnx_op("AffineGrid", since=20)
def affine_grid_op(ctx: NodeContext, theta, size):
    return ctx.call(affine_grid, theta, size, bool(ctx.attr("align_corners", 0)))


def _reflect(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Fold ``x`` back into [low, high] like a mirror, as ONNX's GridSample does."""
    span = high - low

    def fold(distance):
        turns = torch.floor(distance / span)
        return distance - turns * span, torch.remainder(turns, 2.0) == 0
    rest, even = fold(low - x)
    below = torch.where(even, low + rest, high - rest)
    rest, even = fold(x - high)
    above = torch.where(even, high - rest, low + rest)
    return torch.where(x < low, below, torch.where(x > high, above, x))


def _cubic(t: torch.Tensor) -> List[torch.Tensor]:
    a = -0.75

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample_nd(x: torch.Tensor, grid: torch.Tensor, mode: str, padding: str, align: bool) -> torch.Tensor:
    """GridSample over any number of spatial axes: each output gathers its neighbours."""
    k = x.dim() - 2
    sizes = [float(x.shape[2 + i]) for i in range(k)]
    channels_last = x.movedim(1, -1).to(torch.float64)
    grid = grid.to(torch.float64)
    coords, lows, highs = [], [], []
    for i in range(k):  # the grid lists the last spatial dim first
        n, size = grid[..., k - 1 - i], sizes[i]
        coords.append((n + 1) / 2.0 * (size - 1) if align else ((n + 1) * size - 1) / 2.0)
        lows.append(0.0 if align else -0.5)
        highs.append(size - 1.0 if align else size - 0.5)
    if mode == "nearest":
        coords = [torch.round(c) for c in coords]  # half to even, as ONNX
    if padding == "border":
        coords = [torch.clamp(c, 0.0, s - 1) for c, s in zip(coords, sizes)]
    elif padding == "reflection":
        coords = [_reflect(c, lo, hi) for c, lo, hi in zip(coords, lows, highs)]
    batch = torch.arange(x.shape[0]).reshape([-1] + [1] * (grid.dim() - 2))

    def fetch(indices):
        valid = None
        fixed = []
        for i, index in enumerate(indices):
            if padding == "zeros":
                inside = (index >= 0) & (index < sizes[i])
                valid = inside if valid is None else valid & inside
                index = torch.clamp(index, 0.0, sizes[i] - 1)
            elif padding == "border":
                index = torch.clamp(index, 0.0, sizes[i] - 1)
            else:
                index = torch.trunc(_reflect(index, lows[i], highs[i]))  # C's int(): toward zero
            fixed.append(index.to(torch.int64))
        values = channels_last[(batch,) + tuple(fixed)]
        if valid is not None:
            values = values * valid.to(values.dtype).unsqueeze(-1)
        return values

    if mode == "nearest":
        result = fetch(coords)
    else:
        base = [torch.floor(c) for c in coords]
        frac = [c - b for c, b in zip(coords, base)]
        if mode == "linear":
            offsets, weights = [0, 1], [[1 - f, f] for f in frac]
        else:
            offsets, weights = [-1, 0, 1, 2], [_cubic(f) for f in frac]
        result = 0.0
        for corner in itertools.product(range(len(offsets)), repeat=k):
            weight = 1.0
            for i, which in enumerate(corner):
                weight = weight * weights[i][which]
            result = result + fetch([b + offsets[which] for b, which in zip(base, corner)]) * weight.unsqueeze(-1)
    return result.movedim(-1, 1).to(x.dtype)


def grid_sample(x: torch.Tensor, grid: torch.Tensor, mode: str, padding: str, align: bool) -> torch.Tensor:
    torch_mode = {"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest"}[mode]
    if x.dim() == 4 or (x.dim() == 5 and mode != "cubic"):
        return F.grid_sample(x, grid.to(x.dtype), mode=torch_mode, padding_mode=padding, align_corners=align)
    return grid_sample_nd(x, grid, mode, padding, align)


@onnx_op("GridSample", since=16)
def grid_sample_op(ctx: NodeContext, x, grid):
    mode = ctx.attr("mode", "linear" if ctx.opset >= 20 else "bilinear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)  # opset 16's names
    return ctx.call(grid_sample, x, grid, mode, ctx.attr("padding_mode", "zeros"), bool(ctx.attr("align_corners", 0)))
