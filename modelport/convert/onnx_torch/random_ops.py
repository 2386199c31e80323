"""ONNX's random ops: RandomNormal(Like), RandomUniform(Like), Bernoulli, Multinomial. They draw
when the model runs (registered with fold=False: a constant shape must not freeze one draw into
the graph), from torch's generator: the distribution is ONNX's, the numbers are torch's (a seed
attribute seeds a generator of the op's own, so the sequence repeats from run to run as ONNX
Runtime's does, but not ONNX Runtime's numbers)."""
from __future__ import annotations

from typing import List, Optional

import torch

from .dtypes import torch_dtype
from .graph import NodeContext, onnx_op


def _generator(seed: Optional[float]) -> Optional[torch.Generator]:
    if seed is None:
        return None
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def random_normal(shape: List[int], mean: float, scale: float, dtype: torch.dtype, seed: Optional[float]) -> torch.Tensor:
    return (torch.randn(shape, generator=_generator(seed), dtype=torch.float32) * scale + mean).to(dtype)


def random_uniform(shape: List[int], low: float, high: float, dtype: torch.dtype, seed: Optional[float]) -> torch.Tensor:
    return (torch.rand(shape, generator=_generator(seed), dtype=torch.float32) * (high - low) + low).to(dtype)


def bernoulli(p: torch.Tensor, dtype: torch.dtype, seed: Optional[float]) -> torch.Tensor:
    return torch.bernoulli(p.to(torch.float32), generator=_generator(seed)).to(dtype)


def multinomial(logits: torch.Tensor, count: int, dtype: torch.dtype, seed: Optional[float]) -> torch.Tensor:
    """``count`` class draws per row from the unnormalized log-probabilities, with replacement."""
    probabilities = torch.softmax(logits.to(torch.float32), -1)
    return torch.multinomial(probabilities, count, replacement=True, generator=_generator(seed)).to(dtype)


def _like(x: torch.Tensor) -> List[int]:
    return list(x.shape)


@onnx_op("RandomNormal", fold=False)
def random_normal_op(ctx: NodeContext):
    return ctx.call(random_normal, list(ctx.attr("shape")), ctx.attr("mean", 0.0), ctx.attr("scale", 1.0),
                    torch_dtype(ctx.attr("dtype", 1)), ctx.attr("seed"))


@onnx_op("RandomUniform", fold=False)
def random_uniform_op(ctx: NodeContext):
    return ctx.call(random_uniform, list(ctx.attr("shape")), ctx.attr("low", 0.0), ctx.attr("high", 1.0),
                    torch_dtype(ctx.attr("dtype", 1)), ctx.attr("seed"))


@onnx_op("RandomNormalLike", fold=False)
def random_normal_like_op(ctx: NodeContext, x):
    dtype = torch_dtype(ctx.attr("dtype") or ctx.onnx_type(0))
    return ctx.call(random_normal, ctx.call(_like, x), ctx.attr("mean", 0.0), ctx.attr("scale", 1.0), dtype,
                    ctx.attr("seed"))


@onnx_op("RandomUniformLike", fold=False)
def random_uniform_like_op(ctx: NodeContext, x):
    dtype = torch_dtype(ctx.attr("dtype") or ctx.onnx_type(0))
    return ctx.call(random_uniform, ctx.call(_like, x), ctx.attr("low", 0.0), ctx.attr("high", 1.0), dtype,
                    ctx.attr("seed"))


@onnx_op("Bernoulli", since=15, fold=False)
def bernoulli_op(ctx: NodeContext, p):
    return ctx.call(bernoulli, p, torch_dtype(ctx.attr("dtype") or ctx.onnx_type(0)), ctx.attr("seed"))


@onnx_op("Multinomial", since=7, fold=False)
def multinomial_op(ctx: NodeContext, logits):
    return ctx.call(multinomial, logits, ctx.attr("sample_size", 1), torch_dtype(ctx.attr("dtype", 6)),
                    ctx.attr("seed"))
