"""Caffe -> ONNX: conversion time, and ONNX Runtime vs OpenCV (the Caffe reference) inference time.

    .venv/bin/python benchmarks/caffe_bench.py [--repeat 10] [--models resnet50,googlenet,squeezenet_v1.1]

Model Zoo definitions from tests/data/caffe/zoo with random weights from modelport's
caffemodel writer (same shapes and FLOPs as the trained models). Both runtimes run in this
process on the same inputs, one after the other, with their default CPU threading.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "tests" / "data" / "caffe" / "zoo"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from timing import median_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--models", default="resnet50,bvlc_googlenet,squeezenet_v1.1")
    args = parser.parse_args()
    import cv2
    import onnxruntime as ort
    from modelport import convert
    from tests.caffe_writer import write_random_caffemodel
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            prototxt = ZOO / f"{name}.prototxt"
            weights = write_random_caffemodel(prototxt, Path(tmp) / f"{name}.caffemodel")
            dst = Path(tmp) / f"{name}.onnx"
            start = time.perf_counter()
            result = convert(prototxt, dst, weights=weights, check=False)
            convert_s = time.perf_counter() - start
            start = time.perf_counter()
            checked = convert(prototxt, dst, weights=weights, samples=1)
            check_s = time.perf_counter() - start - checked.hops[0].seconds
            session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
            net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
            shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
            for batch in (1, 8):
                x = np.random.default_rng(0).standard_normal((batch, *shape[1:])).astype(np.float32)

                def run_cv():
                    net.setInput(x, "data")
                    net.forward()
                cv_ms = median_ms(run_cv, args.repeat)
                ort_ms = median_ms(lambda: session.run(None, {"data": x}), args.repeat)
                rows.append((name, convert_s if batch == 1 else None, check_s if batch == 1 else None, batch, cv_ms, ort_ms))
            del result
    print(f"\nOpenCV {cv2.__version__}, ONNX Runtime {ort.__version__}; median of {args.repeat} runs after a warm-up\n")
    header = f"{'model':<18}{'convert s':>10}{'check s':>9}{'batch':>7}{'OpenCV ms':>11}{'ORT ms':>9}{'ORT/OpenCV':>12}"
    print(header)
    print("-" * len(header))
    for name, convert_s, check_s, batch, cv_ms, ort_ms in rows:
        lead = f"{name:<18}{convert_s:>10.2f}{check_s:>9.2f}" if convert_s is not None else " " * 37
        print(f"{lead}{batch:>7}{cv_ms:>11.1f}{ort_ms:>9.1f}{ort_ms / cv_ms:>12.2f}")


if __name__ == "__main__":
    main()
