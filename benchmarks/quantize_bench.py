"""Quantization for servers: fp32 against modelport quantize's int8, int8-dynamic and fp16, on models
trained briefly on learnable synthetic tasks, measured on held-out labelled data.

    .venv/bin/python benchmarks/quantize_bench.py [--runs 50]

Models (trained here in seconds, nothing downloaded):

- ``cnn``: a ResNet-style CNN (3 stages, 32-64-128 channels, 64x64 RGB) on ten classes of patterns
  (five stripe directions or a checkerboard, times a fine and a coarse period); 500 labelled images
  held out.
- ``bert``: a 4-layer BERT (hidden 128) classifying whether token 7 occurs in a sequence of 32
  random tokens (the others drawn from 10..63); 512 labelled sequences held out.

For each mode (and int4 weights for the BERT, whose MatMuls they are for): the file's size, ONNX
Runtime latency at batch 1 and batch 8 with 1 thread and with
all threads (median of ``--runs``), top-1 accuracy on the held-out set and agreement with fp32.
Ratios are against fp32 on the same machine, in the same run. Goal: int8 at least 1.5x faster than
fp32 with accuracy within 1 point. This CPU's int8 kernels are named from ORT's own report (its
MLAS platform flags) so a miss can be read against what the CPU offers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "quantize.json"
MODES = ("fp32", "int8", "int8-dynamic", "fp16")


def patterns_data(count: int, seed: int, size: int = 64):
    """Ten classes: five directions (horizontal, vertical, diagonal, anti-diagonal stripes and a
    checkerboard) times two periods (fine, 4-5 px; coarse, 8-10 px), random phase and colour, noise."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 10, count)
    y, x = np.mgrid[0:size, 0:size]
    images = []
    for kind in kinds:
        direction, coarse = kind % 5, kind // 5
        period = int(rng.integers(8, 11) if coarse else rng.integers(4, 6))
        phase, half = int(rng.integers(0, period)), period / 2
        if direction == 4:
            mask = (((y + phase) // half) + ((x + phase) // half)) % 2
        else:
            mask = (((y, x, x + y, x - y + size)[direction] + phase) // half) % 2
        images.append(np.clip(mask[..., None] * rng.integers(80, 255, 3) + rng.normal(0, 20, (size, size, 3)), 0, 255))
    pixels = (np.stack(images).astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 127.5
    return pixels, kinds


def cnn_model():
    import torch
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())
    torch.manual_seed(0)
    return nn.Sequential(block(3, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(128, 10))


def text_data(count: int, seed: int, length: int = 32, vocabulary: int = 64):
    rng = np.random.default_rng(seed)
    ids = rng.integers(10, vocabulary, (count, length))
    labels = rng.integers(0, 2, count)
    for row, label in zip(ids, labels):
        if label:
            row[rng.integers(0, length)] = 7
    return ids.astype(np.int64), labels


def bert_model():
    import torch
    import transformers
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=64, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                                     intermediate_size=512, max_position_embeddings=64, num_labels=2)
    return transformers.BertForSequenceClassification(config)


def train(model, data, steps: int, forward):
    import torch
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for step in range(steps):
        inputs, labels = data(step)
        loss = torch.nn.functional.cross_entropy(forward(model, inputs), torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def latency(path: Path, feed: dict, threads: int, runs: int) -> float:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def predictions(path: Path, feed: dict) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0].argmax(axis=-1)


def bench_model(name, onnx_path, calibration, held_feed, labels, batch_feed, root, runs, modes=MODES):
    from modelport.convert.quantize import quantize
    rows, reference = [], predictions(onnx_path, held_feed)
    for mode in modes:
        path = onnx_path if mode == "fp32" else root / f"{name}_{mode}.onnx"
        checked = None
        if mode != "fp32":
            result = quantize(onnx_path, path, mode=mode, calibration=calibration)
            checked = result.passed
        predicted = predictions(path, held_feed)
        one = {k: v[:1] for k, v in batch_feed.items()}
        rows.append({"model": name, "mode": mode, "mb": round(path.stat().st_size / 2**20, 2), "check": checked,
                     "b1_1t_ms": round(latency(path, one, 1, runs), 3), "b1_all_ms": round(latency(path, one, 0, runs), 3),
                     "b8_1t_ms": round(latency(path, batch_feed, 1, runs), 3),
                     "b8_all_ms": round(latency(path, batch_feed, 0, runs), 3),
                     "accuracy": round(float(np.mean(predicted == labels)), 4),
                     "agreement": round(float(np.mean(predicted == reference)), 4)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    import torch
    import modelport
    rows = []
    with tempfile.TemporaryDirectory(prefix="modelport-quantize-bench-") as scratch:
        root = Path(scratch)
        print("cnn: training ...", flush=True)
        cnn = train(cnn_model(), lambda step: patterns_data(32, 100 + step), 400,
                    lambda model, x: model(torch.from_numpy(x)))
        program = torch.export.export(cnn, (torch.zeros(2, 3, 64, 64),), dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, root / "cnn.pt2")
        modelport.convert(root / "cnn.pt2", root / "cnn.onnx")
        pixels, kinds = patterns_data(500, 1)
        name = "input"
        np.savez(root / "cnn_calibration.npz", **{name: patterns_data(64, 2)[0]})
        rows += bench_model("cnn", root / "cnn.onnx", root / "cnn_calibration.npz", {name: pixels}, kinds,
                            {name: pixels[:8]}, root, args.runs)
        print("bert: training ...", flush=True)
        bert = train(bert_model(), lambda step: text_data(32, 100 + step), 300,
                     lambda model, ids: model(input_ids=torch.from_numpy(ids)).logits)
        bert.save_pretrained(root / "bert")
        modelport.convert(root / "bert", root / "bert.onnx")
        ids, labels = text_data(512, 1)
        calibration_ids = text_data(64, 2)[0]
        np.savez(root / "bert_calibration.npz", input_ids=calibration_ids, attention_mask=np.ones_like(calibration_ids))
        rows += bench_model("bert", root / "bert.onnx", root / "bert_calibration.npz",
                            {"input_ids": ids, "attention_mask": np.ones_like(ids)}, labels,
                            {"input_ids": ids[:8], "attention_mask": np.ones_like(ids[:8])}, root, args.runs,
                            modes=MODES + ("int4-weights",))
    import onnxruntime as ort
    print(f"\nONNX Runtime {ort.__version__}; ratios against fp32 of the same model (>1: faster)")
    header = f"{'model':6} {'mode':13} {'MB':>6} {'check':>6} {'b1 1t ms':>9} {'b1 all ms':>9} {'b8 1t ms':>9} " \
             f"{'b8 all ms':>9} {'x b8 1t':>8} {'accuracy':>9} {'agreement':>9}"
    print(header)
    base = {r["model"]: r for r in rows if r["mode"] == "fp32"}
    for r in rows:
        ratio = base[r["model"]]["b8_1t_ms"] / r["b8_1t_ms"]
        check = "-" if r["check"] is None else "pass" if r["check"] else "FAIL"
        print(f"{r['model']:6} {r['mode']:13} {r['mb']:>6} {check:>6} {r['b1_1t_ms']:>9} {r['b1_all_ms']:>9} "
              f"{r['b8_1t_ms']:>9} {r['b8_all_ms']:>9} {ratio:>8.2f} {r['accuracy']:>9} {r['agreement']:>9}")
    flags = sorted(line.strip() for line in open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
                   if line.strip() in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512bw"))
    print(f"\nCPU int8-relevant flags: {', '.join(flags) or 'none of avx2/avx512/vnni/amx'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"onnxruntime": ort.__version__, "cpu_flags": flags, "rows": rows}, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
