"""ONNX control flow: If (tf.cond), Loop and Scan (tf.while_loop), their bodies converted by the
same graph walk with the enclosing graph's values in scope."""
from __future__ import annotations

import numpy as np

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


def _loose(tf, value):
    """A loop-carried value's shape invariant: any dims, the same rank (downstream ops need it)."""
    rank = value.shape.rank
    return tf.TensorShape(None if rank is None else [None] * rank)


def _like(tf, new, old):
    """A body's new loop-carried value in the old one's dtype, with its rank (when the body's ops
    lost track of it, the loop would refuse the value)."""
    new = tf.cast(new, old.dtype)
    if new.shape.rank is None and old.shape.rank is not None:
        new = tf.ensure_shape(new, _loose(tf, old))
    return new


def _array_for(tf, value, size=None):
    """A TensorArray collecting per-iteration values like ``value`` (same dtype and rank); it grows
    when no ``size`` is given."""
    # A fully known element shape lets TFLite lower the array to builtins; else keep the rank only.
    element = value.shape if value.shape.is_fully_defined() else _loose(tf, value)
    return tf.TensorArray(value.dtype, size=0 if size is None else size, dynamic_size=size is None,
                          infer_shape=False, element_shape=element)


def _kind(value):
    """What a branch output is, for telling why two branches do not match."""
    from .sequences import OptionalValue, TensorSequence
    if isinstance(value, TensorSequence):
        return ("sequence", len(value))
    if isinstance(value, OptionalValue):
        return ("optional", None if value.value is None else _kind(value.value))
    return "tensor"


@onnx_op("If")
def convert_if(ctx: NodeContext):
    """ONNX If: one branch or the other, on a boolean scalar."""
    tf = _tf()
    condition = tf.reshape(tf.cast(ctx.inputs[0], tf.bool), [])
    structures = []

    def branch(graph):
        def run():
            outputs = ctx.run_subgraph(graph, {})
            structures.append([_kind(value) for value in outputs])
            return outputs
        return run
    try:
        return tf.cond(condition, branch(ctx.attr("then_branch")), branch(ctx.attr("else_branch")))
    except (AssertionError, TypeError, ValueError) as exc:
        if len(structures) == 2 and structures[0] != structures[1]:  # e.g. an empty optional vs a value
            from ...errors import UnsupportedOpError
            raise UnsupportedOpError("If whose branches give different kinds of values", ctx.opset,
                                     where=f"node {ctx.node.name!r}") from exc
        raise


# A Loop whose trip count is known while converting and at most this is unrolled (when its
# condition is known too): TFLite then gets plain ops instead of a While it may not lower.
UNROLL_MAX_TRIPS = 64


class _NotStatic(Exception):
    """The loop condition depends on run-time values: the loop cannot be unrolled."""


def _static_int(ctx: NodeContext, index: int) -> int | None:
    value = ctx.static(index)
    return None if value is None else int(value.reshape(-1)[0])


@onnx_op("Loop")
def convert_loop(ctx: NodeContext):
    """ONNX Loop: up to M iterations while the condition holds; loop-carried values, and scan
    outputs stacked along a new first axis. Unrolled when M and the condition are known while
    converting and M is small, or when a sequence is carried (sequences are unrolled: sequences.py)."""
    from ...errors import UnsupportedOpError
    from .sequences import OptionalValue, TensorSequence
    trips = _static_int(ctx, 0)
    structured = any(isinstance(v, (TensorSequence, OptionalValue)) for v in ctx.inputs[2:])
    if trips is not None and (structured or trips <= UNROLL_MAX_TRIPS):
        try:
            return _unrolled_loop(ctx, trips)
        except _NotStatic:  # the unrolled ops already traced are unused and pruned with the graph
            if structured:
                raise UnsupportedOpError("Loop carrying a sequence, with a condition computed at run time", ctx.opset,
                                         where=f"node {ctx.node.name!r}") from None
    elif structured:
        raise UnsupportedOpError("Loop carrying a sequence, with a trip count computed at run time", ctx.opset,
                                 where=f"node {ctx.node.name!r}",
                                 hint="sequences are unrolled while converting: the trip count must be a constant")
    return _while_loop(ctx)


def _unrolled_loop(ctx: NodeContext, trips: int):
    """The body once per iteration in Python. A condition known while converting stops the
    unrolling; one known only at run time (tf2onnx's recurrent loops recompute theirs each step)
    masks instead: once it is false the carried values stop changing and the scan outputs are cut
    to the iterations that ran. Sequences need the static kind."""
    from .sequences import OptionalValue, TensorSequence
    tf = _tf()
    body = ctx.attr("body")
    names = [value.name for value in body.input]
    values = list(ctx.inputs[2:])
    n_carried = len(values)
    structured = any(isinstance(v, (TensorSequence, OptionalValue)) for v in values)
    known = True if ctx.input(1) is None else _static_bool(tf, ctx.inputs[1])  # None: a run-time value
    go = tf.constant(known) if known is not None else tf.reshape(tf.cast(ctx.inputs[1], tf.bool), [])
    ran = tf.constant(0, tf.int64)  # iterations that ran, when the condition is a run-time value
    masked = False
    scans = None
    for i in range(trips):
        if known is False:
            break
        if known is None:
            if structured:
                raise _NotStatic()
            masked = True
        outputs = ctx.run_subgraph(body, {names[0]: tf.constant(i, tf.int64), names[1]: go,
                                          **dict(zip(names[2:], values))})
        new = [o if isinstance(o, (TensorSequence, OptionalValue)) else tf.cast(o, v.dtype)
               for o, v in zip(outputs[1:1 + n_carried], values)]
        if masked:
            if any(not _same_static_shape(o, v) for o, v in zip(new, values)):
                raise _NotStatic()  # a value changing shape cannot be frozen with a select
            new = [tf.where(go, o, v) for o, v in zip(new, values)]
        ran = ran + tf.cast(go, tf.int64)
        values = new
        body_go = _static_bool(tf, outputs[0])
        if known is not None and body_go is not None:
            known, go = body_go, tf.constant(body_go)
        else:
            known, go = None, tf.logical_and(go, tf.reshape(tf.cast(outputs[0], tf.bool), []))
        step = outputs[1 + n_carried:]
        scans = [[s] for s in step] if scans is None else [acc + [s] for acc, s in zip(scans, step)]
    n_scans = len(body.output) - 1 - n_carried
    if n_scans and scans is None:  # no iteration ran: the scan outputs' element shapes are unknown
        raise _NotStatic()
    stacked = [tf.stack(acc) for acc in (scans or [])]
    if masked:
        stacked = [s[:ran] for s in stacked]
    return [*values, *stacked]


def _static_bool(tf, value) -> bool | None:
    """A condition's value when it is known while converting."""
    found = tf.get_static_value(value)
    return None if found is None else bool(np.asarray(found).reshape(-1)[0])


def _same_static_shape(a, b) -> bool:
    """Same rank and the same dims, known or not, in the same places (a select then keeps shapes)."""
    return a.shape.rank is not None and a.shape.as_list() == b.shape.as_list()


def _while_loop(ctx: NodeContext):
    tf = _tf()
    body = ctx.attr("body")
    trip_count, condition = ctx.input(0), ctx.input(1)
    carried = [v for v in ctx.inputs[2:]]
    n_carried = len(carried)
    n_scans = len(body.output) - 1 - n_carried
    limit = tf.reshape(tf.cast(trip_count, tf.int64), []) if trip_count is not None else tf.constant(2**62, tf.int64)
    keep_going = tf.reshape(tf.cast(condition, tf.bool), []) if condition is not None else tf.constant(True)
    names = [value.name for value in body.input]
    scans = []

    def step(i, go, values, arrays):
        feeds = {names[0]: i, names[1]: go, **dict(zip(names[2:], values))}
        outputs = ctx.run_subgraph(body, feeds)
        new_go = tf.reshape(tf.cast(outputs[0], tf.bool), [])
        new_values = [_like(tf, o, v) for o, v in zip(outputs[1:1 + n_carried], values)]
        new_arrays = [a.write(tf.cast(i, tf.int32), tf.cast(o, a.dtype)) for a, o in
                      zip(arrays, outputs[1 + n_carried:])]
        return i + 1, new_go, new_values, new_arrays

    if n_scans:  # the scan outputs' dtypes come from one trace of the body
        probe = ctx.run_subgraph(body, {names[0]: tf.constant(0, tf.int64), names[1]: keep_going,
                                        **dict(zip(names[2:], carried))})
        scans = [_array_for(tf, o) for o in probe[1 + n_carried:]]
    _, _, final, arrays = tf.while_loop(
        lambda i, go, values, arrays: tf.logical_and(i < limit, go), step,
        (tf.constant(0, tf.int64), keep_going, carried, scans),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([]), [_loose(tf, v) for v in carried],
                          [tf.TensorShape(None) for _ in scans]))
    stacked = [a.stack() for a in arrays]
    return [*final, *stacked]


@onnx_op("Scan", since=9)
def convert_scan(ctx: NodeContext):
    """ONNX Scan: the body over slices of the scan inputs (any axis, either direction), carrying
    state; scan outputs stacked along their axes."""
    n_inputs = ctx.attr("num_scan_inputs")
    return _scan(ctx, list(ctx.inputs[:len(ctx.inputs) - n_inputs]), list(ctx.inputs[len(ctx.inputs) - n_inputs:]),
                 list(ctx.attr("scan_input_directions") or [0] * n_inputs))


@onnx_op("Scan", since=8)
def convert_scan_8(ctx: NodeContext):
    """ONNX Scan before opset 9: batched (axis 0), time on axis 1, an optional (unsupported when
    given) sequence_lens first; each batch entry is scanned on its own."""
    from ...errors import UnsupportedOpError
    tf = _tf()
    if ctx.input(0) is not None:
        raise UnsupportedOpError("Scan-8 with sequence_lens", ctx.opset, where=f"node {ctx.node.name!r}")
    n_inputs = ctx.attr("num_scan_inputs")
    inputs = ctx.inputs[1:]
    states, sequences = inputs[:len(inputs) - n_inputs], inputs[len(inputs) - n_inputs:]
    reverse = list(ctx.attr("directions") or [0] * n_inputs)
    per_batch = [_scan(ctx, [s[b] for s in states], [q[b] for q in sequences], reverse)
                 for b in range(sequences[0].shape[0])]
    return [tf.stack(parts) for parts in zip(*per_batch)]


def _scan(ctx: NodeContext, states: list, sequences: list, in_reverse: list):
    tf = _tf()
    body = ctx.attr("body")
    n_inputs = len(sequences)
    in_axes = list(ctx.attr("scan_input_axes") or [0] * n_inputs)
    sequences = [tf.experimental.numpy.moveaxis(s, a, 0) for s, a in zip(sequences, in_axes)]
    sequences = [tf.reverse(s, [0]) if r else s for s, r in zip(sequences, in_reverse)]
    names = [value.name for value in body.input]
    n_states = len(states)
    n_outputs = len(body.output) - n_states
    steps = tf.shape(sequences[0])[0]

    def run(values, i):
        feeds = dict(zip(names, [*values, *[s[i] for s in sequences]]))
        return ctx.run_subgraph(body, feeds)

    probe = run(states, 0)
    arrays = [_array_for(tf, o, steps) for o in probe[n_states:]]

    def step(i, values, arrays):
        outputs = run(values, i)
        return (i + 1, [_like(tf, o, v) for o, v in zip(outputs[:n_states], values)],
                [a.write(i, o) for a, o in zip(arrays, outputs[n_states:])])

    _, final, arrays = tf.while_loop(lambda i, values, arrays: i < steps, step, (tf.constant(0), states, arrays),
                                     shape_invariants=(tf.TensorShape([]), [_loose(tf, v) for v in states],
                                                       [tf.TensorShape(None) for _ in arrays]))
    out_axes = list(ctx.attr("scan_output_axes") or [0] * n_outputs)
    out_reverse = list(ctx.attr("scan_output_directions") or [0] * n_outputs)
    results = []
    for array, axis, reverse in zip(arrays, out_axes, out_reverse):
        stacked = array.stack()
        stacked = tf.reverse(stacked, [0]) if reverse else stacked
        results.append(tf.experimental.numpy.moveaxis(stacked, 0, axis))
    return [*final, *results]
