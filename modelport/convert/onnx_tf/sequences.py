"""ONNX sequences and optionals: SequenceConstruct/Empty/Insert/At/Erase/Length, SplitToSequence,
ConcatFromSequence, SequenceMap, Optional, OptionalHasElement, OptionalGetElement.

A sequence is unrolled while tracing: a :class:`TensorSequence` holds one TF tensor per element,
so its length is fixed by the trace (positions must be constants or folded shape arithmetic),
and every element may have its own shape, as ONNX allows. An optional is an
:class:`OptionalValue` holding a tensor, a sequence or nothing. Both implement TensorFlow's nest
protocol, so If branches and tf.function results carry them like any structure of tensors.
A loop that grows a sequence by a count only known at run time cannot be expressed this way.
"""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from .dtypes import tf_dtype
from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


class TensorSequence:
    """An ONNX sequence in the trace: its elements as TF tensors, and their dtype (for empty ones)."""

    def __init__(self, items, dtype=None):
        self.items = tuple(items)
        self.dtype = self.items[0].dtype if self.items else dtype

    def __len__(self) -> int:
        return len(self.items)

    def __tf_flatten__(self):
        return (len(self.items), self.dtype), self.items

    @classmethod
    def __tf_unflatten__(cls, metadata, components):
        return cls(components, metadata[1])


class OptionalValue:
    """An ONNX optional in the trace: a tensor, a TensorSequence, or None for an empty one."""

    def __init__(self, value=None):
        self.value = value

    def __tf_flatten__(self):
        return self.value is None, () if self.value is None else (self.value,)

    @classmethod
    def __tf_unflatten__(cls, metadata, components):
        return cls(None if metadata else components[0])


def from_feed(onnx_type, value):
    """A graph input of a sequence or optional ONNX type, from what the caller passed."""
    tf = _tf()
    if onnx_type.HasField("optional_type"):
        inner = onnx_type.optional_type.elem_type
        return OptionalValue(None if value is None else from_feed(inner, value))
    if onnx_type.HasField("sequence_type"):
        element = onnx_type.sequence_type.elem_type.tensor_type.elem_type
        return TensorSequence([tf.convert_to_tensor(v) for v in value], tf_dtype(element) if element else None)
    return value


def to_result(value):
    """A sequence as a list of its elements, an optional as its value or None (tf.function results)."""
    if isinstance(value, OptionalValue):
        return None if value.value is None else to_result(value.value)
    if isinstance(value, TensorSequence):
        return [_tf().identity(item) for item in value.items]
    return value


def _position(ctx: NodeContext, index: int, length: int, default: int, inserting: bool = False) -> int:
    """A sequence position input as a Python int: in [0, length) to read or erase, [0, length] to
    insert at (negative counts from the end)."""
    if ctx.input(index) is None:
        return default
    value = ctx.static(index)
    if value is None:
        raise UnsupportedOpError(f"{ctx.node.op_type} at a position computed at run time", ctx.opset,
                                 where=f"node {ctx.node.name!r}",
                                 hint="sequences are unrolled while converting: positions must be constants")
    position = int(np.asarray(value).reshape(-1)[0])
    if position < 0:  # from the back: -1 is the last element (inserting: before it), as ONNX Runtime does
        position += length
    if not 0 <= position <= length - (0 if inserting else 1):
        raise UnsupportedOpError(f"{ctx.node.op_type} at position {position} of a sequence of {length}", ctx.opset,
                                 where=f"node {ctx.node.name!r}")
    return position


@onnx_op("SequenceConstruct", since=11)
def convert_sequence_construct(ctx: NodeContext):
    """ONNX SequenceConstruct: a sequence of the inputs."""
    return TensorSequence(ctx.inputs)


@onnx_op("SequenceEmpty", since=11)
def convert_sequence_empty(ctx: NodeContext):
    """ONNX SequenceEmpty: an empty sequence of ``dtype`` (float by default)."""
    return TensorSequence([], tf_dtype(ctx.attr("dtype", 1)))


@onnx_op("SequenceInsert", since=11)
def convert_sequence_insert(ctx: NodeContext):
    """ONNX SequenceInsert: the tensor inserted at ``position`` (appended by default)."""
    sequence, tensor = ctx.inputs[:2]
    items = list(sequence.items)
    items.insert(_position(ctx, 2, len(items), len(items), inserting=True), tensor)
    return TensorSequence(items, sequence.dtype)


@onnx_op("SequenceAt", since=11)
def convert_sequence_at(ctx: NodeContext):
    """ONNX SequenceAt: the element at ``position``."""
    sequence = ctx.inputs[0]
    return sequence.items[_position(ctx, 1, len(sequence), 0)]


@onnx_op("SequenceErase", since=11)
def convert_sequence_erase(ctx: NodeContext):
    """ONNX SequenceErase: the sequence without the element at ``position`` (the last by default)."""
    sequence = ctx.inputs[0]
    items = list(sequence.items)
    del items[_position(ctx, 1, len(items), len(items) - 1)]
    return TensorSequence(items, sequence.dtype)


@onnx_op("SequenceLength", since=11)
def convert_sequence_length(ctx: NodeContext):
    """ONNX SequenceLength: the number of elements, int64 scalar."""
    return _tf().constant(len(ctx.inputs[0]), _tf().int64)


@onnx_op("SplitToSequence", since=11)
def convert_split_to_sequence(ctx: NodeContext):
    """ONNX SplitToSequence: equal chunks of ``split`` (the last may be shorter), given sizes, or
    every slice along ``axis`` (dropping that axis unless ``keepdims``)."""
    tf = _tf()
    x = ctx.inputs[0]
    axis = ctx.attr("axis", 0) % len(x.shape)
    size = x.shape[axis]
    split = ctx.static(1)
    if split is None and ctx.input(1) is not None:  # run-time sizes: their count must be static
        sizes = ctx.inputs[1]
        if sizes.shape.rank != 1 or sizes.shape[0] is None:
            raise UnsupportedOpError("SplitToSequence into a number of pieces computed at run time", ctx.opset,
                                     where=f"node {ctx.node.name!r}",
                                     hint="sequences are unrolled while converting: give split as a constant")
        return TensorSequence(tf.split(x, tf.cast(sizes, tf.int32), axis=axis, num=sizes.shape[0]), x.dtype)
    if size is None and (split is None or np.ndim(split) == 0):
        raise UnsupportedOpError("SplitToSequence of an axis of unknown length", ctx.opset,
                                 where=f"node {ctx.node.name!r}", hint="give the input a static shape")
    if split is None:
        pieces = tf.split(x, size, axis=axis)
        if not ctx.attr("keepdims", 1):
            pieces = [tf.squeeze(piece, [axis]) for piece in pieces]
        return TensorSequence(pieces, x.dtype)
    if split.ndim == 0:
        chunk = int(split)
        sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    else:
        sizes = [int(s) for s in split]
    return TensorSequence(tf.split(x, sizes, axis=axis), x.dtype)


@onnx_op("ConcatFromSequence", since=11)
def convert_concat_from_sequence(ctx: NodeContext):
    """ONNX ConcatFromSequence: the elements concatenated along ``axis``, or stacked on a new one."""
    tf = _tf()
    items = list(ctx.inputs[0].items)
    axis = ctx.attr("axis")
    if ctx.attr("new_axis", 0):
        return tf.stack(items, axis=axis)
    return tf.concat(items, axis=axis)


@onnx_op("SequenceMap", since=17)
def convert_sequence_map(ctx: NodeContext):
    """ONNX SequenceMap: the body run on each element (of every sequence input; tensor inputs are
    passed whole each time); one output sequence per body output."""
    body = ctx.attr("body")
    inputs = list(ctx.inputs)
    length = len(inputs[0])
    names = [value.name for value in body.input]
    results = []
    for i in range(length):
        feeds = {name: value.items[i] if isinstance(value, TensorSequence) else value
                 for name, value in zip(names, inputs)}
        results.append(ctx.run_subgraph(body, feeds))
    outputs = len(body.output)
    return [TensorSequence([step[k] for step in results]) for k in range(outputs)]


@onnx_op("Optional", since=15)
def convert_optional(ctx: NodeContext):
    """ONNX Optional: wraps its input, or is empty (of the ``type`` attribute) without one."""
    return OptionalValue(ctx.input(0))


@onnx_op("OptionalHasElement", since=15)
def convert_optional_has_element(ctx: NodeContext):
    """ONNX OptionalHasElement: whether the optional holds a value (a plain tensor always does,
    an omitted input never)."""
    value = ctx.input(0)
    present = value.value is not None if isinstance(value, OptionalValue) else value is not None
    return _tf().constant(present)


@onnx_op("OptionalGetElement", since=15)
def convert_optional_get_element(ctx: NodeContext):
    """ONNX OptionalGetElement: the optional's value (a plain tensor or sequence is itself)."""
    value = ctx.inputs[0]
    if isinstance(value, OptionalValue):
        if value.value is None:
            raise UnsupportedOpError("OptionalGetElement of an empty optional", ctx.opset,
                                     where=f"node {ctx.node.name!r}")
        return value.value
    return value
