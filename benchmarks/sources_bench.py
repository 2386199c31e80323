"""More sources to ONNX: conversion time and error for MXNet, Lightning and JAX/Flax, and the JAX
routes side by side (modelport's jaxpr converter, jax2onnx, jax2tf -> tf2onnx).

    .venv/bin/python benchmarks/sources_bench.py [--repeat 50]

Errors are max absolute differences against each source's independent reference: real MXNet 1.9.1
(outputs recorded in tests/data/mxnet/*/mxnet_io.npz), Lightning's own load_from_checkpoint in
PyTorch, and JAX (XLA on CPU). Latency: ONNX Runtime on the converted model against the source
framework in-process, median of --repeat runs at the batch shown.

jax2onnx goes into its own venv, ``benchmarks/.venvs/jax2onnx`` (never into modelport's), seeing
modelport's jax/flax/onnx through a .pth file so both run the same JAX; jax2tf and tf2onnx are
modelport's own dependencies (TensorFlow edges).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.peer_venv import ensure_peer_venv  # noqa: E402
from benchmarks.timing import median_ms  # noqa: E402

PEER_VENV = REPO / "benchmarks" / ".venvs" / "jax2onnx"
PEER = ["jax2onnx==0.17.1", "dm-pix==0.4.5", "einops==0.8.2", "equinox==0.13.8", "jaxtyping==0.3.11",
        "wadler-lindig==0.1.8", "netron==9.3.3", "orbax-export==0.0.8", "dataclasses-json==0.6.7",
        "marshmallow==3.26.2", "typing-inspect==0.9.0", "mypy-extensions==1.2.0"]
JAX_MODELS = {"mlp": ("x", (1, 8)), "cnn": ("image", (1, 16, 16, 3)), "block": ("tokens", (1, 7, 32))}
PEER_SCRIPT = '''
import json, sys, time, traceback
sys.path.insert(0, sys.argv[1])
import jax2onnx
from tests import zoo_jax
name, input_name, shape, out = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
built = getattr(zoo_jax, name)()
if isinstance(built, tuple):
    module, variables = built
    fn = lambda x: module.apply(variables, x)
else:
    if hasattr(built, "eval"):
        built.eval()
    fn = built
try:
    for _ in range(2):  # the second conversion is timed: the first also loads jax2onnx's plugins
        start = time.perf_counter()
        model = jax2onnx.to_onnx(fn, [["B", *shape[1:]]], model_name=name, opset=21)
    open(out, "wb").write(model.SerializeToString())
    print(json.dumps({"seconds": time.perf_counter() - start}))
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}))
'''


def ensure_peer() -> Path:
    return ensure_peer_venv(PEER_VENV, PEER)


def ort_run(path, feeds):
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.run(None, feeds)


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def mxnet_rows(work: Path, repeat: int):
    import modelport
    from modelport.formats.input_specs import parse_input_specs
    from modelport.formats.mxnet import MXNetSession
    rows = []
    warm = REPO / "tests" / "data" / "mxnet" / "mtcnn_det1"  # the first conversion in a process imports onnx
    modelport.convert(warm, work / "warm.onnx", input_specs=parse_input_specs(["data:1,3,12,12"]), check=False)
    for folder in ("mx_cnn", "mx_unet", "mtcnn_det1", "mtcnn_det2"):
        data = REPO / "tests" / "data" / "mxnet" / folder
        io = np.load(data / "mxnet_io.npz")
        feeds = {k[3:]: io[k] for k in io.files if k.startswith("in:")}
        expected = [io[f"out:{i}"] for i in range(len(io["output_names"]))]
        specs = parse_input_specs([f"{k}:1,{','.join(map(str, v.shape[1:]))}" for k, v in feeds.items()])
        start = time.perf_counter()
        modelport.convert(data, work / f"{folder}.onnx", input_specs=specs, check=False)
        seconds = time.perf_counter() - start
        session, got = ort_run(work / f"{folder}.onnx", feeds)
        error = max(float(np.abs(g - e).max()) for g, e in zip(got, expected))
        interpreter = MXNetSession(data, input_specs=specs)
        ours_ms = median_ms(lambda: session.run(None, feeds), repeat)
        ref_ms = median_ms(lambda: interpreter.run(feeds), max(3, repeat // 10))
        rows.append((folder, f"{seconds:.2f}", f"{error:.1e}", f"{ours_ms:.2f}", f"{ref_ms:.2f}"))
    print("\nMXNet -> ONNX (reference: outputs of real MXNet 1.9.1, batch 2)")
    table(rows, ("model", "convert s", "max abs err vs MXNet", "ORT ms", "modelport interpreter ms"))


def lightning_rows(work: Path, repeat: int):
    import torch

    import modelport
    from tests import zoo_lightning
    paths = zoo_lightning.save_all(work)
    start = time.perf_counter()
    result = modelport.convert(paths["classifier"], work / "lit.onnx", source_options={"factory": "tests.zoo_lightning:LitClassifier"})
    seconds = time.perf_counter() - start
    reference = zoo_lightning.LitClassifier.load_from_checkpoint(paths["classifier"], map_location="cpu").eval()
    image = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    session, got = ort_run(work / "lit.onnx", {"image": image})
    with torch.no_grad():
        expected = reference(torch.from_numpy(image)).numpy()
        torch_ms = median_ms(lambda: reference(torch.from_numpy(image)), repeat)
    ours_ms = median_ms(lambda: session.run(None, {"image": image}), repeat)
    print("\nLightning checkpoint -> ONNX (reference: LitClassifier.load_from_checkpoint in PyTorch, batch 8)")
    table([("LitClassifier (12 steps)", f"{seconds:.2f}", f"{float(np.abs(got[0] - expected).max()):.1e}",
            f"{ours_ms:.3f}", f"{torch_ms:.3f}", "pass" if result.passed else "FAIL")],
          ("model", "convert s (with check)", "max abs err", "ORT ms", "PyTorch ms", "parity"))


def jax_reference(name):
    from tests import zoo_jax
    built = getattr(zoo_jax, name)()
    if isinstance(built, tuple):
        module, variables = built
        return lambda x: module.apply(variables, x)
    if hasattr(built, "eval"):
        built.eval()
    return built


def jax_rows(work: Path, repeat: int, peer: bool):
    import jax

    from modelport.convert.jax_onnx.graph import build_model
    from modelport.formats.jax import JaxModel
    from modelport.tensors import TensorSpec
    route_rows = []
    python = ensure_peer() if peer else None
    for name, (input_name, shape) in JAX_MODELS.items():
        fn = jax_reference(name)
        batch = (4, *shape[1:])
        x = np.random.default_rng(1).standard_normal(batch).astype(np.float32)
        expected = np.asarray(fn(x))
        jitted = jax.jit(fn)
        jax_ms = median_ms(lambda: jitted(x).block_until_ready(), repeat)
        routes = {}
        # modelport (converted once before, as jax2onnx is: JAX's own tracing caches warm up)
        build_model(JaxModel(lambda _, *xs: fn(*xs), None, "f"),
                    [TensorSpec(input_name, (None, *shape[1:]), np.dtype(np.float32))])
        start = time.perf_counter()
        proto = build_model(JaxModel(lambda _, *xs: fn(*xs), None, "f"),
                            [TensorSpec(input_name, (None, *shape[1:]), np.dtype(np.float32))])
        seconds = time.perf_counter() - start
        (work / f"{name}_ours.onnx").write_bytes(proto.SerializeToString())
        session, got = ort_run(work / f"{name}_ours.onnx", {input_name: x})
        routes["modelport"] = (seconds, float(np.abs(got[0] - expected).max()),
                               median_ms(lambda: session.run(None, {input_name: x}), repeat))
        # jax2onnx, in its own venv
        if python is not None:
            out = work / f"{name}_jax2onnx.onnx"
            done = subprocess.run([str(python), "-c", PEER_SCRIPT, str(REPO), name, input_name, json.dumps(shape),
                                   str(out)], capture_output=True, text=True)
            answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else \
                {"error": done.stderr.strip().splitlines()[-1][:160]}
            if "error" in answer:
                routes["jax2onnx"] = answer["error"]
            else:
                try:
                    peer_session, got = ort_run(out, {peer_session_input(out): x})
                    routes["jax2onnx"] = (answer["seconds"], float(np.abs(got[0] - expected).max()),
                                          median_ms(lambda: peer_session.run(None, {peer_session_input(out): x}), repeat))
                except Exception as exc:  # converted, but ONNX Runtime refuses the model
                    routes["jax2onnx"] = f"ONNX Runtime: {str(exc).splitlines()[0][:140]}"
        # jax2tf -> tf2onnx
        routes["jax2tf+tf2onnx"] = jax2tf_route(fn, shape)
        for route, value in routes.items():
            if isinstance(value, str):
                route_rows.append((name, route, "fails", value, "", ""))
            else:
                route_rows.append((name, route, "converts", f"{value[0]:.2f} s", f"{value[1]:.1e}",
                                   f"{value[2]:.3f} ({value[2] / jax_ms:.2f}x JAX {jax_ms:.3f})"))
    print("\nJAX / Flax -> ONNX, three routes (reference: JAX on CPU, batch 4; latency: ORT vs jitted JAX)")
    table(route_rows, ("model", "route", "result", "convert / error", "max abs err", "ORT ms (x JAX ms)"))


def peer_session_input(path):
    import onnx
    return onnx.load(str(path)).graph.input[0].name


def jax2tf_route(fn, shape):
    try:
        import tensorflow as tf
        import tf2onnx
        from jax.experimental import jax2tf
        start = time.perf_counter()
        converted = tf.function(jax2tf.convert(fn, polymorphic_shapes=["(b, ...)"], with_gradient=False),
                                autograph=False, input_signature=[tf.TensorSpec((None, *shape[1:]), tf.float32)])
        tf2onnx.convert.from_function(converted, input_signature=converted.input_signature, opset=17)
        return (time.perf_counter() - start, float("nan"), float("nan"))
    except Exception as exc:
        text = str(exc)
        if "XlaCallModule" in text or "Could not infer the attribute type" in text:
            return "tf2onnx cannot convert XlaCallModule (jax2tf's only output now)"
        return f"{type(exc).__name__}: {text.splitlines()[0][:140] if text else ''}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--no-peer", action="store_true", help="skip jax2onnx (which needs its own venv)")
    args = parser.parse_args()
    import logging
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        mxnet_rows(work, args.repeat)
        lightning_rows(work, args.repeat)
        jax_rows(work, args.repeat, peer=not args.no_peer)


if __name__ == "__main__":
    main()
