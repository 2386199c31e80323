"""ONNX's loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (class axis 1, extra dims
after it, per-class weights, ignore_index, none/sum/mean reductions)."""
from __future__ import annotations

from typing import Optional

import torch

from .graph import NodeContext, onnx_op


def nll_loss(log_prob: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
             ignore: Optional[int], reduction: str) -> torch.Tensor:
    """The loss of picking ``target``'s class from ``log_prob`` [N, C, d...], as ONNX defines it
    (a mean weighted by the picked classes' weights; ignored targets count nothing)."""
    target = target.to(torch.int64)
    ignored = target == ignore if ignore is not None else torch.zeros_like(target, dtype=torch.bool)
    safe = torch.clamp(torch.where(ignored, torch.zeros_like(target), target), 0, log_prob.shape[1] - 1)
    picked = torch.gather(log_prob, 1, safe.unsqueeze(1)).squeeze(1)
    zero = torch.zeros((), dtype=log_prob.dtype)
    loss = torch.where(ignored, zero, -picked)
    per_item = None
    if weight is not None:
        per_item = torch.where(ignored, zero, weight[safe])
    elif ignore is not None:
        per_item = torch.where(ignored, zero, torch.ones((), dtype=log_prob.dtype))
    if per_item is not None:
        loss = loss * per_item
        if reduction == "mean":
            return torch.sum(loss) / torch.sum(per_item)
    if reduction == "mean":
        return torch.mean(loss)
    if reduction == "sum":
        return torch.sum(loss)
    return loss


def softmax_cross_entropy(scores: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                          ignore: Optional[int], reduction: str):
    log_prob = torch.log_softmax(scores, 1)
    return nll_loss(log_prob, target, weight, ignore, reduction), log_prob


@onnx_op("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(ctx: NodeContext, log_prob, target, weight=None):
    return ctx.call(nll_loss, log_prob, target, weight, ctx.attr("ignore_index"), ctx.attr("reduction", "mean"))


@onnx_op("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(ctx: NodeContext, scores, target, weight=None):
    result = ctx.call(softmax_cross_entropy, scores, target, weight, ctx.attr("ignore_index"),
                      ctx.attr("reduction", "mean"))
    return tuple(result[i] for i in range(len(ctx.node.output)))
