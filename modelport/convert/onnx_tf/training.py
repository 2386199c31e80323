"""ONNX's optimizer steps (domain ai.onnx.preview.training): Adagrad, Adam and Momentum, each
updating any number of (weight, gradient, state...) groups with the shared rate R and step T."""
from __future__ import annotations

from .graph import NodeContext, onnx_op

TRAINING = "ai.onnx.preview.training"


def _tf():
    import tensorflow as tf
    return tf


def _groups(ctx: NodeContext, per: int):
    """(rate, step, [(x, g, state...) for each weight]) from ONNX's grouped input order."""
    tf = _tf()
    rate, step = ctx.inputs[:2]
    rest = ctx.inputs[2:]
    n = len(rest) // per
    return tf.reshape(rate, []), tf.reshape(step, []), [tuple(rest[j * n + i] for j in range(per)) for i in range(n)]


def _outputs(updated: list[tuple]) -> list:
    """ONNX's output order: every weight, then every first state, then every second state."""
    return [group[k] for k in range(len(updated[0])) for group in updated]


@onnx_op("Adagrad", domain=TRAINING)
def convert_adagrad(ctx: NodeContext):
    """ONNX Adagrad: decayed rate, accumulated squared (regularized) gradients."""
    tf = _tf()
    rate, step, groups = _groups(ctx, 3)
    rate = rate / (1 + tf.cast(step, rate.dtype) * ctx.attr("decay_factor", 0.0))
    updated = []
    for x, g, h in groups:
        g = ctx.attr("norm_coefficient", 0.0) * x + g
        h = h + g * g
        updated.append((x - tf.cast(rate, x.dtype) * g / (tf.sqrt(h) + ctx.attr("epsilon", 0.0)), h))
    return _outputs(updated)


@onnx_op("Adam", domain=TRAINING)
def convert_adam(ctx: NodeContext):
    """ONNX Adam: first and second moments, bias correction after the first step."""
    tf = _tf()
    rate, step, groups = _groups(ctx, 4)
    alpha, beta = ctx.attr("alpha", 0.9), ctx.attr("beta", 0.999)
    t = tf.cast(step, tf.float64)
    corrected = tf.cast(rate, tf.float64) * tf.sqrt(1 - beta ** t) / (1 - alpha ** t)
    rate = tf.where(t > 0, corrected, tf.cast(rate, tf.float64))
    updated = []
    for x, g, v, h in groups:
        g = ctx.attr("norm_coefficient", 0.0) * x + g
        v = alpha * v + (1 - alpha) * g
        h = beta * h + (1 - beta) * g * g
        x = x - tf.cast(rate, x.dtype) * (v / (tf.sqrt(h) + ctx.attr("epsilon", 0.0)))
        updated.append(((1 - ctx.attr("norm_coefficient_post", 0.0)) * x, v, h))
    return _outputs(updated)


@onnx_op("Momentum", domain=TRAINING)
def convert_momentum(ctx: NodeContext):
    """ONNX Momentum: standard or Nesterov; the gradient's coefficient is 1 at the first step."""
    tf = _tf()
    rate, step, groups = _groups(ctx, 3)
    alpha, beta = ctx.attr("alpha"), ctx.attr("beta")
    mode = ctx.attr("mode", "standard")
    nesterov = mode == "nesterov"
    updated = []
    for x, g, v in groups:
        g = ctx.attr("norm_coefficient", 0.0) * x + g
        coefficient = tf.where(step > 0, tf.cast(beta, x.dtype), tf.cast(1.0, x.dtype))
        v = alpha * v + coefficient * g
        step_size = g + alpha * v if nesterov else v
        updated.append((x - tf.cast(rate, x.dtype) * step_size, v))
    return _outputs(updated)
