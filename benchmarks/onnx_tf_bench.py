"""ONNX -> TFLite: modelport's converter side by side with onnx2tf, and TF's own Keras -> TFLite.

    .venv/bin/python benchmarks/onnx_tf_bench.py [--repeat 50] [--models resnet18,mobilenet_v2]

For ResNet-18 and MobileNetV2 (tests/zoo_torch.py, random weights, BatchNorm calibrated), exported
to ONNX at batch 1: the wall time of ``modelport convert X.onnx X.tflite --no-check`` and of
``onnx2tf -i X.onnx`` (both command lines, so both pay their imports), then the median latency of
each TFLite in LiteRT (1 thread, batch 1, the models invoked in turn round after round), its Transpose count, and the ratio to onnx2tf's (goal:
at most 1.0). TF's own Keras MobileNetV2 -> TFLite is the NHWC-native floor.

onnx2tf (1.29.x) pins TensorFlow 2.19, so it is installed with ``--no-deps`` into its own venv,
``benchmarks/.venvs/onnx2tf``, next to the TensorFlow modelport uses; never into modelport's.
onnx2tf fetches a calibration sample from GitHub on start; a seeded random one of the same shape is
written where it looks first (this machine reaches PyPI only).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PEER_VENV = REPO / "benchmarks" / ".venvs" / "onnx2tf"
ONNX2TF = "onnx2tf==1.29.24"
# onnx2tf's own requirements, at the versions modelport runs with (from constraints.txt).
PEER_DEPS = ["tensorflow_cpu==2.21.0", "tf-keras==2.21.0", "onnx==1.23.2", "onnxruntime==1.32.0",
             "ai-edge-litert==2.3.0", "onnx-graphsurgeon", "sng4onnx", "psutil", "numpy==2.4.6", "onnxsim"]
CALIBRATION = "calibration_image_sample_data_20x128x128x3_float32.npy"


def ensure_peer() -> Path:
    """The onnx2tf command, installed into its own venv on first use."""
    command = PEER_VENV / "bin" / "onnx2tf"
    if not command.exists():
        print(f"installing {ONNX2TF} into {PEER_VENV} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        pip = [str(PEER_VENV / "bin" / "pip"), "install", "-q"]
        subprocess.run(pip + PEER_DEPS, check=True)
        subprocess.run(pip + ["--no-deps", ONNX2TF], check=True)
    return command


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def litert_latencies(paths: dict, repeat: int) -> dict:
    """Median latency (ms) of each TFLite in LiteRT at 1 thread, and its number of TRANSPOSE ops.
    The models are invoked in turn, round after round, so that all see the same machine state."""
    from ai_edge_litert.interpreter import Interpreter
    interpreters = {}
    for key, path in paths.items():
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"],
                               np.random.default_rng(0).standard_normal(detail["shape"]).astype(np.float32))
        interpreter.invoke()  # warm-up
        interpreters[key] = interpreter
    times = {key: [] for key in paths}
    for _ in range(repeat):
        for key, interpreter in interpreters.items():
            start = time.perf_counter()
            interpreter.invoke()
            times[key].append((time.perf_counter() - start) * 1000)
    return {key: (statistics.median(times[key]),
                  Counter(op["op_name"] for op in interpreters[key]._get_ops_details())["TRANSPOSE"])
            for key in paths}


def keras_floor(work: Path) -> Path:
    """TF's own MobileNetV2 (Keras, NHWC from the start) through tf.lite.TFLiteConverter."""
    import keras
    import tensorflow as tf
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classifier_activation=None)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    target = work / "keras_mobilenet_v2.tflite"
    target.write_bytes(converter.convert())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    args = parser.parse_args()
    onnx2tf = ensure_peer()
    modelport = [str(Path(sys.executable).parent / "modelport")]
    names = args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="onnx_tf_bench-") as tmp:
        work = Path(tmp)
        np.save(work / CALIBRATION, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
        seconds, paths = {}, {}
        for name in names:
            source = work / f"{name}.onnx"
            timed(modelport + ["convert", f"tests.zoo_torch:{name}", str(source), "--input-shape",
                               "image:1,3,224,224", "--fixed-batch", "--no-check"], REPO)
            for layout in ("nchw", "nhwc"):
                key = (name, f"modelport (io {layout})")
                paths[key] = work / f"{name}_{layout}.tflite"
                seconds[key] = timed(modelport + ["convert", str(source), str(paths[key]), "--no-check",
                                                  "--keep-io-layout", layout], work)
            key = (name, "onnx2tf 1.29 (NHWC io)")
            seconds[key] = timed([str(onnx2tf), "-i", str(source), "-o", str(work / f"{name}_onnx2tf")], work)
            paths[key] = work / f"{name}_onnx2tf" / f"{name}_float32.tflite"
        if "mobilenet_v2" in names:
            paths[("mobilenet_v2", "Keras -> TFLite (floor)")] = keras_floor(work)
        measured = litert_latencies(paths, args.repeat)

    print(f"\nONNX -> TFLite, LiteRT 1 thread batch 1, median of {args.repeat} interleaved runs")
    print(f"{'model':<14}{'converter':<26}{'convert s':>10}{'latency ms':>12}{'transposes':>12}{'vs onnx2tf':>12}")
    for (name, label), (latency, transposes) in measured.items():
        peer = measured[(name, "onnx2tf 1.29 (NHWC io)")][0]
        took = f"{seconds[(name, label)]:>10.1f}" if (name, label) in seconds else f"{'':>10}"
        print(f"{name:<14}{label:<26}{took}{latency:>12.2f}{transposes:>12d}{latency / peer:>11.2f}x")

if __name__ == "__main__":
    main()
