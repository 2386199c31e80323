"""ONNX's loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (class axis 1, extra
dims after it, per-class weights, ignore_index, none/sum/mean reductions)."""
from __future__ import annotations

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


def _nll(ctx: NodeContext, log_prob):
    """The loss of picking ``target``'s class from ``log_prob`` [N, C, d...]."""
    tf = _tf()
    target, weight = ctx.inputs[1], ctx.input(2)
    ignore = ctx.attr("ignore_index")
    classes = tf.shape(log_prob)[1]
    target = tf.cast(target, tf.int32)
    ignored = tf.equal(target, ignore) if ignore is not None else tf.zeros_like(target, tf.bool)
    safe = tf.clip_by_value(tf.where(ignored, 0, target), 0, classes - 1)
    picked = tf.squeeze(tf.experimental.numpy.take_along_axis(log_prob, tf.expand_dims(safe, 1), axis=1), 1)
    zero = tf.zeros([], log_prob.dtype)
    loss = tf.where(ignored, zero, -picked)
    reduction = ctx.attr("reduction", "mean")
    if weight is not None:
        per_item = tf.where(ignored, zero, tf.gather(weight, safe))
    elif ignore is not None:
        per_item = tf.where(ignored, zero, tf.ones([], log_prob.dtype))
    else:
        per_item = None
    if per_item is not None:
        loss = loss * per_item
        if reduction == "mean":
            return tf.reduce_sum(loss) / tf.reduce_sum(per_item)
    if reduction == "mean":
        return tf.reduce_mean(loss)
    if reduction == "sum":
        return tf.reduce_sum(loss)
    return loss


@onnx_op("NegativeLogLikelihoodLoss", since=12)
def convert_negative_log_likelihood_loss(ctx: NodeContext):
    """ONNX NegativeLogLikelihoodLoss over log-probabilities."""
    return _nll(ctx, ctx.inputs[0])


@onnx_op("SoftmaxCrossEntropyLoss", since=12)
def convert_softmax_cross_entropy_loss(ctx: NodeContext):
    """ONNX SoftmaxCrossEntropyLoss: the loss, and the log-probabilities when asked for."""
    log_prob = _tf().nn.log_softmax(ctx.inputs[0], axis=1)
    return [_nll(ctx, log_prob), log_prob][:len(ctx.node.output)]
