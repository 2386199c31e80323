"""ONNX sequences and optionals. A sequence is a Python list of tensors when the model runs (as in
TorchScript's List[Tensor]); an optional is its value, or None when empty. The functions below
run in the converted graph, so positions and lengths may be computed at run time."""
from __future__ import annotations

from typing import Any, Callable, List, Optional

import torch

from .graph import NodeContext, onnx_op


def _position(position: Optional[torch.Tensor], length: int, default: int) -> int:
    if position is None:
        return default
    index = int(position.reshape(-1)[0])
    return index + length if index < 0 else index


def sequence_construct(*items: torch.Tensor) -> List[torch.Tensor]:
    return list(items)


def sequence_insert(sequence: List[torch.Tensor], tensor: torch.Tensor,
                    position: Optional[torch.Tensor]) -> List[torch.Tensor]:
    items = list(sequence)
    items.insert(_position(position, len(items), len(items)), tensor)
    return items


def sequence_at(sequence: List[torch.Tensor], position: torch.Tensor) -> torch.Tensor:
    return sequence[_position(position, len(sequence), 0)]


def sequence_erase(sequence: List[torch.Tensor], position: Optional[torch.Tensor]) -> List[torch.Tensor]:
    items = list(sequence)
    del items[_position(position, len(items), len(items) - 1)]
    return items


def sequence_length(sequence: List[torch.Tensor]) -> torch.Tensor:
    return torch.tensor(len(sequence), dtype=torch.int64)


def split_to_sequence(x: torch.Tensor, split: Optional[torch.Tensor], axis: int, keepdims: bool) -> List[torch.Tensor]:
    """Equal chunks of ``split`` (the last may be shorter), given sizes, or every slice along
    ``axis`` (dropping the axis unless ``keepdims``)."""
    axis = axis % x.dim()
    if split is None:
        pieces = list(torch.split(x, 1, axis))
        return pieces if keepdims else [piece.squeeze(axis) for piece in pieces]
    if split.dim() == 0:
        return list(torch.split(x, int(split), axis))
    return list(torch.split(x, [int(s) for s in split.tolist()], axis))


def concat_from_sequence(sequence: List[torch.Tensor], axis: int, new_axis: bool) -> torch.Tensor:
    return torch.stack(sequence, axis) if new_axis else torch.cat(sequence, axis)


def sequence_map(body: Callable, inputs: List[Any], captured: List[Any]):
    """The body run on each element (of every sequence input; tensors passed whole each time); one
    output sequence per body output."""
    is_sequence = [isinstance(value, (list, tuple)) for value in inputs]
    length = len(next(value for value, listed in zip(inputs, is_sequence) if listed))
    results = [body(*[value[i] if listed else value for value, listed in zip(inputs, is_sequence)], *captured)
               for i in range(length)]
    count = len(results[0]) if results else 0
    return tuple([step[k] for step in results] for k in range(count))


def has_element(value: Any) -> torch.Tensor:
    return torch.tensor(value is not None)


def get_element(value: Any) -> Any:
    if value is None:
        raise ValueError("OptionalGetElement of an empty optional")
    return value


@onnx_op("SequenceConstruct", since=11)
def sequence_construct_op(ctx: NodeContext, *items):
    return ctx.call(sequence_construct, *items)


@onnx_op("SequenceEmpty", since=11)
def sequence_empty(ctx: NodeContext):
    return []


@onnx_op("SequenceInsert", since=11)
def sequence_insert_op(ctx: NodeContext, sequence, tensor, position=None):
    return ctx.call(sequence_insert, sequence, tensor, position)


@onnx_op("SequenceAt", since=11)
def sequence_at_op(ctx: NodeContext, sequence, position):
    return ctx.call(sequence_at, sequence, position)


@onnx_op("SequenceErase", since=11)
def sequence_erase_op(ctx: NodeContext, sequence, position=None):
    return ctx.call(sequence_erase, sequence, position)


@onnx_op("SequenceLength", since=11)
def sequence_length_op(ctx: NodeContext, sequence):
    return ctx.call(sequence_length, sequence)


@onnx_op("SplitToSequence", since=11)
def split_to_sequence_op(ctx: NodeContext, x, split=None):
    return ctx.call(split_to_sequence, x, split, ctx.attr("axis", 0), bool(ctx.attr("keepdims", 1)))


@onnx_op("ConcatFromSequence", since=11)
def concat_from_sequence_op(ctx: NodeContext, sequence):
    return ctx.call(concat_from_sequence, sequence, ctx.attr("axis"), bool(ctx.attr("new_axis", 0)))


@onnx_op("SequenceMap", since=17)
def sequence_map_op(ctx: NodeContext, *inputs):
    module, captured = ctx.subgraph_module(ctx.attr("body"), "body")
    result = ctx.call(sequence_map, module, list(inputs), captured)
    return tuple(result[i] for i in range(len(ctx.node.output)))


@onnx_op("Optional", since=15)
def optional(ctx: NodeContext, value=None):
    return value


@onnx_op("OptionalHasElement", since=15)
def optional_has_element(ctx: NodeContext, value=None):
    if value is None:
        return torch.tensor(False)
    return ctx.call(has_element, value)


@onnx_op("OptionalGetElement", since=15)
def optional_get_element(ctx: NodeContext, value):
    return ctx.call(get_element, value)
