"""ONNX's recurrent layers: RNN, GRU and LSTM (forward, reverse, bidirectional; per-sequence
lengths; initial states; custom activations; clip; peepholes; both layouts): unrolled over a
known sequence length (TFLite builtins only), a ``tf.scan`` over a dynamic one."""
from __future__ import annotations

from .graph import NodeContext, onnx_op


def _tf():
    import tensorflow as tf
    return tf


def _activation(tf, name, alpha, beta):
    table = {
        "Relu": lambda x: tf.nn.relu(x), "Tanh": tf.tanh, "Sigmoid": tf.sigmoid,
        "Affine": lambda x: (1.0 if alpha is None else alpha) * x + (0.0 if beta is None else beta),
        "LeakyRelu": lambda x: tf.nn.leaky_relu(x, 0.01 if alpha is None else alpha),
        "ThresholdedRelu": lambda x: tf.where(x > (1.0 if alpha is None else alpha), x, tf.zeros_like(x)),
        "ScaledTanh": lambda x: (1.0 if alpha is None else alpha) * tf.tanh((1.0 if beta is None else beta) * x),
        "HardSigmoid": lambda x: tf.clip_by_value((0.2 if alpha is None else alpha) * x
                                                  + (0.5 if beta is None else beta), 0.0, 1.0),
        "Elu": lambda x: tf.where(x > 0, x, (1.0 if alpha is None else alpha) * (tf.exp(x) - 1)),
        "Softsign": tf.nn.softsign, "Softplus": tf.nn.softplus,
    }
    if name not in table:
        from ...errors import UnsupportedOpError
        raise UnsupportedOpError(f"recurrent activation {name!r}", supported=table)
    return table[name]


# op type -> (gates, default activations, states carried: h, or h and c)
_CELLS = {"RNN": (1, ["Tanh"], 1), "GRU": (3, ["Sigmoid", "Tanh"], 1), "LSTM": (4, ["Sigmoid", "Tanh", "Tanh"], 2)}


def _activations(tf, ctx: NodeContext, directions: int):
    gates, defaults, _ = _CELLS[ctx.node.op_type]
    names = list(ctx.attr("activations") or defaults * directions)
    alphas = list(ctx.attr("activation_alpha") or [])
    betas = list(ctx.attr("activation_beta") or [])
    made = [_activation(tf, n, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
            for i, n in enumerate(names)]
    per = len(defaults)
    return [made[d * per:(d + 1) * per] for d in range(directions)]


def _step(op_type: str, ctx: NodeContext, acts, w, r, b, p, hidden: int):
    """The cell for one direction: (states, x_t) -> new states (h first)."""
    tf = _tf()
    clip = ctx.attr("clip")
    bounded = (lambda v: tf.clip_by_value(v, -clip, clip)) if clip is not None else (lambda v: v)
    wb, rb = (b[:b.shape[0] // 2], b[b.shape[0] // 2:]) if b is not None else (0.0, 0.0)

    def split(v, n):
        return [v[..., i * hidden:(i + 1) * hidden] for i in range(n)]

    if op_type == "RNN":
        def cell(states, x):
            return (acts[0](bounded(tf.matmul(x, w, transpose_b=True) + tf.matmul(states[0], r, transpose_b=True)
                                    + wb + rb)),)
    elif op_type == "GRU":
        before_reset = ctx.attr("linear_before_reset", 0)

        def cell(states, x):
            h = states[0]
            xz, xr, xh = split(tf.matmul(x, w, transpose_b=True) + wb, 3)
            wz_r, wr_r, wh_r = r[:hidden], r[hidden:2 * hidden], r[2 * hidden:]
            rbz, rbr, rbh = split(rb, 3) if b is not None else (0.0, 0.0, 0.0)
            z = acts[0](bounded(xz + tf.matmul(h, wz_r, transpose_b=True) + rbz))
            reset = acts[0](bounded(xr + tf.matmul(h, wr_r, transpose_b=True) + rbr))
            if before_reset:
                candidate = acts[1](bounded(xh + reset * (tf.matmul(h, wh_r, transpose_b=True) + rbh)))
            else:
                candidate = acts[1](bounded(xh + tf.matmul(reset * h, wh_r, transpose_b=True) + rbh))
            return ((1 - z) * candidate + z * h,)
    else:
        couple = ctx.attr("input_forget", 0)
        pi, po, pf = split(p, 3) if p is not None else (0.0, 0.0, 0.0)

        def cell(states, x):
            h, c = states
            gi, go, gf, gc = split(tf.matmul(x, w, transpose_b=True) + tf.matmul(h, r, transpose_b=True) + wb + rb, 4)
            i = acts[0](bounded(gi + pi * c))
            f = 1 - i if couple else acts[0](bounded(gf + pf * c))
            c_new = f * c + i * acts[1](bounded(gc))
            o = acts[0](bounded(go + po * c_new))
            return (o * acts[2](c_new), c_new)
    return cell


def _run_direction(tf, cell, x, initial, lengths, reverse: bool):
    """Scan ``cell`` over time-major ``x``; steps past a sequence's length keep its state and output zeros."""
    steps = tf.shape(x)[0]
    if reverse:
        x = tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1) if lengths is not None else tf.reverse(x, [0])
    valid = None
    if lengths is not None:
        valid = tf.range(steps)[:, None] < tf.cast(lengths, tf.int32)[None, :]  # [steps, batch]

    def body(carry, inputs):
        states = carry[1:]
        x_t, ok = inputs
        new = cell(states, x_t)
        if valid is not None:
            keep = ok[:, None]
            new = tuple(tf.where(keep, n, s) for n, s in zip(new, states))
            out = tf.where(keep, new[0], tf.zeros_like(new[0]))
        else:
            out = new[0]
        return (out, *new)

    mask = valid if valid is not None else tf.ones(tf.stack([steps, tf.shape(x)[1]]), tf.bool)
    carry = (tf.zeros_like(initial[0]), *initial)
    if x.shape[0] is not None:  # a known length is unrolled: plain ops that TFLite takes as builtins
        outs = []
        for t in range(x.shape[0]):
            carry = body(carry, (x[t], mask[t]))
            outs.append(carry[0])
        ys, finals = tf.stack(outs), list(carry[1:])
    else:  # a dynamic length is scanned (TFLite then needs its TensorList ops)
        outputs = tf.scan(body, (x, mask), initializer=carry)
        ys, finals = outputs[0], [s[-1] for s in outputs[1:]]
    if reverse:
        ys = tf.reverse_sequence(ys, lengths, seq_axis=0, batch_axis=1) if lengths is not None else tf.reverse(ys, [0])
    return ys, finals


def _recurrent(ctx: NodeContext):
    tf = _tf()
    op_type = ctx.node.op_type
    gates, _, carried = _CELLS[op_type]
    x, w, r = ctx.inputs[:3]
    b, lengths, h0 = ctx.input(3), ctx.input(4), ctx.input(5)
    c0 = ctx.input(6) if op_type == "LSTM" else None
    peep = ctx.input(7) if op_type == "LSTM" else None
    hidden = ctx.attr("hidden_size") or r.shape[-1]
    direction = ctx.attr("direction", "forward")
    directions = 2 if direction == "bidirectional" else 1
    batch_major = ctx.attr("layout", 0) == 1
    if batch_major:  # [batch, seq, ...] -> time-major
        x = tf.transpose(x, [1, 0, 2])
        h0 = tf.transpose(h0, [1, 0, 2]) if h0 is not None else None
        c0 = tf.transpose(c0, [1, 0, 2]) if c0 is not None else None
    batch = tf.shape(x)[1]
    zeros = tf.zeros(tf.stack([directions, batch, hidden]), x.dtype)
    h0 = zeros if h0 is None else h0
    c0 = zeros if c0 is None else c0
    acts = _activations(tf, ctx, directions)
    ys, hs, cs = [], [], []
    for d in range(directions):
        cell = _step(op_type, ctx, acts[d], w[d], r[d], b[d] if b is not None else None,
                     peep[d] if peep is not None else None, hidden)
        initial = (h0[d], c0[d])[:carried]
        reverse = direction == "reverse" or d == 1
        y, finals = _run_direction(tf, cell, x, initial, lengths, reverse)
        ys.append(y)
        hs.append(finals[0])
        if carried == 2:
            cs.append(finals[1])
    y = tf.stack(ys, axis=1)  # [seq, directions, batch, hidden]
    y_h, y_c = tf.stack(hs), tf.stack(cs) if cs else None
    if batch_major:
        y = tf.transpose(y, [2, 0, 1, 3])
        y_h = tf.transpose(y_h, [1, 0, 2])
        y_c = tf.transpose(y_c, [1, 0, 2]) if y_c is not None else None
    return [y, y_h, y_c][:len(ctx.node.output)]


@onnx_op("RNN", "GRU", "LSTM", since=7)
def convert_recurrent(ctx: NodeContext):
    """ONNX RNN / GRU / LSTM."""
    return _recurrent(ctx)
