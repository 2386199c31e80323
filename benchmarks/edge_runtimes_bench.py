"""One model through every edge runtime modelport packages for: size, latency and agreement side by side.

    .venv/bin/python benchmarks/edge_runtimes_bench.py [--repeat 30] [--size 224]   (make bench-runtimes)

The model is Keras MobileNetV2 trained briefly on ten synthetic stripe patterns (edge_bench.py's
task: random weights would leave near-tied logits, on which top-1 agreement means nothing). Each
target is written by modelport's own command, which checks every file in its runtime against the
Keras model on 64 further pictures (the calibration data of the int8 modes): LiteRT fp32/fp16/int8,
ExecuTorch fp32/int8 (Keras -> ONNX -> PyTorch -> .pte), ONNX Runtime (the ONNX hop), ORT Mobile
(.ort), TF.js (Node, WebAssembly), OpenVINO fp32/int8 and ONNX Runtime Web fp32/uint8 (Node,
WebAssembly). Latency: batch 1, one thread, the in-process runtimes invoked in turn round after
round (the median of ``--repeat`` interleaved rounds); TF.js and ORT Web run in a Node process, so
their figures are their bundles' own (a median of 20 runs through the runner, the JSON round trip
of the 224x224 input included).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edge_bench import CLASSES, pattern_images  # noqa: E402  (the same task as the TFLite modes' table)


def build_model(size: int, train: int, epochs: int):
    from tests import zoo_keras
    keras = zoo_keras._keras()
    model = keras.Sequential([keras.Input((size, size, 3), name="image"),
                              keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg",
                                                             input_shape=(size, size, 3)),
                              keras.layers.Dense(CLASSES, name="logits")])
    images, labels = pattern_images(train, size, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    began = time.perf_counter()
    history = model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0)
    print(f"trained {epochs} epochs on {train} pictures in {time.perf_counter() - began:.0f} s, "
          f"accuracy {history.history['accuracy'][-1]:.2f}", flush=True)
    return model


def export_all(source: Path, work: Path, calibration: dict) -> list[tuple[str, object, Path]]:
    """(runtime and mode, the bundle file's record, its path) for every target, each written and
    checked by modelport; a file that fails its check is kept and measured (the table says so)."""
    import modelport
    from modelport.errors import ParityError

    def bundle(export, name, **options):
        began = time.perf_counter()
        try:
            result = export(source, work / name, **options)
        except ParityError as failed:
            result = failed.result
        print(f"  {name}: {time.perf_counter() - began:.0f} s", flush=True)
        return result

    rows = []
    for item in bundle(modelport.export_tflite, "tflite", quantize="fp32,fp16,int8", calibration=calibration).files:
        rows.append((f"LiteRT {item.mode}", item, work / "tflite" / item.name))
    for item in bundle(modelport.export_executorch, "executorch", quantize="fp32,int8", calibration=calibration).files:
        rows.append((f"ExecuTorch {item.mode}", item, work / "executorch" / item.name))
    ort = bundle(modelport.export_ort, "ort", inputs=calibration)
    rows.append(("ORT Mobile (.ort)", ort.files[0], work / "ort" / "model.ort"))
    for item in bundle(modelport.export_tfjs, "tfjs", inputs=calibration).files:
        rows.append((f"TF.js {item.mode} (Node wasm)", item, None))
    for item in bundle(modelport.export_openvino, "openvino", quantize="fp32,int8", calibration=calibration).files:
        rows.append((f"OpenVINO {item.mode}", item, work / "openvino" / item.name))
    for mode in ("fp32", "uint8"):
        for item in bundle(modelport.export_web, f"web_{mode}", quantize=mode, inputs=calibration).files:
            rows.append((f"ORT Web {mode} (Node wasm)", item, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--train", type=int, default=640, help="training pictures")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import modelport
    from modelport.formats import open_model
    from modelport.formats.executorch import PteSession
    from modelport.formats.onnx import OnnxSession
    from modelport.formats.openvino import OpenVinoSession
    from modelport.formats.ort import OrtFormatSession
    from modelport.formats.tflite import TFLiteSession

    model = build_model(args.size, args.train, args.epochs)
    images, _ = pattern_images(64, args.size, seed=2)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        source = work / "mobilenet_v2.keras"
        model.save(source)
        with open_model(source) as session:
            name = session.inputs[0].name
        calibration = {name: images}
        print("writing every target (each checked in its runtime against Keras):", flush=True)
        onnx = modelport.convert(source, work / "mobilenet_v2.onnx", feeds=calibration)
        rows = [("ONNX Runtime (.onnx)", onnx.hops[-1], work / "mobilenet_v2.onnx")] + export_all(source, work, calibration)

        openers = {".onnx": lambda p: OnnxSession(p, threads=1), ".ort": lambda p: OrtFormatSession(p, threads=1),
                   ".tflite": lambda p: TFLiteSession(p, threads=1), ".pte": lambda p: PteSession(p, threads=1),
                   ".xml": lambda p: OpenVinoSession(p, threads=1)}
        one = images[:1]
        serve = tf.function(lambda x: model(x, training=False))
        runners = {"Keras (TF, the source)": lambda: serve(tf.constant(one)).numpy()}
        sessions = []
        for label, _, path in rows:
            if path is None:
                continue
            session = openers[path.suffix](path)
            sessions.append(session)
            feed = {session.inputs[0].name: one if session.inputs[0].shape[-1] == 3 else one.transpose(0, 3, 1, 2)}
            runners[label] = lambda s=session, f=feed: s.run(f)
        for run in runners.values():
            run()  # warm-up: first runs allocate and compile
        times = {label: [] for label in runners}
        for _ in range(args.repeat):  # interleaved rounds: every runtime sees the same machine state
            for label, run in runners.items():
                began = time.perf_counter()
                run()
                times[label].append((time.perf_counter() - began) * 1000)
        medians = {label: statistics.median(values) for label, values in times.items()}
        for session in sessions:
            session.close()

        keras_ms = medians["Keras (TF, the source)"]
        print(f"\nMobileNetV2 {args.size}x{args.size} (briefly trained, {CLASSES} classes): every edge runtime, batch 1, "
              f"1 thread, median of {args.repeat} interleaved runs; agreement with Keras on 64 held pictures")
        print(f"{'runtime':<28}{'size MiB':>9}{'latency ms':>12}{'vs Keras':>10}  {'top-1':>7}  {'cosine':>9}  check")
        print(f"{'Keras (TF, the source)':<28}{'':>9}{keras_ms:>12.2f}{1.0:>9.2f}x")
        for label, record, path in rows:
            report = record.report if isinstance(record.report, dict) else record.report.to_dict()
            outputs = report["outputs"]
            top1 = outputs[0].get("top1_agreement")
            cosine = min(o.get("cosine") or 0.0 for o in outputs)
            passed = record.passed if hasattr(record, "passed") else report["passed"]
            size = record.size if hasattr(record, "size") else path.stat().st_size
            ms = medians.get(label, getattr(record, "latency_ms", None))
            print(f"{label:<28}{size / 2**20:>9.2f}{ms:>12.2f}{ms / keras_ms:>9.2f}x  "
                  f"{'-' if top1 is None else f'{top1:.1%}':>7}  {cosine:>9.5f}  {'pass' if passed else 'FAIL'}")


if __name__ == "__main__":
    main()
