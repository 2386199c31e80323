"""ONNX control flow: If, Loop and Scan. A condition known while converting picks its branch then
(inlined); otherwise each body becomes a GraphModule of its own, a submodule of the result, run by
the functions below with the enclosing graph's values it reads passed in."""
from __future__ import annotations

from typing import Any, Callable, List, Optional

import torch

from .dtypes import torch_dtype
from .graph import NodeContext, onnx_op


def run_if(condition: torch.Tensor, then_branch: Callable, else_branch: Callable, then_args: List[Any],
           else_args: List[Any]):
    """ONNX If. Under torch.export a data-dependent branch is torch.cond (both branches traced;
    they must give tensors of the same shapes, as torch.cond requires); eagerly, a Python if."""
    if torch.compiler.is_exporting() and all(isinstance(a, torch.Tensor) for a in [*then_args, *else_args]):
        count = len(then_args)
        return torch.cond(condition.reshape(-1)[0].to(torch.bool),
                          lambda *args: tuple(then_branch(*args[:count])),
                          lambda *args: tuple(else_branch(*args[count:])), tuple([*then_args, *else_args]))
    if bool(condition.reshape(-1)[0]):
        return then_branch(*then_args)
    return else_branch(*else_args)


@onnx_op("If")
def if_(ctx: NodeContext, condition):
    count = len(ctx.node.output)
    if isinstance(condition, torch.Tensor):  # decided now: the branch is part of the graph
        branch = ctx.attr("then_branch") if bool(condition.reshape(-1)[0]) else ctx.attr("else_branch")
        outputs = ctx.subgraph(branch, [])
        return tuple(outputs[:count])
    then_module, then_args = ctx.subgraph_module(ctx.attr("then_branch"), "then")
    else_module, else_args = ctx.subgraph_module(ctx.attr("else_branch"), "else")
    result = ctx.call(run_if, condition, then_module, else_module, then_args, else_args)
    return tuple(result[i] for i in range(count))


def _empty_scans(specs: List[tuple]) -> List[torch.Tensor]:
    return [torch.zeros([0] + [d if d is not None else 0 for d in shape], dtype=dtype) for dtype, shape in specs]


def run_loop(trips: Optional[torch.Tensor], condition: Optional[torch.Tensor], body: Callable, carried: List[Any],
             captured: List[Any], scan_specs: List[tuple]):
    """ONNX Loop: the body while the condition holds and fewer than ``trips`` iterations ran;
    returns the final carried values, then each scan output stacked on a new first axis."""
    limit = None if trips is None else int(trips.reshape(-1)[0])
    go = True if condition is None else bool(condition.reshape(-1)[0])
    values = list(carried)
    scans: List[List[torch.Tensor]] = [[] for _ in scan_specs]
    step = 0
    while go and (limit is None or step < limit):
        outputs = body(torch.tensor(step, dtype=torch.int64), torch.tensor(go), *values, *captured)
        go = bool(outputs[0].reshape(-1)[0])
        values = list(outputs[1:1 + len(values)])
        for collected, value in zip(scans, outputs[1 + len(values):]):
            collected.append(value)
        step += 1
    empty = _empty_scans(scan_specs)
    stacked = [torch.stack(collected) if collected else empty[i] for i, collected in enumerate(scans)]
    return tuple(values + stacked)


def _scan_specs(ctx: NodeContext, outputs) -> list[tuple]:
    specs = []
    for value in outputs:
        code = ctx.info.types.get(value.name) or value.type.tensor_type.elem_type
        shape = ctx.info.shapes.get(value.name) or [d.dim_value or None for d in value.type.tensor_type.shape.dim]
        specs.append((torch_dtype(code) if code else torch.float32, list(shape)))
    return specs


# A Loop whose trip count and condition are known while converting, and that runs at most this
# many times, is unrolled: torch.export cannot trace a loop whose length is data, and exporters
# (tf2onnx's recurrent layers) write fixed-length loops that way.
UNROLL_MAX_TRIPS = 64


class _RunTimeCondition(Exception):
    """The loop's condition depends on the data: it cannot be unrolled."""


def _unrolled(ctx: NodeContext, trips: int | None, carried: tuple):
    body = ctx.attr("body")
    values = list(carried)
    scans: list[list] = []
    step = 0
    go = True
    while go and (trips is None or step < trips):
        if step >= UNROLL_MAX_TRIPS:
            raise _RunTimeCondition()
        outputs = ctx.subgraph(body, [torch.tensor(step, dtype=torch.int64), torch.tensor(True), *values])
        if not isinstance(outputs[0], torch.Tensor):
            raise _RunTimeCondition()
        go = bool(outputs[0].reshape(-1)[0])
        values = list(outputs[1:1 + len(values)])
        for index, value in enumerate(outputs[1 + len(values):]):
            if len(scans) <= index:
                scans.append([])
            scans[index].append(value)
        step += 1
    specs = _scan_specs(ctx, body.output[1 + len(carried):])
    stacked = [ctx.call(torch.stack, collected) if collected else _empty_scans([spec])[0]
               for collected, spec in zip(scans or [[] for _ in specs], specs)]
    return tuple(values + stacked)


@onnx_op("Loop")
def loop(ctx: NodeContext, trips=None, condition=None, *carried):
    known_trips = isinstance(trips, torch.Tensor) and int(trips.reshape(-1)[0]) <= UNROLL_MAX_TRIPS
    known_condition = condition is None or (isinstance(condition, torch.Tensor) and bool(condition.reshape(-1)[0]))
    if known_trips and known_condition and not any(isinstance(v, list) for v in carried):
        try:
            return _unrolled(ctx, int(trips.reshape(-1)[0]), carried)
        except _RunTimeCondition:  # what was traced of the unrolling is unused, and dropped with the dead code
            pass
    body = ctx.attr("body")
    module, captured = ctx.subgraph_module(body, "body")
    specs = _scan_specs(ctx, body.output[1 + len(carried):])
    result = ctx.call(run_loop, trips, condition, module, list(carried), captured, specs)
    return tuple(result[i] for i in range(len(ctx.node.output)))


def run_scan(body: Callable, states: List[torch.Tensor], inputs: List[torch.Tensor], captured: List[Any],
             input_axes: List[int], input_reverse: List[bool], output_axes: List[int], output_reverse: List[bool]):
    """ONNX Scan (opset 9 on): the body once per slice of the scan inputs along their axes,
    carrying the states; per-iteration outputs stacked along their axes."""
    inputs = [x.movedim(axis if axis >= 0 else axis + x.dim(), 0) for x, axis in zip(inputs, input_axes)]
    inputs = [x.flip(0) if reverse else x for x, reverse in zip(inputs, input_reverse)]
    steps = inputs[0].shape[0] if inputs else 0
    collected: List[List[torch.Tensor]] = [[] for _ in output_axes]
    for t in range(steps):
        outputs = body(*states, *[x[t] for x in inputs], *captured)
        states = list(outputs[:len(states)])
        for values, value in zip(collected, outputs[len(states):]):
            values.append(value)
    stacked = []
    for values, axis, reverse in zip(collected, output_axes, output_reverse):
        y = torch.stack(values)
        if reverse:
            y = y.flip(0)
        stacked.append(y.movedim(0, axis if axis >= 0 else axis + y.dim()))
    return tuple(list(states) + stacked)


def run_scan_batched(body: Callable, lengths: Optional[torch.Tensor], states: List[torch.Tensor],
                     inputs: List[torch.Tensor], captured: List[Any], input_reverse: List[bool]):
    """Scan at opset 8: a batch axis first on every state and input, the scan axis second."""
    batch = (states + inputs)[0].shape[0]
    results = []
    for b in range(batch):
        count = inputs[0].shape[1] if lengths is None else int(lengths[b])
        sliced = [x[b, :count] for x in inputs]
        results.append(_scan_one(body, [s[b] for s in states], sliced, captured, input_reverse))
    return tuple(torch.stack([r[i] for r in results]) for i in range(len(results[0])))


def _scan_one(body, states, inputs, captured, input_reverse):
    inputs = [x.flip(0) if reverse else x for x, reverse in zip(inputs, input_reverse)]
    collected: List[List[torch.Tensor]] = []
    for t in range(inputs[0].shape[0] if inputs else 0):
        outputs = body(*states, *[x[t] for x in inputs], *captured)
        states = list(outputs[:len(states)])
        scans = outputs[len(states):]
        if not collected:
            collected = [[] for _ in scans]
        for values, value in zip(collected, scans):
            values.append(value)
    return list(states) + [torch.stack(values) for values in collected]


@onnx_op("Scan", since=8)
def scan_v8(ctx: NodeContext, lengths, *values):
    body = ctx.attr("body")
    count = ctx.attr("num_scan_inputs")
    states, inputs = list(values[:len(values) - count]), list(values[len(values) - count:])
    module, captured = ctx.subgraph_module(body, "body")
    reverse = [bool(d) for d in (ctx.attr("directions") or [0] * count)]
    result = ctx.call(run_scan_batched, module, lengths, states, inputs, captured, reverse)
    return tuple(result[i] for i in range(len(ctx.node.output)))


@onnx_op("Scan", since=9)
def scan(ctx: NodeContext, *values):
    body = ctx.attr("body")
    count = ctx.attr("num_scan_inputs")
    states, inputs = list(values[:len(values) - count]), list(values[len(values) - count:])
    outputs = len(body.output) - len(states)
    module, captured = ctx.subgraph_module(body, "body")
    result = ctx.call(run_scan, module, states, inputs, captured, list(ctx.attr("scan_input_axes") or [0] * count),
                      [bool(d) for d in (ctx.attr("scan_input_directions") or [0] * count)],
                      list(ctx.attr("scan_output_axes") or [0] * outputs),
                      [bool(d) for d in (ctx.attr("scan_output_directions") or [0] * outputs)])
    return tuple(result[i] for i in range(len(ctx.node.output)))
