"""Conversion time and ONNX Runtime vs source-framework inference time, side by side.

    .venv/bin/python benchmarks/convert_bench.py [--repeat 20]

Models: ResNet-18 (PyTorch, defined in tests/zoo_torch.py, random weights) and Keras
MobileNetV2(weights=None, classifier_activation=None). For each: the time of the conversion edge
and of the parity check, then the median latency of the source framework and of ONNX Runtime at
batch 1 and 8 (same process, same machine, same inputs; torch eager under inference_mode, Keras as a
tf.function), and their ratio ORT / source
(below 1 means ONNX Runtime is faster).

Then modelport's overhead over the raw exporter call on the same source file in the same process:
``modelport.convert(SRC, DST, check=False)`` against the bare calls a user would write (load the
file, run the exporter, write the ONNX), interleaved round by round so that both see the same
machine state; the ratio of medians is printed (goal: at most 1.10).
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


def _raw_torch_export(source: Path, dst: Path) -> None:
    """What a user writes without modelport: load the .pt2, run the dynamo exporter."""
    import warnings
    import torch
    from modelport._console import captured_output
    program = torch.export.load(str(source))
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(program, args=(), f=str(dst), dynamo=True, external_data=False)


def _raw_keras_export(source: Path, dst: Path) -> None:
    """Without modelport: load the .keras, trace it as a tf.function, run tf2onnx, write the bytes."""
    import warnings
    import keras
    import tensorflow as tf
    import tf2onnx
    from modelport._console import captured_output
    model = keras.saving.load_model(str(source), compile=False)
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    serve = tf.function(lambda x: {"output": model(x, training=False)}, input_signature=specs)
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=specs, opset=17)
    dst.write_bytes(proto.SerializeToString())


def overhead_rows(tmp: Path, rounds: int):
    """(model, raw s, modelport s, ratio) with the two calls interleaved, medians of ``rounds``."""
    import statistics
    import time
    import torch
    from modelport import convert
    from tests import zoo_keras, zoo_torch
    program = torch.export.export(zoo_torch.resnet18(), (torch.rand(2, 3, 224, 224),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    pt2 = tmp / "resnet18.pt2"
    torch.export.save(program, str(pt2))
    keras_path = tmp / "mobilenet_v2_overhead.keras"
    zoo_keras.mobilenet_v2().save(keras_path)
    rows = []
    for name, source, raw in (("ResNet-18 .pt2", pt2, _raw_torch_export),
                              ("MobileNetV2 .keras", keras_path, _raw_keras_export)):
        raw_times, ours = [], []
        raw(source, tmp / "warm_raw.onnx")  # first calls import and compile; not what is measured
        convert(source, tmp / "warm.onnx", check=False)
        for _ in range(rounds):
            start = time.perf_counter()
            raw(source, tmp / "raw.onnx")
            raw_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            convert(source, tmp / "ours.onnx", check=False)
            ours.append(time.perf_counter() - start)
        a, b = statistics.median(raw_times), statistics.median(ours)
        rows.append((name, a, b, b / a))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the overhead comparison")
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
        overhead = overhead_rows(tmp, args.rounds)

    print(f"\ntorch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"median of {args.repeat} runs after one warm-up\n")
    header = f"{'model':<22}{'convert s':>10}{'check s':>9}{'max abs':>10}{'batch':>7}{'source ms':>11}{'ORT ms':>9}{'ORT/source':>12}"
    print(header)
    print("-" * len(header))
    for name, convert_s, check_s, worst, rows in results:
        for i, (batch, src_ms, ort_ms) in enumerate(rows):
            lead = f"{name:<22}{convert_s:>10.2f}{check_s:>9.2f}{worst:>10.2e}" if i == 0 else " " * 51
            print(f"{lead}{batch:>7}{src_ms:>11.2f}{ort_ms:>9.2f}{ort_ms / src_ms:>12.2f}")
    print_overhead(overhead, args.rounds)


def print_overhead(rows, rounds: int) -> None:
    print(f"\nconvert --no-check vs the raw exporter call, same file, same process, median of {rounds} interleaved rounds\n")
    header = f"{'source':<22}{'raw s':>9}{'modelport s':>13}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name, raw_s, ours_s, ratio in rows:
        print(f"{name:<22}{raw_s:>9.2f}{ours_s:>13.2f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
