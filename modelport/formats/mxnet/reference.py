"""Running an MXNet symbol without MXNet: each operator written in PyTorch from MXNet 1.x's
definition, node by node.

MXNet 1.9.1, its last release, needs numpy < 1.24 and cannot live beside modelport; this
interpreter is what runs MXNet models here (the parity reference of MXNet conversions). It shares
no code with the ONNX converter (convert/mxnet/), and the test suite holds it to real MXNet's
outputs, recorded by tests/data/mxnet/make_fixtures.py.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ...errors import UnsupportedOpError
from .parser import LOSS_OPS, Attrs, MXNetNet, Node

Kernel = Callable[..., object]
KERNELS: dict[str, Kernel] = {}


def kernel(*names: str):
    def register(fn):
        for name in names:
            KERNELS[name] = fn
        return fn
    return register


def _torch():
    import torch
    return torch


def _F():
    import torch.nn.functional as F
    return F


def _geometry(a: Attrs, key: str, rank: int, default: int) -> list[int]:
    values = list(a.ints(key))
    return [default] * rank if not values else (values * rank if len(values) == 1 else values)


def _conv_fn(rank: int, transposed: bool = False):
    F = _F()
    return {(1, False): F.conv1d, (2, False): F.conv2d, (3, False): F.conv3d,
            (1, True): F.conv_transpose1d, (2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d}[(rank, transposed)]


@kernel("Convolution")
def convolution(a: Attrs, x, weight, bias=None):
    rank = len(a.ints("kernel"))
    pad = _geometry(a, "pad", rank, 0)
    return _conv_fn(rank)(x, weight, None if a.bool("no_bias") else bias, stride=_geometry(a, "stride", rank, 1),
                          padding=pad, dilation=_geometry(a, "dilate", rank, 1), groups=a.int("num_group", 1))


@kernel("Deconvolution")
def deconvolution(a: Attrs, x, weight, bias=None):
    rank = len(a.ints("kernel"))
    return _conv_fn(rank, True)(x, weight, None if a.bool("no_bias", True) else bias,
                                stride=_geometry(a, "stride", rank, 1), padding=_geometry(a, "pad", rank, 0),
                                output_padding=_geometry(a, "adj", rank, 0), groups=a.int("num_group", 1),
                                dilation=_geometry(a, "dilate", rank, 1))


@kernel("FullyConnected")
def fully_connected(a: Attrs, x, weight, bias=None):
    if a.bool("flatten", True):
        x = x.reshape(x.shape[0], -1)
    return _F().linear(x, weight, None if a.bool("no_bias") else bias)


@kernel("BatchNorm")
def batch_norm(a: Attrs, x, gamma, beta, mean, var):
    axis = a.int("axis", 1) % x.dim()
    shape = [1] * x.dim()
    shape[axis] = x.shape[axis]
    if a.bool("fix_gamma", True):
        gamma = _torch().ones_like(gamma)
    scale = gamma / _torch().sqrt(var + a.float("eps", 1e-3))
    return (x - mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)


@kernel("Activation")
def activation(a: Attrs, x):
    torch, F = _torch(), _F()
    kind = a.text("act_type")
    functions = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softrelu": F.softplus,
                 "softsign": F.softsign}
    if kind not in functions:
        raise UnsupportedOpError("Activation", where=f"act_type {kind!r}", framework="MXNet", cannot="be run")
    return functions[kind](x)


@kernel("LeakyReLU")
def leaky_relu(a: Attrs, x, gamma=None):
    torch, F = _torch(), _F()
    kind = a.text("act_type", "leaky")
    slope = a.float("slope", 0.25)
    if kind == "leaky":
        return torch.where(x > 0, x, x * slope)
    if kind == "rrelu":
        mean = (a.float("lower_bound", 0.125) + a.float("upper_bound", 0.334)) / 2
        return torch.where(x > 0, x, x * mean)
    if kind == "prelu":
        shape = [1] * x.dim()
        if gamma.numel() > 1:
            shape[1] = -1
        return torch.where(x > 0, x, x * gamma.reshape(shape))
    if kind == "elu":
        return torch.where(x > 0, x, slope * torch.expm1(x))
    if kind == "selu":
        return F.selu(x)
    if kind == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))
    raise UnsupportedOpError("LeakyReLU", where=f"act_type {kind!r}", framework="MXNet", cannot="be run")


@kernel("Pooling")
def pooling(a: Attrs, x):
    """Window by window as MXNet's pool kernels do: the window starts at o*s - p, ends at
    min(start + k, size + p) (that span is an average's divisor when padding counts), and reads
    the data inside [0, size)."""
    torch = _torch()
    kind = a.text("pool_type", "max")
    spatial = list(x.shape[2:])
    rank = len(spatial)
    if a.bool("global_pool"):
        dims = tuple(range(2, 2 + rank))
        if kind == "max":
            return x.amax(dim=dims, keepdim=True)
        return x.mean(dim=dims, keepdim=True) if kind == "avg" else x.sum(dim=dims, keepdim=True)
    kernel_ = list(a.ints("kernel"))
    stride, pad = _geometry(a, "stride", rank, 1), _geometry(a, "pad", rank, 0)
    full = a.text("pooling_convention", "valid") == "full"
    include_pad = a.bool("count_include_pad", True)
    outs = []
    for size, k, s, p in zip(spatial, kernel_, stride, pad):
        span = size + 2 * p - k
        outs.append((-(-span // s) if full else span // s) + 1)
    result = torch.empty((*x.shape[:2], *outs), dtype=x.dtype)
    for position in np.ndindex(*outs):
        window, divisor = [], 1
        for o, size, k, s, p in zip(position, spatial, kernel_, stride, pad):
            start = o * s - p
            end = min(start + k, size + p)
            divisor *= end - start
            window.append(slice(max(start, 0), min(end, size)))
        values = x[(slice(None), slice(None), *window)]
        dims = tuple(range(2, 2 + rank))
        if kind == "max":
            value = values.amax(dim=dims)
        elif kind == "sum":
            value = values.sum(dim=dims)
        elif kind == "avg":
            count = divisor if include_pad else int(np.prod(values.shape[2:]))
            value = values.sum(dim=dims) / count
        else:
            raise UnsupportedOpError("Pooling", where=f"pool_type {kind!r}", framework="MXNet", cannot="be run")
        result[(slice(None), slice(None), *position)] = value
    return result


def _softmax_sample(x, log=False):
    F = _F()
    flat = x.reshape(x.shape[0], -1)
    return (F.log_softmax if log else F.softmax)(flat, dim=1).reshape(x.shape)


@kernel("SoftmaxOutput")
def softmax_output(a: Attrs, x, label=None):
    if a.bool("multi_output"):
        return _F().softmax(x, dim=1)
    if a.bool("preserve_shape"):
        return _F().softmax(x, dim=-1)
    return _softmax_sample(x)


@kernel("SoftmaxActivation")
def softmax_activation(a: Attrs, x):
    return _F().softmax(x, dim=1) if a.text("mode", "instance") == "channel" else _softmax_sample(x)


@kernel("softmax", "log_softmax")
def softmax(a: Attrs, x, *, op: str = "softmax"):
    temperature = a.float("temperature")
    if temperature is not None:
        x = x / temperature
    return (_F().log_softmax if op == "log_softmax" else _F().softmax)(x, dim=a.int("axis", -1))


@kernel("Dropout", "BlockGrad", "_copy")
def passthrough(a: Attrs, x):
    return x


@kernel("Flatten")
def flatten(a: Attrs, x):
    return x.reshape(x.shape[0], -1)


def _mxnet_reshape(shape, spec, reverse):
    """MXNet's Reshape rules, read again from its documentation (independently of the converter)."""
    shape, spec = (list(shape[::-1]), list(spec[::-1])) if reverse else (list(shape), list(spec))
    out, src, j = [], 0, 0
    while j < len(spec):
        code = spec[j]
        if code == 0:
            out.append(shape[src]); src += 1  # noqa: E702
        elif code == -1:
            out.append(-1); src += 1  # noqa: E702
        elif code == -2:
            out += shape[src:]; src = len(shape)  # noqa: E702
        elif code == -3:
            out.append(shape[src] * shape[src + 1]); src += 2  # noqa: E702
        elif code == -4:
            first, second = (spec[j + 2], spec[j + 1]) if reverse else (spec[j + 1], spec[j + 2])
            first = shape[src] // second if first == -1 else first
            second = shape[src] // first if second == -1 else second
            out += [second, first] if reverse else [first, second]
            src += 1
            j += 2
        else:
            out.append(code); src += 1  # noqa: E702
        j += 1
    return out[::-1] if reverse else out


@kernel("Reshape")
def reshape(a: Attrs, x):
    spec = a.ints("shape") or a.ints("target_shape")
    return x.reshape(_mxnet_reshape(list(x.shape), spec, a.bool("reverse")))


@kernel("transpose")
def transpose(a: Attrs, x):
    return x.permute(*(a.ints("axes") or tuple(range(x.dim()))[::-1]))


@kernel("expand_dims")
def expand_dims(a: Attrs, x):
    return x.unsqueeze(a.int("axis"))


@kernel("slice")
def slice_(a: Attrs, x):
    torch = _torch()
    begin, end = a.tuple("begin"), a.tuple("end")
    step = a.tuple("step") or (None,) * len(begin)
    for axis, (b, e, s) in enumerate(zip(begin, end, step)):
        s = 1 if s is None else int(s)
        size = x.shape[axis]
        indices = list(range(size))[slice(b, e, s)]
        x = torch.index_select(x, axis, torch.tensor(indices, dtype=torch.long))
    return x


@kernel("slice_axis")
def slice_axis(a: Attrs, x):
    axis = a.int("axis") % x.dim()
    begin, end = a.int("begin", 0), a.int("end")
    size = x.shape[axis]
    begin = begin + size if begin < 0 else begin
    end = size if end is None else (end + size if end < 0 else end)
    return x.narrow(axis, begin, end - begin)


@kernel("Concat")
def concat(a: Attrs, *xs):
    return _torch().cat(xs, dim=a.int("dim", 1))


@kernel("SliceChannel")
def split(a: Attrs, x):
    axis = a.int("axis", 1) % x.dim()
    pieces = _torch().chunk(x, a.int("num_outputs", 1), dim=axis)
    return tuple(p.squeeze(axis) for p in pieces) if a.bool("squeeze_axis") else tuple(pieces)


@kernel("UpSampling")
def upsampling(a: Attrs, x, weight=None):
    scale = a.int("scale")
    kind = a.text("sample_type", "nearest")
    if kind == "nearest":
        return x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    channels = a.int("num_filter", x.shape[1])  # the kernel (2s - s%2 wide) is the weight's
    return _F().conv_transpose2d(x, weight, stride=scale, padding=int(math.ceil((scale - 1) / 2)), groups=channels)


def _binary(fn_name):
    def run(a: Attrs, x, y):
        return getattr(_torch(), fn_name)(x, y)
    return run


for _names, _fn in ((("elemwise_add", "broadcast_add"), "add"), (("elemwise_sub", "broadcast_sub"), "sub"),
                    (("elemwise_mul", "broadcast_mul"), "mul"), (("elemwise_div", "broadcast_div"), "div"),
                    (("_maximum", "broadcast_maximum"), "maximum"), (("_minimum", "broadcast_minimum"), "minimum"),
                    (("_power", "broadcast_power"), "pow")):
    kernel(*_names)(_binary(_fn))

_SCALAR = {"_plus_scalar": lambda x, s: x + s, "_minus_scalar": lambda x, s: x - s,
           "_rminus_scalar": lambda x, s: s - x, "_mul_scalar": lambda x, s: x * s,
           "_div_scalar": lambda x, s: x / s, "_rdiv_scalar": lambda x, s: s / x,
           "_maximum_scalar": lambda x, s: x.clamp(min=s), "_minimum_scalar": lambda x, s: x.clamp(max=s),
           "_power_scalar": lambda x, s: x ** s, "_rpower_scalar": lambda x, s: s ** x}

def _scalar(fn):
    def run(a: Attrs, x):
        return fn(x, a.float("scalar", 0.0))
    return run


for _name, _fn in _SCALAR.items():
    kernel(_name)(_scalar(_fn))


@kernel("ElementWiseSum")
def elementwise_sum(a: Attrs, *xs):
    return sum(xs[1:], xs[0])


_UNARY = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp", "log": "log", "sqrt": "sqrt",
          "abs": "abs", "negative": "neg", "floor": "floor", "ceil": "ceil", "erf": "erf", "reciprocal": "reciprocal",
          "sin": "sin", "cos": "cos", "square": "square"}
for _name, _fn in _UNARY.items():
    kernel(_name)(lambda a, x, _fn=_fn: getattr(_torch(), _fn)(x))
kernel("softsign")(lambda a, x: x / (1 + x.abs()))


@kernel("clip")
def clip(a: Attrs, x):
    return x.clamp(a.float("a_min"), a.float("a_max"))


def _reduction(name):
    def run(a: Attrs, x):
        axes = [d % x.dim() for d in a.ints("axis")] or list(range(x.dim()))
        if a.bool("exclude"):
            axes = [d for d in range(x.dim()) if d not in axes]
        keep = a.bool("keepdims")
        torch = _torch()
        if name in ("max", "min"):
            return (torch.amax if name == "max" else torch.amin)(x, dim=axes, keepdim=keep)
        if name == "prod":
            for d in sorted(axes, reverse=True):
                x = x.prod(dim=d, keepdim=keep)
            return x
        return getattr(torch, name)(x, dim=axes, keepdim=keep)
    return run


for _name in ("mean", "sum", "max", "min", "prod"):
    kernel(_name)(_reduction(_name))


def run_net(net: MXNetNet, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every needed node in order; returns the heads by their MXNet output names."""
    torch = _torch()
    values: dict[tuple[int, int], object] = {}
    with torch.inference_mode():
        for node in net.nodes:
            if node.is_variable:
                if node.name in net.params:
                    values[(node.index, 0)] = torch.from_numpy(np.ascontiguousarray(net.params[node.name]))
                elif node.name in feeds:
                    values[(node.index, 0)] = torch.from_numpy(np.ascontiguousarray(feeds[node.name]))
                continue
            inputs = [values.get(source) for source in node.inputs]
            if node.op in LOSS_OPS:
                inputs = inputs[:1]  # the label is not fed at inference
            if any(v is None for v in inputs):
                continue  # a branch that only feeds something not computed (a loss's label)
            result = _run_node(node, inputs)
            for index, value in enumerate(result if isinstance(result, tuple) else (result,)):
                values[(node.index, index)] = value
    return {name: values[head].numpy().copy() for head, name in zip(net.heads, net.output_names)}


def _run_node(node: Node, inputs: list):
    fn = KERNELS.get(node.op)
    if fn is None:
        raise UnsupportedOpError(node.op, supported=KERNELS, where=f"node {node.name!r}", framework="MXNet",
                                 cannot="be run by modelport's MXNet interpreter",
                                 hint="this operator cannot be checked here; convert with --no-check")
    if node.op in ("softmax", "log_softmax"):
        return fn(node.attrs, *inputs, op=node.op)
    return fn(node.attrs, *inputs)
