"""Build the MXNet test models with real MXNet 1.9.1 and record what MXNet computes on them.

Not run by the test suite: MXNet 1.9.1 needs numpy < 1.24, which cannot share a virtual
environment with modelport. Run it in a side venv (``make mxnet-fixtures`` makes one)::

    python tests/data/mxnet/make_fixtures.py tests/data/mxnet

Each model folder gets NAME-symbol.json + NAME-0000.params as MXNet writes them, and
``mxnet_io.npz`` with the inputs (``in:NAME``) and MXNet's outputs (``out:INDEX``) at batch 2.
The MTCNN folders (trained weights, see SOURCES.md) get their ``mxnet_io.npz`` only.
Random weights are drawn at He scale and every BatchNorm's moving statistics are set to its
batch statistics (one training step with momentum 0), so activations keep unit scale.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["MXNET_SUBGRAPH_BACKEND"] = "NONE"  # MXNet's plain operators, not oneDNN's fused subgraphs
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

S = mx.sym


def cnn():
    """Classifier: Conv/BatchNorm (both gamma modes)/ReLU/max and avg 'full' pooling/grouped conv/
    LeakyReLU/Flatten/FullyConnected/Dropout/SoftmaxOutput."""
    x = S.Variable("data")
    x = S.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=16, name="conv1")
    x = S.BatchNorm(x, fix_gamma=False, eps=1e-5, momentum=0.0, name="bn1")
    x = S.Activation(x, act_type="relu", name="relu1")
    x = S.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool1")
    x = S.Convolution(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=32, num_group=4, no_bias=True,
                      name="conv2")
    x = S.BatchNorm(x, momentum=0.0, name="bn2")  # fix_gamma=True, eps=1e-3: MXNet's defaults
    x = S.LeakyReLU(x, act_type="leaky", slope=0.1, name="leaky2")
    x = S.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg", pooling_convention="full",
                  name="pool2")
    x = S.Flatten(x, name="flatten")
    x = S.FullyConnected(x, num_hidden=64, name="fc1")
    x = S.Activation(x, act_type="tanh", name="tanh1")
    x = S.Dropout(x, p=0.3, name="drop1")
    x = S.FullyConnected(x, num_hidden=10, name="fc2")
    return S.SoftmaxOutput(x, name="softmax"), {"data": (2, 3, 32, 32)}


def unet():
    """Dense prediction: PReLU, dilated conv, Deconvolution, nearest and bilinear UpSampling, Concat,
    elementwise and broadcast arithmetic, global pooling, transpose/Reshape/slice, two outputs."""
    x = S.Variable("data")
    c1 = S.LeakyReLU(S.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=8, name="conv1"), act_type="prelu",
                     name="prelu1")
    p1 = S.Pooling(c1, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max", name="pool1")
    c2 = S.Convolution(p1, kernel=(3, 3), pad=(2, 2), dilate=(2, 2), num_filter=16, name="conv2")
    c2 = S.Activation(c2, act_type="softrelu", name="softplus2")
    d1 = S.Deconvolution(c2, kernel=(4, 4), stride=(2, 2), pad=(1, 1), num_filter=8, no_bias=False, name="deconv1")
    u1 = S.Convolution(S.UpSampling(c2, scale=2, sample_type="nearest", name="up_nearest"), kernel=(1, 1),
                       num_filter=8, name="conv_u1")
    u2 = S.UpSampling(c2, S.Variable("up_bilinear_weight"), scale=2, sample_type="bilinear", num_filter=16,
                      num_args=2, name="up_bilinear")
    u2 = S.Convolution(u2, kernel=(1, 1), num_filter=8, name="conv_u2")
    s = S.elemwise_add(d1, u1, name="add1")
    gate = S.Activation(S.Pooling(s, kernel=(1, 1), global_pool=True, pool_type="avg", name="gap"),
                        act_type="sigmoid", name="gate")
    m = S.broadcast_mul(s, gate, name="scale1")
    m = S.broadcast_sub(m, S.mean(m, axis=(2, 3), keepdims=True), name="center")
    cat = S.Concat(c1, m, u2, dim=1, name="concat1")
    seg = S.Convolution(cat, kernel=(1, 1), num_filter=4, name="head")
    seg = S.softmax(seg, axis=1, name="seg_prob")
    t = S.transpose(cat, axes=(0, 2, 3, 1), name="to_nhwc")           # N,16,16,24
    t = S.Reshape(t, shape=(0, -3, -2), name="rows")                   # N,256,24
    t = S.slice_axis(t, axis=1, begin=8, end=72, name="window")         # N,64,24
    t = S.slice(t, begin=(None, None, 2), end=(None, None, 22), step=(None, 2, 1), name="strided")  # N,32,20
    t = S.FullyConnected(t, num_hidden=6, flatten=False, name="fc_tokens")  # N,32,6
    t = S.Reshape(t, shape=(0, -4, 4, -1, 0), name="split")             # N,4,8,6
    t = S.LeakyReLU(t, act_type="elu", slope=0.7, name="elu")
    t = 1.0 - (t * 0.5 + 1.0) / 2.0  # _mul_scalar, _plus_scalar, _div_scalar, _rminus_scalar
    t = S.elemwise_mul(t, S.Activation(t, act_type="softsign"), name="gated")
    return S.Group([seg, t]), {"data": (2, 3, 16, 16)}


def ops():
    """One head per operator and variant not in the two networks above, on two inputs."""
    x, y = S.Variable("x"), S.Variable("y")                        # both 2,4,6,6
    positive = S.abs(y) + 0.5
    heads = [
        S.log_softmax(x, axis=1), S.softmax(x, axis=-1, temperature=2.0),
        S.BlockGrad(x) + S.identity(y), S.expand_dims(S.sum(x, axis=1), axis=1),
        S.elemwise_sub(x, y), S.elemwise_div(x, positive), S.broadcast_add(x, S.mean(y, axis=1, keepdims=True)),
        S.broadcast_div(x, S.max(positive, axis=(2, 3), keepdims=True)),
        S.broadcast_maximum(x, S.min(y, axis=1, keepdims=True)), S.broadcast_minimum(x, S.slice_axis(y, axis=1, begin=0, end=1)),
        S.broadcast_power(positive, S.slice_axis(x, axis=2, begin=1, end=2)),
        S._internal._maximum(x, y), S._internal._minimum(x, y), S._internal._power(positive, x),
        x - 0.5, 2.0 / positive, S.maximum(x, 0.2), S.minimum(x, -0.1), x ** 2.0, 1.5 ** x,
        S.ElementWiseSum(x, y, S.square(x), num_args=3),
        S.relu(x), S.sigmoid(x), S.tanh(x), S.exp(x), S.log(positive), S.sqrt(positive), S.abs(x), S.negative(x),
        S.floor(x * 3.0), S.ceil(x * 3.0), S.erf(x), S.softsign(x), S.reciprocal(positive), S.sin(x), S.cos(x),
        S.clip(x, a_min=-0.5, a_max=0.7), S.sum(x, axis=(1, 3)), S.max(x, axis=2, exclude=True),
        S.min(x, axis=-1, keepdims=True), S.prod(S.tanh(x), axis=1),
        S.LeakyReLU(x, act_type="selu"), S.LeakyReLU(x, act_type="gelu"), S.LeakyReLU(x, act_type="rrelu")[0],
        S.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="sum", pooling_convention="full"),
        S.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg", count_include_pad=False),
        S.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="max"),
        S.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="sum"),
        S.SoftmaxOutput(x, multi_output=True, name="multi"), S.SoftmaxOutput(x, preserve_shape=True, name="keep"),
        S.BatchNorm(S.transpose(x, axes=(0, 2, 3, 1)), axis=-1, fix_gamma=False, use_global_stats=True,
                    momentum=0.0, name="bn_last"),
        S.Deconvolution(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 1), num_filter=6, num_group=2,
                        name="deconv_groups"),
        S.FullyConnected(x, num_hidden=5, no_bias=True, name="fc_nobias"),
        S.Reshape(x, shape=(-1, 0), reverse=True), S.Reshape(x, shape=(0, -2)),
        S.slice(x, begin=(None, 3, None, 5), end=(None, 0, None, 1), step=(1, -1, 1, -2)),
        S.Convolution(S.Reshape(x, shape=(0, 0, -3)), kernel=(3,), stride=(2,), pad=(1,), num_filter=3,
                      name="conv1d"),
    ]
    parts = S.SliceChannel(x, num_outputs=2, axis=1, name="halves")
    squeezed = S.SliceChannel(x, num_outputs=4, axis=1, squeeze_axis=True, name="channels")
    heads += [parts[0] * 2.0, parts[1], squeezed[3]]
    return S.Group(heads), {"x": (2, 4, 6, 6), "y": (2, 4, 6, 6)}


MODELS = {"mx_cnn": cnn, "mx_unet": unet, "mx_ops": ops}


def _executor(symbol, shapes, grad_req="null"):
    return symbol.simple_bind(mx.cpu(), grad_req=grad_req, **shapes)


def build(name: str, folder: Path, rng: np.random.Generator) -> None:
    symbol, shapes = MODELS[name]()
    executor = _executor(symbol, shapes, grad_req="write")
    inputs = set(shapes) | {n for n in symbol.list_arguments() if n.endswith("_label")}
    for arg, array in executor.arg_dict.items():
        if arg in inputs:
            continue
        shape = array.shape
        if arg.endswith("_gamma") and len(shape) == 1:
            value = rng.uniform(0.6, 1.4, shape) if "prelu" not in arg else rng.uniform(0.05, 0.4, shape)
        elif arg.endswith("_beta") or arg.endswith("_bias"):
            value = rng.uniform(-0.2, 0.2, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        array[:] = value.astype(np.float32)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    for n, value in feeds.items():
        executor.arg_dict[n][:] = value
    if name == "mx_ops":  # random moving statistics (a training-mode forward would draw rrelu's slopes)
        for arg, array in executor.aux_dict.items():
            array[:] = rng.uniform(-0.2, 0.2, array.shape) if "mean" in arg else rng.uniform(0.5, 1.5, array.shape)
    else:  # MXNet updates the moving statistics in the backward pass; momentum 0: to this batch's
        executor.forward(is_train=True)
        executor.backward([mx.nd.ones_like(out) for out in executor.outputs])
    mx.nd.waitall()
    folder.mkdir(parents=True, exist_ok=True)
    symbol.save(str(folder / f"{name}-symbol.json"))
    params = {f"arg:{n}": a for n, a in executor.arg_dict.items() if n not in inputs}
    params.update({f"aux:{n}": a for n, a in executor.aux_dict.items()})
    mx.nd.save(str(folder / f"{name}-0000.params"), params)
    record(folder, name, feeds)


def record(folder: Path, prefix: str, feeds: dict[str, np.ndarray]) -> None:
    """Load the saved pair the way users do and keep MXNet's inference outputs."""
    symbol, args, aux = mx.model.load_checkpoint(str(folder / prefix), int(_epoch(folder, prefix)))
    executor = _executor(symbol, {n: v.shape for n, v in feeds.items()})
    executor.copy_params_from(args, aux, allow_extra_params=True)
    outputs = executor.forward(is_train=False, **{n: mx.nd.array(v) for n, v in feeds.items()})
    saved = {f"in:{n}": v for n, v in feeds.items()}
    saved.update({f"out:{i}": o.asnumpy() for i, o in enumerate(outputs)})
    saved["output_names"] = np.array(symbol.list_outputs())
    np.savez_compressed(folder / "mxnet_io.npz", **saved)
    print(prefix, {k: v.shape for k, v in saved.items()}, "mxnet", mx.__version__)


def _epoch(folder: Path, prefix: str) -> str:
    return next(folder.glob(f"{prefix}-*.params")).stem.rsplit("-", 1)[1]


def main(root: Path) -> None:
    rng = np.random.default_rng(20261202)
    for name in MODELS:
        build(name, root / name, rng)
    # MTCNN's trained nets: inputs as the MTCNN pipeline feeds them ((pixel - 127.5) / 128).
    pixels = lambda *shape: ((rng.integers(0, 256, shape) - 127.5) * 0.0078125).astype(np.float32)  # noqa: E731
    record(root / "mtcnn_det1", "det1", {"data": pixels(2, 3, 24, 30)})
    record(root / "mtcnn_det2", "det2", {"data": pixels(2, 3, 24, 24)})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
