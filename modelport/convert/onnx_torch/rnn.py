"""ONNX's recurrent layers: RNN, GRU and LSTM. Where ONNX's semantics are torch's (constant weights,
default activations, no clip, peepholes or per-sequence lengths; GRU with linear_before_reset) they
become real ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` modules holding the ONNX weights in torch's gate
order; everything else (custom activations, clip, coupled gates, peepholes, lengths) runs a
step loop over the same weights."""
from __future__ import annotations

from typing import Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .graph import NodeContext, onnx_op

# op type -> (gates, default activations, states carried)
_CELLS = {"RNN": (1, ["Tanh"], 1), "GRU": (3, ["Sigmoid", "Tanh"], 1), "LSTM": (4, ["Sigmoid", "Tanh", "Tanh"], 2)}
# ONNX gate blocks in torch's order: LSTM i,o,f,c -> i,f,g(c),o; GRU z,r,h -> r,z,n.
_TORCH_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}


def _activation(name: str, alpha: Optional[float], beta: Optional[float]) -> Callable:
    a = alpha
    b = beta
    table = {
        "Relu": torch.relu, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid,
        "Affine": lambda x: (1.0 if a is None else a) * x + (0.0 if b is None else b),
        "LeakyRelu": lambda x: F.leaky_relu(x, 0.01 if a is None else a),
        "ThresholdedRelu": lambda x: torch.where(x > (1.0 if a is None else a), x, torch.zeros_like(x)),
        "ScaledTanh": lambda x: (1.0 if a is None else a) * torch.tanh((1.0 if b is None else b) * x),
        "HardSigmoid": lambda x: torch.clamp((0.2 if a is None else a) * x + (0.5 if b is None else b), 0.0, 1.0),
        "Elu": lambda x: torch.where(x > 0, x, (1.0 if a is None else a) * (torch.exp(x) - 1)),
        "Softsign": F.softsign, "Softplus": F.softplus,
    }
    return table[name]


def _cell(kind: str, acts: List[Callable], w, r, b, p, hidden: int, clip: Optional[float], couple: bool,
          before_reset: bool) -> Callable:
    """One direction's step: (states, x_t) -> new states (h first)."""
    def bounded(v):
        return torch.clamp(v, -clip, clip) if clip is not None else v
    wb, rb = (b[:b.shape[0] // 2], b[b.shape[0] // 2:]) if b is not None else (0.0, 0.0)

    def split(v, n):
        return [v[..., i * hidden:(i + 1) * hidden] for i in range(n)]

    if kind == "RNN":
        def cell(states, x):
            return (acts[0](bounded(x @ w.t() + states[0] @ r.t() + wb + rb)),)
    elif kind == "GRU":
        def cell(states, x):
            h = states[0]
            xz, xr, xh = split(x @ w.t() + wb, 3)
            rz, rr, rh = r[:hidden], r[hidden:2 * hidden], r[2 * hidden:]
            bz, br, bh = split(rb, 3) if b is not None else (0.0, 0.0, 0.0)
            z = acts[0](bounded(xz + h @ rz.t() + bz))
            reset = acts[0](bounded(xr + h @ rr.t() + br))
            if before_reset:
                candidate = acts[1](bounded(xh + reset * (h @ rh.t() + bh)))
            else:
                candidate = acts[1](bounded(xh + (reset * h) @ rh.t() + bh))
            return ((1 - z) * candidate + z * h,)
    else:
        pi, po, pf = split(p, 3) if p is not None else (0.0, 0.0, 0.0)

        def cell(states, x):
            h, c = states
            gi, go, gf, gc = split(x @ w.t() + h @ r.t() + wb + rb, 4)
            i = acts[0](bounded(gi + pi * c))
            f = 1 - i if couple else acts[0](bounded(gf + pf * c))
            c_new = f * c + i * acts[1](bounded(gc))
            o = acts[0](bounded(go + po * c_new))
            return (o * acts[2](c_new), c_new)
    return cell


def _reverse(x: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """Time-major ``x`` with each sequence's first ``length`` steps reversed."""
    if lengths is None:
        return x.flip(0)
    steps = x.shape[0]
    time = torch.arange(steps).reshape(-1, 1)
    lengths = lengths.to(torch.int64).reshape(1, -1)
    source = torch.where(time < lengths, lengths - 1 - time, time)
    index = source.reshape(source.shape + (1,) * (x.dim() - 2)).expand(x.shape)
    return torch.gather(x, 0, index)


def recurrent(x, w, r, b, lengths, h0, c0, p, kind: str, hidden: int, direction: str, layout: int,
              names: List[str], alphas: List[float], betas: List[float], clip: Optional[float], couple: bool,
              before_reset: bool):
    """ONNX RNN / GRU / LSTM, step by step: steps past a sequence's length keep its state and output zeros."""
    directions = 2 if direction == "bidirectional" else 1
    if layout == 1:  # [batch, seq, ...] -> time-major
        x = x.transpose(0, 1)
        h0 = h0.transpose(0, 1) if h0 is not None else None
        c0 = c0.transpose(0, 1) if c0 is not None else None
    steps, batch = x.shape[0], x.shape[1]
    zeros = torch.zeros(directions, batch, hidden, dtype=x.dtype)
    h0 = zeros if h0 is None else h0
    c0 = zeros if c0 is None else c0
    per = len(_CELLS[kind][1])
    acts = [_activation(n, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
            for i, n in enumerate(names)]
    valid = None if lengths is None else torch.arange(steps).reshape(-1, 1) < lengths.to(torch.int64).reshape(1, -1)
    ys, hs, cs = [], [], []
    for d in range(directions):
        cell = _cell(kind, acts[d * per:(d + 1) * per], w[d], r[d], b[d] if b is not None else None,
                     p[d] if p is not None else None, hidden, clip, couple, before_reset)
        states = (h0[d], c0[d])[:_CELLS[kind][2]]
        backwards = direction == "reverse" or d == 1
        inputs = _reverse(x, lengths) if backwards else x
        outs = []
        for t in range(steps):
            new = cell(states, inputs[t])
            if valid is not None:
                keep = valid[t].reshape(-1, 1)
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, states))
                outs.append(torch.where(keep, new[0], torch.zeros_like(new[0])))
            else:
                outs.append(new[0])
            states = new
        y = torch.stack(outs) if outs else torch.zeros(0, batch, hidden, dtype=x.dtype)
        ys.append(_reverse(y, lengths) if backwards else y)
        hs.append(states[0])
        if len(states) == 2:
            cs.append(states[1])
    y, y_h = torch.stack(ys, 1), torch.stack(hs)
    y_c = torch.stack(cs) if cs else None
    if layout == 1:
        y, y_h = y.permute(2, 0, 1, 3), y_h.transpose(0, 1)
        y_c = y_c.transpose(0, 1) if y_c is not None else None
    return y, y_h, y_c


def prepare_states(x: torch.Tensor, h0: Optional[torch.Tensor], c0: Optional[torch.Tensor], layout: int,
                   backwards: bool):
    """An nn.LSTM/GRU/RNN's input (time reversed for a reverse-only layer) and initial states in
    torch's layout ([directions, batch, hidden] whatever the ONNX layout)."""
    if backwards:
        x = x.flip(1 if layout == 1 else 0)
    if layout == 1:
        h0 = h0.transpose(0, 1).contiguous() if h0 is not None else None
        c0 = c0.transpose(0, 1).contiguous() if c0 is not None else None
    return x, h0, c0


def module_outputs(output: torch.Tensor, h_n: torch.Tensor, c_n: Optional[torch.Tensor], layout: int,
                   directions: int, backwards: bool):
    """An nn.LSTM/GRU/RNN's results in ONNX's shapes: Y [seq, dirs, batch, hidden] (layout 1:
    [batch, seq, dirs, hidden]), Y_h and Y_c [dirs, batch, hidden] (layout 1: [batch, dirs, hidden])."""
    if layout == 1:
        y = output.reshape(output.shape[0], output.shape[1], directions, -1)
    else:
        y = output.reshape(output.shape[0], output.shape[1], directions, -1).transpose(1, 2)
    if backwards:
        y = y.flip(1 if layout == 1 else 0)
    if layout == 1:
        h_n = h_n.transpose(0, 1)
        c_n = c_n.transpose(0, 1) if c_n is not None else None
    return y, h_n, c_n


def _as_module(ctx: NodeContext, kind: str, w, r, b, lengths, p, hidden: int, direction: str):
    """The torch module computing this node, or None when ONNX's semantics go beyond it."""
    names = list(ctx.attr("activations") or [])
    directions = 2 if direction == "bidirectional" else 1
    defaults = _CELLS[kind][1] * directions
    nonlinearity = "tanh"
    if kind == "RNN" and names and set(names) == {"Relu"}:
        nonlinearity, names = "relu", []
    if names and names != defaults:
        return None
    if ctx.attr("clip") is not None or ctx.attr("input_forget", 0) or lengths is not None:
        return None
    if kind == "GRU" and not ctx.attr("linear_before_reset", 0):
        return None  # torch's GRU applies the reset gate after the recurrent product (linear_before_reset=1)
    if not all(isinstance(v, torch.Tensor) for v in (w, r)) or (b is not None and not isinstance(b, torch.Tensor)):
        return None
    if p is not None and (not isinstance(p, torch.Tensor) or bool(p.any())):
        return None
    if not w.is_floating_point():
        return None
    size = w.shape[2]
    bidirectional = directions == 2
    layer = {"LSTM": nn.LSTM, "GRU": nn.GRU}.get(kind)
    module = layer(size, hidden, batch_first=ctx.attr("layout", 0) == 1, bidirectional=bidirectional,
                   dtype=w.dtype) if layer else \
        nn.RNN(size, hidden, nonlinearity=nonlinearity, batch_first=ctx.attr("layout", 0) == 1,
               bidirectional=bidirectional, dtype=w.dtype)
    order = _TORCH_ORDER[kind]

    def reorder(matrix):
        blocks = matrix.reshape(len(order), hidden, *matrix.shape[1:])
        return torch.cat([blocks[i] for i in order])
    with torch.no_grad():
        for d in range(directions):
            suffix = "_l0" + ("_reverse" if d == 1 else "")
            getattr(module, "weight_ih" + suffix).copy_(reorder(w[d]))
            getattr(module, "weight_hh" + suffix).copy_(reorder(r[d]))
            bias = b[d] if b is not None else torch.zeros(2 * len(order) * hidden, dtype=w.dtype)
            getattr(module, "bias_ih" + suffix).copy_(reorder(bias[:len(order) * hidden]))
            getattr(module, "bias_hh" + suffix).copy_(reorder(bias[len(order) * hidden:]))
    return module


@onnx_op("RNN", "GRU", "LSTM", since=7)
def recurrent_op(ctx: NodeContext, x, w, r, b=None, lengths=None, h0=None, c0=None, p=None):
    kind = ctx.node.op_type
    if kind != "LSTM":
        c0, p = None, None
    hidden = ctx.attr("hidden_size") or (r.shape[-1] if isinstance(r, torch.Tensor) else ctx.shape(2)[-1])
    direction = ctx.attr("direction", "forward")
    layout = ctx.attr("layout", 0)
    count = len(ctx.node.output)
    module = _as_module(ctx, kind, w, r, b, lengths, p, hidden, direction)
    if module is not None:
        backwards = direction == "reverse"
        prepared = ctx.call(prepare_states, x, h0, c0, layout, backwards)
        inputs, first_h, first_c = prepared[0], prepared[1], prepared[2]
        if kind == "LSTM":
            states = None if h0 is None and c0 is None else (
                first_h if h0 is not None else _zeros(ctx, x, hidden, layout),
                first_c if c0 is not None else _zeros(ctx, x, hidden, layout))
        else:
            states = first_h if h0 is not None else None
        result = ctx.module(module, inputs, states) if states is not None else ctx.module(module, inputs)
        output, final = result[0], result[1]
        h_n, c_n = (final[0], final[1]) if kind == "LSTM" else (final, None)
        outputs = ctx.call(module_outputs, output, h_n, c_n, layout, 2 if direction == "bidirectional" else 1,
                           backwards)
        return tuple(outputs[i] for i in range(count))
    directions = 2 if direction == "bidirectional" else 1
    names = list(ctx.attr("activations") or _CELLS[kind][1] * directions)
    outputs = ctx.call(recurrent, x, w, r, b, lengths, h0, c0, p, kind, hidden, direction, layout, names,
                       list(ctx.attr("activation_alpha") or []), list(ctx.attr("activation_beta") or []),
                       ctx.attr("clip"), bool(ctx.attr("input_forget", 0)), bool(ctx.attr("linear_before_reset", 0)))
    return tuple(outputs[i] for i in range(count))


def zeros_state(x: torch.Tensor, directions: int, hidden: int, layout: int) -> torch.Tensor:
    return torch.zeros(directions, x.shape[0 if layout == 1 else 1], hidden, dtype=x.dtype)


def _zeros(ctx: NodeContext, x, hidden: int, layout: int):
    """Zeros for the LSTM state not given (torch takes both or neither)."""
    directions = 2 if ctx.attr("direction", "forward") == "bidirectional" else 1
    return ctx.call(zeros_state, x, directions, hidden, layout)
