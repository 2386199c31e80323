"""The layout plan: which order each tensor's axes are kept in inside the converted graph.

ONNX is channels-first; TensorFlow's CPU kernels and TFLite's are channels-last. Transposing
around every convolution (onnx-tensorflow's way) leaves a Transpose pair per layer in the graph.
Instead a value may be *laid out* in another order: :class:`Laid` holds the physical tensor and the
permutation that produced it from the ONNX (logical) tensor. Convolutions and pools produce
channels-last values; ops that do not care about the order (elementwise math, normalization over
the channel axis, concatenation, reductions) keep whatever order their inputs have, remapping their
axes; every other op gets the logical tensor, which is computed once per value. A ResNet or
MobileNet thus transposes once at its input and never again.

Each handler declares how it treats layouts when it registers (``onnx_op(..., layout=...)``):

- ``None`` (the default): the handler sees logical tensors only.
- :data:`ELEMENTWISE`: the handler's inputs are brought to a common order (broadcast operands of a
  lower rank are expanded first), and its outputs are taken to be in that order.
- :data:`AWARE`: the handler receives :class:`Laid` values as they are and lays out its outputs.
"""
from __future__ import annotations

from typing import Any, Sequence

ELEMENTWISE = "elementwise"
AWARE = "aware"
POLICIES = (None, ELEMENTWISE, AWARE)


class Laid:
    """A tensor kept in another axis order: ``tensor == transpose(logical, perm)``."""

    __slots__ = ("tensor", "perm")

    def __init__(self, tensor, perm: Sequence[int]):
        self.tensor = tensor
        self.perm = tuple(perm)

    @property
    def rank(self) -> int:
        return len(self.perm)

    def logical_shape(self) -> list[int | None]:
        dims = self.tensor.shape.as_list()
        return [dims[self.perm.index(axis)] for axis in range(self.rank)]

    def axis(self, logical_axis: int) -> int:
        """Where logical axis ``logical_axis`` (negative counts from the end) is kept."""
        return self.perm.index(logical_axis % self.rank)


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_last(rank: int) -> tuple[int, ...]:
    """N, spatial..., C from N, C, spatial... (the identity below rank 3)."""
    return (0, *range(2, rank), 1) if rank >= 3 else identity(rank)


def laid(value) -> Laid:
    """Any value as a :class:`Laid` (a plain tensor is in the identity order)."""
    return value if isinstance(value, Laid) else Laid(value, identity(len(value.shape)))


def rank_of(value) -> int | None:
    """The rank of a value (None when TF does not know it statically)."""
    return value.rank if isinstance(value, Laid) else value.shape.rank


def arrange(tf, value, perm: Sequence[int]):
    """The physical tensor of ``value`` in the order ``perm`` (identity: the logical tensor)."""
    value = laid(value)
    perm = tuple(perm)
    if value.perm == perm:
        return value.tensor
    return _permute(tf, value.tensor, [value.perm.index(axis) for axis in perm])


def logical(tf, value):
    """The ONNX-ordered tensor of ``value``."""
    if value is None or not isinstance(value, Laid):
        return value
    return arrange(tf, value, identity(value.rank))


def _permute(tf, tensor, order: list[int]):
    """``tf.transpose(tensor, order)``, as a reshape when only size-1 axes move (a GlobalAveragePool
    output [N, 1, 1, C] is [N, C, 1, 1] without moving a byte), so no Transpose is emitted."""
    if order == sorted(order):
        return tensor
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims is not None:
        moved = [axis for axis in order if dims[axis] != 1]
        if moved == sorted(moved) and sum(dims[axis] is None for axis in order) <= 1:
            return tf.reshape(tensor, [-1 if dims[axis] is None else dims[axis] for axis in order])
    return tf.transpose(tensor, order)


def align(tf, values: list) -> tuple[list, tuple[int, ...] | None]:
    """Elementwise operands in one order: that of the highest-rank laid-out operand. Lower-rank
    operands are expanded to that rank first (numpy broadcasting aligns trailing axes). Returns the
    physical operands and the order (None when every operand is logical)."""
    present = [v for v in values if v is not None]
    if not any(_permuted(v) for v in present):
        return [logical(tf, v) for v in values], None
    if any(rank_of(v) is None for v in present):
        return [logical(tf, v) for v in values], None
    top = max(rank_of(v) for v in present)
    leader = next((v for v in present if _permuted(v) and v.rank == top), None)
    if leader is None:
        return [logical(tf, v) for v in values], None
    arranged = []
    for value in values:
        if value is None:
            arranged.append(None)
            continue
        if rank_of(value) < top:
            value = _expand_rank(tf, logical(tf, value), top)
        arranged.append(arrange(tf, value, leader.perm))
    return arranged, leader.perm


def _permuted(value) -> bool:
    return isinstance(value, Laid) and value.perm != identity(value.rank)


def _expand_rank(tf, tensor, rank: int):
    missing = rank - len(tensor.shape)
    dims = tensor.shape.as_list()
    if None in dims:
        return tf.reshape(tensor, tf.concat([tf.ones([missing], tf.int32), tf.shape(tensor)], 0))
    return tf.reshape(tensor, [1] * missing + dims)


def relaid(outputs: Any, perm: tuple[int, ...] | None):
    """Mark an elementwise handler's outputs as kept in ``perm``."""
    if perm is None:
        return outputs
    if isinstance(outputs, (list, tuple)):
        return [relaid(o, perm) for o in outputs]
    return Laid(outputs, perm) if outputs is not None and len(outputs.shape) == len(perm) else outputs
