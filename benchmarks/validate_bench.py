"""How long `modelport validate` takes, and how long each Session takes to open.

    .venv/bin/python benchmarks/validate_bench.py [--repeat 3]

1. A MobileNetV2-sized ONNX pair: Keras MobileNetV2 (weights=None, 3.5 M parameters) converted to
   ONNX, against the same graph after ONNX Runtime's offline optimizations (fused, renamed). Times
   `validate` with the default 3 samples x batch 1 and 3, without and with --localize, next to the
   in-process limit: the bare ONNX Runtime inference of the same feeds.
2. Session start-up: the first open in a fresh process (framework import included) and a second
   open in the same process, per format.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OPEN_PROBE = """
import json, sys, time
sys.path.insert(0, {repo!r})
from modelport.formats import open_model
from modelport.formats.pytorch import parse_input_specs
from modelport.validate.inputs import generate_feeds
options = {options}
if "input_specs" in options:
    options["input_specs"] = parse_input_specs(options["input_specs"])
times = []
for _ in range(2):
    start = time.perf_counter()
    session = open_model({path!r}, **options)
    opened = time.perf_counter()
    session.run(generate_feeds(session.inputs, batch=1))  # some runtimes finish loading on first use
    times.append([opened - start, time.perf_counter() - start])
    session.close()
print(json.dumps(times))
"""


def build_models(folder: Path) -> dict[str, tuple[str, dict]]:
    import onnxruntime as ort
    import tensorflow as tf
    import torch
    from modelport import convert
    from tests import zoo_keras, zoo_torch
    keras_model = zoo_keras.mobilenet_v2()
    keras_path = folder / "mobilenet_v2.keras"
    keras_model.save(keras_path)
    keras_model.export(str(folder / "mobilenet_v2_savedmodel"), verbose=False)
    (folder / "mobilenet_v2.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
    convert(keras_path, folder / "mobilenet_v2.onnx", check=False)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / "mobilenet_v2_optimized.onnx")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(str(folder / "mobilenet_v2.onnx"), options, providers=["CPUExecutionProvider"])
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    onnx.save(convert_float_to_float16(onnx.load(str(folder / "mobilenet_v2.onnx")), keep_io_types=True),
              str(folder / "mobilenet_v2_fp16.onnx"))
    torch.jit.trace(zoo_torch.resnet18(), torch.rand(1, 3, 224, 224)).save(str(folder / "resnet18.pt"))
    from tests.caffe_writer import write_random_caffemodel
    caffe_prototxt = REPO / "tests" / "data" / "caffe" / "zoo" / "resnet50.prototxt"
    caffe_weights = write_random_caffemodel(caffe_prototxt, folder / "resnet50.caffemodel")
    return {
        "ONNX (MobileNetV2)": (str(folder / "mobilenet_v2.onnx"), {}),
        "Keras .keras (MobileNetV2)": (str(keras_path), {}),
        "SavedModel (MobileNetV2)": (str(folder / "mobilenet_v2_savedmodel"), {}),
        "TFLite (MobileNetV2)": (str(folder / "mobilenet_v2.tflite"), {}),
        "TorchScript (ResNet-18)": (str(folder / "resnet18.pt"), {"input_specs": ["1,3,224,224"]}),
        "factory + state_dict (ResNet-18)": ("tests.zoo_torch:resnet18", {"input_specs": ["1,3,224,224"]}),
        "Caffe via OpenCV (ResNet-50)": (str(caffe_prototxt), {"weights": str(caffe_weights)}),
    }


def time_validate(reference: str, candidate: str, repeat: int) -> dict[str, float]:
    import numpy as np
    import onnxruntime as ort
    from modelport import validate
    from modelport.validate.inputs import generate_feeds
    from modelport.formats import open_model
    results: dict[str, list[float]] = {"validate": [], "validate --localize": [], "bare ORT, both models": []}
    for _ in range(repeat):
        for key, localize in (("validate", False), ("validate --localize", True)):
            start = time.perf_counter()
            report = validate(reference, candidate, localize=localize)
            results[key].append(time.perf_counter() - start)
        with open_model(reference) as session:
            feeds = [generate_feeds(session.inputs, seed=s, batch=b) for b in (1, 3) for s in range(3)]
        start = time.perf_counter()
        for path in (reference, candidate):
            bare = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            for feed in feeds:
                bare.run(None, {k: np.asarray(v) for k, v in feed.items()})
        results["bare ORT, both models"].append(time.perf_counter() - start)
    print(f"\n{report.summary()}")
    top1 = [o.top1_agreement for o in report.outputs if o.top1_agreement is not None]
    print(f"top-1 agreement {top1}; localization: {report.localization['message']}")
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        from modelport._console import captured_output
        with captured_output():  # Keras export and the TFLite converter print their signatures
            models = build_models(folder)
        onnx_path = models["ONNX (MobileNetV2)"][0]
        for label, candidate in (("its ORT-optimized copy", "mobilenet_v2_optimized.onnx"),
                                 ("its fp16 copy", "mobilenet_v2_fp16.onnx")):
            timings = time_validate(onnx_path, str(folder / candidate), args.repeat)
            print(f"\nvalidate, MobileNetV2 ONNX vs {label} (6 feeds), median of {args.repeat}:")
            limit = timings["bare ORT, both models"]
            for key, seconds in timings.items():
                print(f"  {key:<24}{seconds:>8.2f} s{seconds / limit:>8.1f}x bare ORT")
        print("\nSession start-up in a fresh process, in seconds: open, and open + first run (batch 1).")
        print("The first time includes importing the framework; the second is the same process again.")
        print(f"  {'format':<36}{'first open':>11}{'+ run':>8}{'second open':>13}{'+ run':>8}")
        for name, (path, options) in models.items():
            probe = OPEN_PROBE.format(repo=str(REPO), path=path, options=repr(options))
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
            (open1, run1), (open2, run2) = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {name:<36}{open1:>11.2f}{run1:>8.2f}{open2:>13.2f}{run2:>8.2f}")


if __name__ == "__main__":
    main()
