"""TFLite bundle modes side by side: size and LiteRT latency of each, against the fp32 model in
TensorFlow itself.

    .venv/bin/python benchmarks/edge_bench.py [--repeat 50] [--size 224]

The model is Keras MobileNetV2 (random weights, BatchNorm statistics calibrated, tests/zoo_keras.py);
its calibration and check data are 64 smooth synthetic images (gradients, not noise, so that int8
ranges are those of pictures). ``modelport edge tflite`` writes fp32, fp16, dynamic and int8 files,
each checked in LiteRT against Keras; each file's median latency is then measured in LiteRT (1
thread, batch 1, the files invoked in turn round after round), beside the Keras model's own
``tf.function`` at batch 1 (TF's intra-op threads also set to 1).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODES = "fp32,fp16,dynamic,int8"


def smooth_images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Synthetic pictures in MobileNetV2's range [-1, 1]: per-channel gradients with an offset."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = [np.stack([np.sin(yy * rng.uniform(1, 6) + xx * rng.uniform(1, 6) + rng.uniform(0, 6))
                        for _ in range(3)], axis=-1) for _ in range(count)]
    return np.stack(images).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from modelport.edge.tflite import export_tflite
    from modelport.formats.tflite import TFLiteSession
    from tests import zoo_keras

    keras = zoo_keras._keras()
    model = keras.applications.MobileNetV2(weights=None, classifier_activation=None,
                                           input_shape=(args.size, args.size, 3))
    images = smooth_images(64, args.size)
    zoo_keras.calibrate_batchnorm(model, images[:16])
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model.save(scratch / "mobilenet_v2.keras")
        began = time.perf_counter()
        result = export_tflite(scratch / "mobilenet_v2.keras", scratch / "bundle", quantize=MODES,
                               calibration={model.inputs[0].name: images})
        seconds = time.perf_counter() - began
        one = images[:1]
        serve = tf.function(lambda x: model(x, training=False))
        sessions = {f.mode: TFLiteSession(scratch / "bundle" / f.name, threads=1) for f in result.files}
        runners = {"keras (TF, fp32)": lambda: serve(tf.constant(one)).numpy()}
        for mode, session in sessions.items():
            feed = {session.inputs[0].name: one}
            runners[f"tflite {mode}"] = lambda s=session, f=feed: s.run(f)
        for run in runners.values():  # warm up
            run()
        times = {name: [] for name in runners}
        for _ in range(args.repeat):  # interleaved rounds: every runner sees the same machine state
            for name, run in runners.items():
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) * 1000)
        medians = {name: statistics.median(values) for name, values in times.items()}
        base_size = result.files[0].size
        keras_ms = medians["keras (TF, fp32)"]
        print(f"\nMobileNetV2 {args.size}x{args.size}: TFLite bundle modes, LiteRT 1 thread batch 1, "
              f"median of {args.repeat} interleaved runs (bundle written and checked in {seconds:.0f} s)")
        print(f"{'model':<20}{'size MiB':>10}{'vs fp32':>9}{'latency ms':>12}{'vs Keras':>10}  check")
        print(f"{'keras (TF, fp32)':<20}{'':>10}{'':>9}{keras_ms:>12.2f}{1.0:>9.2f}x")
        for item in result.files:
            ms = medians[f"tflite {item.mode}"]
            worst = min(o.get("cosine") or 0.0 for o in item.report["outputs"])
            top1 = item.report["outputs"][0].get("top1_agreement")
            verdict = "pass" if item.passed else "FAIL"
            print(f"{'tflite ' + item.mode:<20}{item.size / 2**20:>10.2f}{item.size / base_size:>8.2f}x"
                  f"{ms:>12.2f}{ms / keras_ms:>9.2f}x  {verdict} (cosine {worst:.5f}"
                  f"{'' if top1 is None else f', top-1 {top1:.1%}'})")


if __name__ == "__main__":
    main()
