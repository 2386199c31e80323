"""ONNX's transformer ops: Attention (opset 23 on: masks, causal, KV cache, grouped-query heads,
softcap, sliding window), RotaryEmbedding and LinearAttention."""
from __future__ import annotations

import numpy as np

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


def _split_heads(tf, x, heads: int):
    """[batch, seq, heads * size] -> [batch, heads, seq, size]."""
    shape = tf.shape(x)
    return tf.transpose(tf.reshape(x, tf.stack([shape[0], shape[1], heads, -1])), [0, 2, 1, 3])


def _offset_mask(tf, q_len, kv_len, offset, allowed, dtype):
    """An additive bias (0 where ``allowed(i, j, offset)``, -inf elsewhere) for query i and key j.
    A per-batch ``offset`` (a vector) gives [batch, 1, q, kv], a scalar [q, kv]."""
    i = tf.range(q_len)[:, None]
    j = tf.range(kv_len)[None, :]
    if offset.shape.rank:  # per batch: the external (static) cache's frontier
        ok = allowed(i[None], j[None], tf.reshape(offset, [-1, 1, 1]))
        return tf.where(ok, tf.zeros([], dtype), tf.cast(float("-inf"), dtype))[:, None]
    return tf.where(allowed(i, j, offset), tf.zeros([], dtype), tf.cast(float("-inf"), dtype))


def _safe_softmax(tf, x):
    """Softmax over the last axis where an all -inf row gives zeros, not NaN."""
    top = tf.reduce_max(x, axis=-1, keepdims=True)
    top = tf.where(tf.math.is_inf(top) & (top < 0), tf.zeros_like(top), top)
    e = tf.exp(x - top)
    total = tf.reduce_sum(e, axis=-1, keepdims=True)
    return e / tf.where(total == 0, tf.ones_like(total), total)


@onnx_op("Attention", since=23)
def convert_attention(ctx: NodeContext):
    """ONNX Attention: scaled dot-product attention over 3-D ([batch, seq, heads * size]) or 4-D
    ([batch, heads, seq, size]) Q/K/V, with an additive or boolean mask, causal masking aligned to
    the KV cache, past key/value concatenation, grouped-query heads, softcap and the optional
    QK-matmul output."""
    tf = _tf()
    q, k, v = ctx.inputs[:3]
    mask, past_key, past_value, nonpad = (ctx.input(i) for i in (3, 4, 5, 6))
    dtype = q.dtype
    three_d = len(q.shape) == 3
    if three_d:
        q = _split_heads(tf, q, ctx.attr("q_num_heads"))
        k = _split_heads(tf, k, ctx.attr("kv_num_heads"))
        v = _split_heads(tf, v, ctx.attr("kv_num_heads"))
    scale = ctx.attr("scale")
    if scale is None:
        scale = tf.math.rsqrt(tf.cast(tf.shape(q)[3], tf.float64))
    # Q and K are each scaled by sqrt(scale), as ONNX's definition does (it bounds fp16 overflow).
    root = tf.cast(tf.sqrt(tf.cast(scale, tf.float64)), dtype)
    present_key = key = tf.concat([past_key, k], axis=2) if past_key is not None else k
    present_value = value = tf.concat([past_value, v], axis=2) if past_value is not None else v
    q_len, kv_len = tf.shape(q)[2], tf.shape(key)[2]
    neg_inf = tf.cast(float("-inf"), dtype)

    if mask is not None:  # a mask shorter than the keys is padded as "not allowed"
        missing = kv_len - tf.shape(mask)[-1]
        paddings = tf.concat([tf.zeros([len(mask.shape) - 1, 2], tf.int32), [[0, missing]]], 0)
        if mask.dtype == tf.bool:
            mask = tf.where(tf.pad(mask, paddings, constant_values=False), tf.zeros([], dtype), neg_inf)
        else:
            mask = tf.pad(mask, paddings, constant_values=float("-inf"))
    bias = tf.zeros(tf.stack([q_len, kv_len]), dtype) if mask is None else mask
    if past_key is None and nonpad is not None:
        offset = tf.cast(tf.reshape(nonpad, [-1]), tf.int32) - q_len
    else:
        offset = tf.shape(past_key)[2] if past_key is not None else tf.constant(0)
    if ctx.attr("is_causal", 0):
        bias = bias + _offset_mask(tf, q_len, kv_len, offset, lambda i, j, o: j <= i + o, dtype)
    left, right = ctx.attr("left_window_size", -1), ctx.attr("right_window_size", -1)
    if left >= 0 or right >= 0:
        def in_window(i, j, o):
            ok = tf.ones_like(i + j + o, dtype=tf.bool)
            if left >= 0:
                ok &= (i + o) - j <= left
            if right >= 0:
                ok &= j - (i + o) <= right
            return ok
        bias = bias + _offset_mask(tf, q_len, kv_len, offset, in_window, dtype)
    if nonpad is not None:
        valid = tf.range(kv_len)[None, :] < tf.cast(tf.reshape(nonpad, [-1, 1]), tf.int32)
        bias = bias + tf.where(valid, tf.zeros([], dtype), neg_inf)[:, None, None, :]

    q_heads, kv_heads = q.shape[1], key.shape[1]
    if q_heads is not None and kv_heads is not None and q_heads != kv_heads and q_heads % kv_heads == 0:
        key = tf.repeat(key, q_heads // kv_heads, axis=1)  # each KV head serves consecutive Q heads
        value = tf.repeat(value, q_heads // kv_heads, axis=1)
    scores = tf.linalg.matmul(q * root, key * root, transpose_b=True)
    softcap = ctx.attr("softcap")
    if softcap:
        scores = tf.tanh(scores / softcap) * softcap
    with_bias = scores + bias
    mode = ctx.attr("qk_matmul_output_mode", 0)
    qk_output = with_bias if mode == 2 else scores
    logits = with_bias
    precision = ctx.attr("softmax_precision")
    if precision is not None:
        from .dtypes import tf_dtype
        logits = tf.cast(logits, tf_dtype(precision))
    probs = _safe_softmax(tf, logits)
    # A row whose bias is -inf everywhere attends to nothing: zeros (decided on the bias, not the logits).
    top_bias = tf.reduce_max(bias, axis=-1, keepdims=True)
    probs = tf.where(tf.math.is_inf(top_bias) & (top_bias < 0), tf.zeros_like(probs), probs)
    if mode == 3:
        qk_output = probs
    y = tf.linalg.matmul(tf.cast(probs, dtype), value)
    if three_d:
        shape = tf.shape(y)
        y = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), tf.stack([shape[0], shape[2], -1]))
    return [y, present_key, present_value, tf.cast(qk_output, dtype)][:len(ctx.node.output)]


@onnx_op("RotaryEmbedding", since=23)
def convert_rotary_embedding(ctx: NodeContext):
    """ONNX RotaryEmbedding: rotate (the first ``rotary_embedding_dim`` of) each head's features by
    the cached cos/sin, halves or interleaved pairs, positions given or implied."""
    tf = _tf()
    x, cos, sin = ctx.inputs[:3]
    positions = ctx.input(3)
    four_d = len(x.shape) == 4
    shape = tf.shape(x)
    if four_d:  # [batch, heads, seq, size] -> [batch, seq, heads, size]
        x = tf.transpose(x, [0, 2, 1, 3])
    else:
        x = tf.reshape(x, tf.stack([shape[0], shape[1], ctx.attr("num_heads"), -1]))
    head = x.shape[3] if x.shape[3] is not None else tf.shape(x)[3]
    dim = ctx.attr("rotary_embedding_dim", 0) or head
    rotate, keep = x[..., :dim], x[..., dim:]
    if positions is not None:
        cos, sin = tf.gather(cos, positions), tf.gather(sin, positions)
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    if ctx.attr("interleaved", 0):
        x1, x2 = rotate[..., 0::2], rotate[..., 1::2]
    else:
        x1, x2 = rotate[..., :dim // 2], rotate[..., dim // 2:dim]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if ctx.attr("interleaved", 0):
        rotated = tf.reshape(tf.stack([real, imag], axis=-1), tf.shape(rotate))
    else:
        rotated = tf.concat([real, imag], axis=-1)
    y = tf.concat([rotated, keep], axis=-1)
    return tf.transpose(y, [0, 2, 1, 3]) if four_d else tf.reshape(y, shape)


@onnx_op("LinearAttention", since=26)
def convert_linear_attention(ctx: NodeContext):
    """ONNX LinearAttention: a [d_k x d_v] state per KV head, decayed (gated rules), corrected
    toward the value (delta rules), written with k (x) v and read by q at each step; grouped-query
    heads share their KV head's state. Computed in float32, over the known sequence length."""
    tf = _tf()
    query, key, value = ctx.inputs[:3]
    past, decay, beta = ctx.input(3), ctx.input(4), ctx.input(5)
    q_heads, kv_heads = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    rule = ctx.attr("update_rule", "gated_delta")
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    out_dtype = query.dtype
    q = tf.cast(_split_heads(tf, query, q_heads), tf.float32)  # [B, H, T, d]
    k = tf.cast(_split_heads(tf, key, kv_heads), tf.float32)
    v = tf.cast(_split_heads(tf, value, kv_heads), tf.float32)
    d_k = q.shape[-1]
    steps = query.shape[1]
    if gating:  # per head [B, T, H] or per key dim [B, T, H * d_k] -> [B, H, T, 1 | d_k]
        if decay.shape[-1] == kv_heads:
            decay = tf.transpose(decay, [0, 2, 1])[..., None]
        else:
            decay = _split_heads(tf, decay, kv_heads)
        decay = tf.cast(decay, tf.float32)
    if delta:  # [B, T, H | 1] -> [B, H | 1, T, 1]
        beta = tf.cast(tf.transpose(beta, [0, 2, 1])[..., None], tf.float32)
    if past is not None:
        state = tf.cast(past, tf.float32)
    else:
        state = tf.zeros(tf.stack([tf.shape(k)[0], kv_heads, d_k, tf.shape(v)[-1]]), tf.float32)
    scale = ctx.attr("scale") or 0.0
    scale = scale if scale else 1.0 / float(np.sqrt(d_k))
    outputs = []
    for t in range(steps):
        k_t, v_t = k[:, :, t], v[:, :, t]
        if gating:
            state = state * tf.exp(decay[:, :, t])[..., None]
        if delta:
            retrieved = tf.einsum("bhdm,bhd->bhm", state, k_t)
            v_t = beta[:, :, t] * (v_t - retrieved)
        state = state + k_t[..., :, None] * v_t[..., None, :]
        read = tf.repeat(state, q_heads // kv_heads, axis=1) if q_heads != kv_heads else state
        outputs.append(scale * tf.einsum("bhd,bhdm->bhm", q[:, :, t], read))
    y = tf.stack(outputs, axis=2)  # [B, H_q, T, d_v]
    shape = tf.shape(y)
    y = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), tf.stack([shape[0], shape[2], -1]))
    state_dtype = past.dtype if past is not None else out_dtype
    return [tf.cast(y, out_dtype), tf.cast(state, state_dtype)][:len(ctx.node.output)]


@onnx_op("FlexAttention", since=1, domain="ai.onnx.preview")
def convert_flex_attention(ctx: NodeContext):
    """ONNX FlexAttention (ai.onnx.preview): softmax(score_mod(Q K^T * scale)) V, the optional
    ``score_mod`` and ``prob_mod`` subgraphs applied to the whole score / probability tensors;
    KV heads shared by groups of query heads; half types softmax in float32."""
    from .dtypes import tf_dtype
    tf = _tf()
    q, k, v = ctx.inputs[:3]
    scale = ctx.attr("scale")
    scale = tf.constant(scale, tf.float32) if scale is not None else tf.math.rsqrt(tf.cast(tf.shape(q)[-1], tf.float32))
    root = tf.cast(tf.sqrt(scale), q.dtype)  # Q and K each scaled by its root, as the reference does
    q_heads, kv_heads = q.shape[1], k.shape[1]
    if q_heads is not None and kv_heads is not None and q_heads != kv_heads:
        k, v = tf.repeat(k, q_heads // kv_heads, axis=1), tf.repeat(v, q_heads // kv_heads, axis=1)
    precision = ctx.attr("softmax_precision")
    wide = tf_dtype(precision) if precision is not None else (
        tf.float32 if q.dtype in (tf.float16, tf.bfloat16) else q.dtype)
    scores = tf.cast(tf.linalg.matmul(q * root, k * root, transpose_b=True), wide)
    if ctx.attr("score_mod") is not None:
        scores = tf.cast(ctx.run_subgraph(ctx.attr("score_mod"), {ctx.attr("score_mod").input[0].name: scores})[0], wide)
    probs = tf.nn.softmax(scores, axis=-1)
    if ctx.attr("prob_mod") is not None:
        probs = tf.cast(ctx.run_subgraph(ctx.attr("prob_mod"), {ctx.attr("prob_mod").input[0].name: probs})[0], wide)
    return tf.cast(tf.linalg.matmul(probs, tf.cast(v, wide)), v.dtype)
