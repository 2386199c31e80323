"""TFLite bundle modes side by side: size and LiteRT latency of each, against the fp32 model in
TensorFlow itself.

    .venv/bin/python benchmarks/edge_bench.py [--repeat 50] [--size 224]

The model is Keras MobileNetV2 trained briefly to tell 10 synthetic stripe patterns apart (random
weights would leave near-tied logits, where any perturbation flips the top class and quantization
cannot be judged); its calibration and check data are 64 further pictures of those patterns. ``modelport edge tflite`` writes fp32, fp16, dynamic and int8 files,
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


CLASSES = 10


def pattern_images(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic pictures in MobileNetV2's range [-1, 1] and their classes: class k is a stripe
    pattern at angle k * 18 degrees (random frequency, phase, colour and noise), so that a briefly
    trained network has real margins between classes, as a trained one does."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    labels = rng.integers(0, CLASSES, count)
    images = []
    for label in labels:
        angle = np.pi * label / CLASSES
        wave = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(8, 14) + rng.uniform(0, 6))
        colour = rng.uniform(0.4, 1.0, 3)
        images.append(wave[..., None] * colour + rng.normal(0, 0.2, (size, size, 3)))
    return np.clip(np.stack(images), -1, 1).astype(np.float32), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--train", type=int, default=640, help="training pictures")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from modelport.edge.tflite import export_tflite
    from modelport.errors import ParityError
    from modelport.formats.tflite import TFLiteSession
    from tests import zoo_keras

    keras = zoo_keras._keras()
    model = keras.Sequential([keras.Input((args.size, args.size, 3), name="image"),
                              keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg",
                                                             input_shape=(args.size, args.size, 3)),
                              keras.layers.Dense(CLASSES, name="logits")])
    train, train_labels = pattern_images(args.train, args.size, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    began = time.perf_counter()
    history = model.fit(train, train_labels, batch_size=32, epochs=args.epochs, verbose=0)
    print(f"trained {args.epochs} epochs on {args.train} pictures in {time.perf_counter() - began:.0f} s, "
          f"accuracy {history.history['accuracy'][-1]:.2f}")
    images, _ = pattern_images(64, args.size, seed=2)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model.save(scratch / "mobilenet_v2.keras")
        from modelport.formats import open_model
        with open_model(scratch / "mobilenet_v2.keras") as session:  # the input's name as modelport sees it
            name = session.inputs[0].name
        began = time.perf_counter()
        try:
            result = export_tflite(scratch / "mobilenet_v2.keras", scratch / "bundle", quantize=MODES,
                                   calibration={name: images})
        except ParityError as failed:  # the bundle was written: measure it, the table says which failed
            result = failed.result
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
        print(f"\nMobileNetV2 {args.size}x{args.size} (briefly trained): TFLite bundle modes, LiteRT 1 thread batch 1, "
              f"median of {args.repeat} interleaved runs (bundle written and checked in {seconds:.0f} s)")
        print(f"{'model':<20}{'size MiB':>10}{'vs fp32':>9}{'latency ms':>12}{'vs Keras':>10}  check")
        print(f"{'keras (TF, fp32)':<20}{'':>10}{'':>9}{keras_ms:>12.2f}{1.0:>9.2f}x")
        for item in result.files:
            ms = medians[f"tflite {item.mode}"]
            worst = min(o.get("cosine") or 0.0 for o in item.report["outputs"])
            error = max(o.get("max_abs") or 0.0 for o in item.report["outputs"])
            top1 = item.report["outputs"][0].get("top1_agreement")
            verdict = "pass" if item.passed else "FAIL"
            print(f"{'tflite ' + item.mode:<20}{item.size / 2**20:>10.2f}{item.size / base_size:>8.2f}x"
                  f"{ms:>12.2f}{ms / keras_ms:>9.2f}x  {verdict} (max abs {error:.2g}, cosine {worst:.5f}"
                  f"{'' if top1 is None else f', top-1 {top1:.1%}'})")


if __name__ == "__main__":
    main()
