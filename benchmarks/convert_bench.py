"""Conversion time and ONNX Runtime vs source-framework inference time, side by side.

    .venv/bin/python benchmarks/convert_bench.py [--repeat 20]

Models: ResNet-18 (PyTorch, defined in tests/zoo_torch.py, random weights) and Keras
MobileNetV2(weights=None, classifier_activation=None). For each: the time of the conversion edge
and of the parity check, then the median latency of the source framework and of ONNX Runtime at
batch 1 and 8 (same process, same machine, same inputs; torch eager under inference_mode, Keras as a
tf.function), and their ratio ORT / source
(below 1 means ONNX Runtime is faster).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from timing import median_ms  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def bench_model(name, source, dst, convert_kwargs, source_runner, input_shape, repeat):
    import onnxruntime as ort
    from modelport import convert
    result = convert(source, dst, **convert_kwargs)
    hop = result.hops[0]
    session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    rows = []
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, *input_shape)).astype(np.float32)
        src_ms = median_ms(lambda: source_runner(x), repeat)
        ort_ms = median_ms(lambda: session.run(None, {input_name: x}), repeat)
        rows.append((batch, src_ms, ort_ms))
    worst = max(o.max_abs for o in hop.report.outputs)
    return name, hop.seconds, result.seconds - hop.seconds, worst, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    import torch
    from modelport.tensors import TensorSpec
    from tests import zoo_keras, zoo_torch

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        resnet = zoo_torch.resnet18()

        def torch_run(x):
            with torch.inference_mode():
                resnet(torch.from_numpy(x))
        results.append(bench_model(
            "ResNet-18 (PyTorch)", "tests.zoo_torch:resnet18", tmp / "resnet18.onnx",
            {"input_specs": [TensorSpec("image", (1, 3, 224, 224), np.float32)], "samples": 1},
            torch_run, (3, 224, 224), args.repeat))

        mobilenet = zoo_keras.mobilenet_v2()
        keras_path = tmp / "mobilenet_v2.keras"
        mobilenet.save(keras_path)
        import tensorflow as tf
        # Keras runs compiled in graph mode (tf.function), as model.predict and serving do;
        # eager calls would add Python overhead that is not the framework's inference time.
        keras_graph = tf.function(lambda x: mobilenet(x, training=False), reduce_retracing=True)
        results.append(bench_model(
            "MobileNetV2 (Keras)", keras_path, tmp / "mobilenet_v2.onnx", {"samples": 1},
            lambda x: keras_graph(x).numpy(), (224, 224, 3), args.repeat))

    print(f"\ntorch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"median of {args.repeat} runs after one warm-up\n")
    header = f"{'model':<22}{'convert s':>10}{'check s':>9}{'max abs':>10}{'batch':>7}{'source ms':>11}{'ORT ms':>9}{'ORT/source':>12}"
    print(header)
    print("-" * len(header))
    for name, convert_s, check_s, worst, rows in results:
        for i, (batch, src_ms, ort_ms) in enumerate(rows):
            lead = f"{name:<22}{convert_s:>10.2f}{check_s:>9.2f}{worst:>10.2e}" if i == 0 else " " * 51
            print(f"{lead}{batch:>7}{src_ms:>11.2f}{ort_ms:>9.2f}{ort_ms / src_ms:>12.2f}")


if __name__ == "__main__":
    main()
