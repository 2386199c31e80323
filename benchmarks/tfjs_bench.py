"""TF.js bundles side by side: size and TF.js latency per weight encoding, with and without
modelport's TF.js rewrites, against the same model in ONNX Runtime in-process (the limit).

    .venv/bin/python benchmarks/tfjs_bench.py [--repeat 30]

The model is PyTorch MobileNetV2 (BatchNorm statistics calibrated, so its logits are not tied)
exported to ONNX; ``modelport edge tfjs`` plans it ONNX -> SavedModel -> TF.js and checks each
bundle in TF.js against ONNX Runtime. Latency is TF.js's own execution time of one 224x224
image in Node with the WebAssembly backend (SIMD, one thread, as a browser without cross-origin
isolation runs it), median over ``--repeat`` runs after a warm-up, measured inside the runner so
the Python <-> Node transfer is not counted; ONNX Runtime runs with one intra-op thread.
(pip ``tensorflowjs`` cannot be installed beside TensorFlow 2.21, so it is not a peer here.)
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TIMER = """
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs'; import path from 'node:path';
console.log = console.warn = () => {};
const [dir, repeat] = [process.argv[2], Number(process.argv[3])];
await tf.setBackend('wasm'); await tf.ready();
const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json')));
const buffers = [], specs = [];
for (const group of json.weightsManifest) { for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p))); specs.push(...group.weights); }
const data = Buffer.concat(buffers);
const model = await tf.loadGraphModel({load: async () => ({modelTopology: json.modelTopology, format: json.format,
  signature: json.signature, weightSpecs: specs, weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)})});
const x = tf.randomUniform([1, 224, 224, 3]);
const times = [];
for (let i = 0; i <= repeat; i++) {
  const began = performance.now(); const y = model.execute(x); await y.data(); y.dispose();
  if (i > 0) times.push(performance.now() - began);
}
times.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({median: times[Math.floor(times.length / 2)]}) + '\\n');
"""


def tfjs_latency(bundle: Path, repeat: int) -> float:
    runner = REPO / "modelport" / "edge" / "tfjs_runner"
    script = runner / ".bench_timer.mjs"  # beside node_modules, so that the imports resolve
    script.write_text(TIMER)
    try:
        out = subprocess.run(["node", str(script), str(bundle), str(repeat)], capture_output=True, text=True, check=True)
    finally:
        script.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])["median"]


def ort_latency(onnx_path: Path, repeat: int) -> float:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)}
    session.run(None, feed)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    import modelport
    from modelport.edge import tfjs_rewrites
    from modelport.errors import ParityError
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        onnx_path = scratch / "mobilenet_v2.onnx"
        subprocess.run([sys.executable, "-m", "modelport.cli", "convert", "tests.zoo_torch:mobilenet_v2", str(onnx_path),
                        "--input-shape", "image:1,3,224,224"], cwd=REPO, check=True, capture_output=True)
        limit = ort_latency(onnx_path, args.repeat)
        rows = []
        rewrites = dict(tfjs_rewrites.REWRITES)
        for label, mode, rewrite in (("float32, no rewrites", "float32", False), ("float32", "float32", True),
                                     ("float16", "float16", True), ("uint16", "uint16", True), ("uint8", "uint8", True)):
            tfjs_rewrites.REWRITES.clear()
            tfjs_rewrites.REWRITES.update(rewrites if rewrite else {})
            out = scratch / label.replace(", ", "_").replace(" ", "_")
            try:
                result = modelport.export_tfjs(onnx_path, out, quantize=mode)
            except ParityError as failed:  # the bundle is written; its figures are still worth a row
                result = failed.result
            (entry,) = result.files
            worst = min(o["cosine"] for o in entry.report["outputs"])
            error = max(o["max_abs"] for o in entry.report["outputs"])
            rows.append((label, entry.size / 2**20, tfjs_latency(out, args.repeat), entry.passed, worst, error))
        tfjs_rewrites.REWRITES.update(rewrites)
    print(f"MobileNetV2 224x224, batch 1, 1 thread; ONNX Runtime in-process: {limit:.2f} ms\n")
    print(f"{'bundle':<22}{'MiB':>8}{'TF.js wasm ms':>15}{'x ORT':>8}  check vs ONNX Runtime")
    for label, size, latency, passed, cosine, error in rows:
        print(f"{label:<22}{size:>8.2f}{latency:>15.2f}{latency / limit:>8.2f}  "
              f"{'pass' if passed else 'FAIL'} (max abs {error:.2g}, cosine {cosine:.6f})")
    base = rows[0][2]
    print(f"\nmodelport's TF.js rewrites: {base / rows[1][2]:.1f}x faster than the plain graph")


if __name__ == "__main__":
    main()
