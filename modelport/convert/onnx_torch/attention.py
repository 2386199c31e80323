"""ONNX's transformer ops: Attention (opset 23 on: masks, causal, KV cache, grouped-query heads,
softcap, sliding window), RotaryEmbedding, RMSNormalization, LinearAttention, FlexAttention,
SwiGLU, TensorScatter and CausalConvWithState. The functions computing them run in the
converted graph."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from .dtypes import torch_dtype
from .graph import NodeContext, onnx_op


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[batch, seq, heads * size] -> [batch, heads, seq, size]."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _allowed(q_len: int, kv_len: int, offset: torch.Tensor, rule: Callable) -> torch.Tensor:
    """Where query i may see key j (``rule(i, j, offset)``): [q, kv], or [batch, 1, q, kv] for a
    per-batch offset."""
    i = torch.arange(q_len).reshape(-1, 1)
    j = torch.arange(kv_len).reshape(1, -1)
    if offset.dim():
        return rule(i.unsqueeze(0), j.unsqueeze(0), offset.reshape(-1, 1, 1)).unsqueeze(1)
    return rule(i, j, offset)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
              past_key: Optional[torch.Tensor], past_value: Optional[torch.Tensor], nonpad: Optional[torch.Tensor],
              q_heads: int, kv_heads: int, scale: Optional[float], causal: bool, softcap: float, mode: int,
              softmax_dtype: Optional[torch.dtype], left: int, right: int, outputs: int):
    """ONNX Attention over 3-D ([batch, seq, heads * size]) or 4-D ([batch, heads, seq, size]) Q/K/V."""
    dtype = q.dtype
    three_d = q.dim() == 3
    if three_d:
        q, k, v = _split_heads(q, q_heads), _split_heads(k, kv_heads), _split_heads(v, kv_heads)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[3])
    root = math.sqrt(scale)  # Q and K each scaled by sqrt(scale), as ONNX's definition does (fp16 range)
    present_key = key = torch.cat([past_key, k], 2) if past_key is not None else k
    present_value = value = torch.cat([past_value, v], 2) if past_value is not None else v
    q_len, kv_len = q.shape[2], key.shape[2]
    neg_inf = torch.tensor(float("-inf"), dtype=dtype)
    zero = torch.tensor(0.0, dtype=dtype)
    bias = torch.zeros(q_len, kv_len, dtype=dtype)
    if mask is not None:  # a mask shorter than the keys is padded as "not allowed"
        missing = kv_len - mask.shape[-1]
        if mask.dtype == torch.bool:
            mask = torch.where(torch.nn.functional.pad(mask, [0, missing], value=False), zero, neg_inf)
        else:
            mask = torch.nn.functional.pad(mask, [0, missing], value=float("-inf"))
        bias = mask.to(dtype)
    if past_key is None and nonpad is not None:
        offset = nonpad.reshape(-1).to(torch.int64) - q_len
    else:
        offset = torch.tensor(past_key.shape[2] if past_key is not None else 0)
    if causal:
        bias = bias + torch.where(_allowed(q_len, kv_len, offset, lambda i, j, o: j <= i + o), zero, neg_inf)
    if left >= 0 or right >= 0:
        def in_window(i, j, o):
            ok = torch.ones_like(i + j + o, dtype=torch.bool)
            if left >= 0:
                ok = ok & ((i + o) - j <= left)
            if right >= 0:
                ok = ok & (j - (i + o) <= right)
            return ok
        bias = bias + torch.where(_allowed(q_len, kv_len, offset, in_window), zero, neg_inf)
    if nonpad is not None:
        valid = torch.arange(kv_len).reshape(1, -1) < nonpad.reshape(-1, 1).to(torch.int64)
        bias = bias + torch.where(valid, zero, neg_inf)[:, None, None, :]
    if q.shape[1] != key.shape[1]:  # grouped-query heads: each KV head serves consecutive Q heads
        key = key.repeat_interleave(q.shape[1] // key.shape[1], 1)
        value = value.repeat_interleave(q.shape[1] // value.shape[1], 1)
    scores = torch.matmul(q * root, (key * root).transpose(-1, -2))
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    with_bias = scores + bias
    qk_output = with_bias if mode == 2 else scores
    logits = with_bias.to(softmax_dtype) if softmax_dtype is not None else with_bias
    top = torch.amax(logits, -1, keepdim=True)
    top = torch.where(torch.isneginf(top), torch.zeros_like(top), top)
    e = torch.exp(logits - top)
    total = torch.sum(e, -1, keepdim=True)
    probs = e / torch.where(total == 0, torch.ones_like(total), total)
    # A row whose bias is -inf everywhere attends to nothing: zeros (decided on the bias).
    top_bias = torch.amax(bias, -1, keepdim=True)
    probs = torch.where(torch.isneginf(top_bias), torch.zeros_like(probs), probs)
    if mode == 3:
        qk_output = probs
    y = torch.matmul(probs.to(dtype), value)
    if three_d:
        y = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
    return (y, present_key, present_value, qk_output.to(dtype))[:outputs]


@onnx_op("Attention", since=23)
def attention_op(ctx: NodeContext, q, k, v, mask=None, past_key=None, past_value=None, nonpad=None):
    precision = ctx.attr("softmax_precision")
    count = len(ctx.node.output)
    result = ctx.call(attention, q, k, v, mask, past_key, past_value, nonpad, ctx.attr("q_num_heads", 0),
                      ctx.attr("kv_num_heads", 0), ctx.attr("scale"), bool(ctx.attr("is_causal", 0)),
                      ctx.attr("softcap", 0.0), ctx.attr("qk_matmul_output_mode", 0),
                      torch_dtype(precision) if precision is not None else None,
                      ctx.attr("left_window_size", -1), ctx.attr("right_window_size", -1), count)
    return tuple(result[i] for i in range(count))


def rotary_embedding(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: Optional[torch.Tensor],
                     heads: int, rotary_dim: int, interleaved: bool) -> torch.Tensor:
    """Rotate (the first ``rotary_dim`` of) each head's features by the cached cos/sin."""
    shape = x.shape
    four_d = x.dim() == 4
    x = x.transpose(1, 2) if four_d else x.reshape(shape[0], shape[1], heads, -1)  # [batch, seq, heads, size]
    size = rotary_dim or x.shape[3]
    rotate, keep = x[..., :size], x[..., size:]
    if positions is not None:
        cos, sin = cos[positions], sin[positions]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    if interleaved:
        x1, x2 = rotate[..., 0::2], rotate[..., 1::2]
    else:
        x1, x2 = rotate[..., :size // 2], rotate[..., size // 2:size]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    rotated = torch.stack([real, imag], -1).reshape(rotate.shape) if interleaved else torch.cat([real, imag], -1)
    y = torch.cat([rotated, keep], -1)
    return y.transpose(1, 2) if four_d else y.reshape(shape)


@onnx_op("RotaryEmbedding", since=23)
def rotary_embedding_op(ctx: NodeContext, x, cos, sin, positions=None):
    return ctx.call(rotary_embedding, x, cos, sin, positions, ctx.attr("num_heads", 0),
                    ctx.attr("rotary_embedding_dim", 0), bool(ctx.attr("interleaved", 0)))


def rms_normalization(x: torch.Tensor, scale: torch.Tensor, axis: int, eps: float) -> torch.Tensor:
    axis = axis + x.dim() if axis < 0 else axis
    wide = x.to(torch.float32) if x.dtype != torch.float64 else x
    mean_square = torch.mean(wide * wide, list(range(axis, x.dim())), keepdim=True)
    return (wide * torch.rsqrt(mean_square + eps)).to(x.dtype) * scale


@onnx_op("RMSNormalization", since=23)
def rms_normalization_op(ctx: NodeContext, x, scale):
    return ctx.call(rms_normalization, x, scale, ctx.attr("axis", -1), ctx.attr("epsilon", 1e-5))


def linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, past: Optional[torch.Tensor],
                     decay: Optional[torch.Tensor], beta: Optional[torch.Tensor], q_heads: int, kv_heads: int,
                     rule: str, scale: float):
    """ONNX LinearAttention: a [d_k x d_v] state per KV head, decayed (gated rules), corrected toward
    the value (delta rules), written with k (x) v and read by q at each step; in float32."""
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    q = _split_heads(query, q_heads).to(torch.float32)
    k = _split_heads(key, kv_heads).to(torch.float32)
    v = _split_heads(value, kv_heads).to(torch.float32)
    d_k = q.shape[-1]
    if gating:  # per head [B, T, H] or per key dim [B, T, H * d_k] -> [B, H, T, 1 | d_k]
        decay = decay.transpose(1, 2).unsqueeze(-1) if decay.shape[-1] == kv_heads else _split_heads(decay, kv_heads)
        decay = decay.to(torch.float32)
    if delta:  # [B, T, H | 1] -> [B, H | 1, T, 1]
        beta = beta.transpose(1, 2).unsqueeze(-1).to(torch.float32)
    state = past.to(torch.float32) if past is not None else \
        torch.zeros(k.shape[0], kv_heads, d_k, v.shape[-1], dtype=torch.float32)
    scale = scale if scale else 1.0 / math.sqrt(d_k)
    outputs = []
    for t in range(query.shape[1]):
        k_t, v_t = k[:, :, t], v[:, :, t]
        if gating:
            state = state * torch.exp(decay[:, :, t]).unsqueeze(-1)
        if delta:
            v_t = beta[:, :, t] * (v_t - torch.einsum("bhdm,bhd->bhm", state, k_t))
        state = state + k_t.unsqueeze(-1) * v_t.unsqueeze(-2)
        read = state.repeat_interleave(q_heads // kv_heads, 1) if q_heads != kv_heads else state
        outputs.append(scale * torch.einsum("bhd,bhdm->bhm", q[:, :, t], read))
    y = torch.stack(outputs, 2)
    y = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
    return y.to(query.dtype), state.to(past.dtype if past is not None else query.dtype)


@onnx_op("LinearAttention", since=26)
def linear_attention_op(ctx: NodeContext, query, key, value, past=None, decay=None, beta=None):
    result = ctx.call(linear_attention, query, key, value, past, decay, beta, ctx.attr("q_num_heads"),
                      ctx.attr("kv_num_heads"), ctx.attr("update_rule", "gated_delta"), ctx.attr("scale") or 0.0)
    return tuple(result[i] for i in range(len(ctx.node.output)))


def flex_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: Optional[float],
                   wide: Optional[torch.dtype], score_mod: Optional[Callable], score_args: list,
                   prob_mod: Optional[Callable], prob_args: list) -> torch.Tensor:
    """softmax(score_mod(Q K^T * scale)) V, with ``prob_mod`` on the probabilities; KV heads shared
    by groups of query heads; half types softmax in float32."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    root = math.sqrt(scale)
    if q.shape[1] != k.shape[1]:
        k, v = k.repeat_interleave(q.shape[1] // k.shape[1], 1), v.repeat_interleave(q.shape[1] // v.shape[1], 1)
    wide = wide or (torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype)
    scores = torch.matmul(q * root, (k * root).transpose(-1, -2)).to(wide)
    if score_mod is not None:
        scores = score_mod(scores, *score_args)[0].to(wide)
    probs = torch.softmax(scores, -1)
    if prob_mod is not None:
        probs = prob_mod(probs, *prob_args)[0].to(wide)
    return torch.matmul(probs, v.to(wide)).to(v.dtype)


@onnx_op("FlexAttention", since=1, domain="ai.onnx.preview")
def flex_attention_op(ctx: NodeContext, q, k, v):
    mods = []
    for name in ("score_mod", "prob_mod"):
        graph = ctx.attr(name)
        mods += list(ctx.subgraph_module(graph, name)) if graph is not None else [None, []]
    precision = ctx.attr("softmax_precision")
    return ctx.call(flex_attention, q, k, v, ctx.attr("scale"), torch_dtype(precision) if precision else None, *mods)


def swiglu(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    return a * torch.sigmoid(a * alpha) * b


@onnx_op("SwiGLU", since=26)
def swiglu_op(ctx: NodeContext, a, b):
    return ctx.call(swiglu, a, b, ctx.attr("alpha", 1.0))


def tensor_scatter(cache: torch.Tensor, update: torch.Tensor, start: Optional[torch.Tensor], axis: int,
                   circular: bool) -> torch.Tensor:
    """Write ``update`` into the cache along ``axis`` from each batch's write index."""
    axis = axis % cache.dim()
    out = cache.clone()
    length, steps = cache.shape[axis], update.shape[axis]
    for b in range(cache.shape[0]):
        first = 0 if start is None else int(start[b])
        for s in range(steps):
            position = (first + s) % length if circular else first + s
            out[b].select(axis - 1, position).copy_(update[b].select(axis - 1, s))
    return out


@onnx_op("TensorScatter", since=24)
def tensor_scatter_op(ctx: NodeContext, cache, update, start=None):
    return ctx.call(tensor_scatter, cache, update, start, ctx.attr("axis", -2), ctx.attr("mode", "linear") == "circular")


def causal_conv_with_state(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                           past: Optional[torch.Tensor], activation: str):
    """Depthwise causal 1-D convolution over the past state followed by the input, optional bias and
    SiLU; the last k - 1 positions are the new state."""
    k = weight.shape[2]
    if past is None:
        past = torch.zeros(x.shape[0], x.shape[1], k - 1, dtype=x.dtype)
    padded = torch.cat([past, x], 2)
    length = x.shape[2]
    wide = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    taps = weight[:, 0, :].to(wide)
    out = sum(taps[None, :, j, None] * padded[:, :, j:j + length].to(wide) for j in range(k))
    if bias is not None:
        out = out + bias.to(wide)[None, :, None]
    out = out.to(x.dtype)
    if activation in ("silu", "swish"):
        wide_out = out.to(torch.float32)
        out = (wide_out * torch.sigmoid(wide_out)).to(x.dtype)
    return out, padded[:, :, padded.shape[2] - (k - 1):]


@onnx_op("CausalConvWithState", since=1)
def causal_conv_with_state_op(ctx: NodeContext, x, weight, bias=None, past=None):
    activation = ctx.attr("activation", "none")
    if activation not in ("none", "silu", "swish"):
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError(f"CausalConvWithState activation {activation!r}", ctx.opset,
                                 where=f"node {ctx.name!r}", hint="none, silu and swish are defined")
    result = ctx.call(causal_conv_with_state, x, weight, bias, past, activation)
    return tuple(result[i] for i in range(len(ctx.node.output)))
