"""modelport pipeline against a shell loop of single modelport commands: 24 jobs, side by side.

    .venv/bin/python benchmarks/pipeline_bench.py [--models 8] [--skip-ray]   (make bench-pipeline)

Eight small image classifiers (four Keras .keras files, four PyTorch .pt2 programs, each a different
architecture, trained briefly on edge_bench.py's stripe patterns so that their checks judge real
margins) x three targets: ONNX, TFLite fp32 (convert) and TFLite int8 (edge tflite, calibrated on 64
pictures of the task) = 24 jobs. Measured on this machine, one after the other:

- the shell loop: a bash script of the 24 ``modelport`` commands the pipeline's jobs stand for
  (the very argument lists), one after the other, each paying its own interpreter start and imports;
- ``modelport pipeline`` with ``--jobs 1`` and ``--jobs 2`` (cold: each into a fresh output folder);
- the same pipeline on a local Ray head with 2 CPUs (started on 127.0.0.1 here, stopped after);
- a second run of the ``--jobs 1`` pipeline on its warm cache.

Throughput per core is jobs / (wall seconds x cores used): 1 for the loop and ``--jobs 1``, 2 for
``--jobs 2`` and Ray. Every run must agree with the others job by job (pass or fail). Results go to
benchmarks/results/pipeline.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edge_bench import CLASSES, pattern_images  # noqa: E402

SIZE = 32
RESULTS = REPO / "benchmarks" / "results" / "pipeline.json"


# -- the models ---------------------------------------------------------------------------------------

def keras_models():
    from tests import zoo_keras
    keras = zoo_keras._keras()
    layers = keras.layers

    def plain():
        return keras.Sequential([keras.Input((SIZE, SIZE, 3), name="image"),
                                 layers.Conv2D(16, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
                                 layers.MaxPooling2D(), layers.Conv2D(32, 3, padding="same"), layers.ReLU(),
                                 layers.GlobalAveragePooling2D(), layers.Dense(CLASSES, name="logits")])

    def separable():
        return keras.Sequential([keras.Input((SIZE, SIZE, 3), name="image"),
                                 layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
                                 layers.SeparableConv2D(32, 3, padding="same", activation="relu"),
                                 layers.SeparableConv2D(48, 3, strides=2, padding="same", activation="relu"),
                                 layers.GlobalAveragePooling2D(), layers.Dense(CLASSES, name="logits")])

    def residual():
        image = keras.Input((SIZE, SIZE, 3), name="image")
        x = layers.Conv2D(24, 3, padding="same", activation="relu")(image)
        y = layers.Conv2D(24, 3, padding="same")(x)
        y = layers.BatchNormalization()(y)
        x = layers.ReLU()(layers.Add()([x, y]))
        x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
        return keras.Model(image, layers.Dense(CLASSES, name="logits")(layers.GlobalAveragePooling2D()(x)))

    def wide():
        return keras.Sequential([keras.Input((SIZE, SIZE, 3), name="image"),
                                 layers.Conv2D(48, 5, strides=2, padding="same", activation="swish"),
                                 layers.Conv2D(64, 3, strides=2, padding="same", activation="relu6"),
                                 layers.Flatten(), layers.Dropout(0.1), layers.Dense(64, activation="relu"),
                                 layers.Dense(CLASSES, name="logits")])
    return {"keras_plain": plain, "keras_separable": separable, "keras_residual": residual, "keras_wide": wide}


def torch_models():
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1), nn.BatchNorm2d(24))
            self.head = nn.Linear(24, CLASSES)

        def forward(self, image):
            x = self.stem(image)
            x = torch.relu(x + self.block(x))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def plain():
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(32, CLASSES))

    def depthwise():
        return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Hardswish(),
                             nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1), nn.ReLU6(),
                             nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(48, CLASSES))

    def mlp_mixer():
        return nn.Sequential(nn.Conv2d(3, 32, 4, stride=4), nn.Flatten(2), nn.LayerNorm(64), nn.Linear(64, 64),
                             nn.GELU(), nn.Flatten(), nn.Linear(32 * 64, CLASSES))
    return {"torch_plain": plain, "torch_depthwise": depthwise, "torch_residual": Residual, "torch_mixer": mlp_mixer}


def build(folder: Path, count: int, train: int, epochs: int) -> list[dict]:
    """Train and save the models; returns the pipeline's model entries."""
    import torch
    images, labels = pattern_images(train, SIZE, seed=1)
    calibration, _ = pattern_images(64, SIZE, seed=2)
    np.savez(folder / "nhwc.npz", image=calibration)
    np.savez(folder / "nchw.npz", image=calibration.transpose(0, 3, 1, 2).copy())
    entries = []
    makers = [*keras_models().items(), *torch_models().items()]
    makers = [makers[i] for i in sorted(range(len(makers)), key=lambda i: (i % 4, i))][:count]  # mixed when fewer
    for name, make in makers:
        began = time.perf_counter()
        torch.manual_seed(0)
        model = make()
        if name.startswith("keras"):
            import keras
            model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            accuracy = model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0).history["accuracy"][-1]
            model.save(folder / f"{name}.keras")
            entries.append({"name": name, "source": f"{name}.keras", "calibration": "nhwc.npz"})
        else:
            accuracy = _train_torch(model, images.transpose(0, 3, 1, 2), labels, epochs)

            class Named(torch.nn.Module):  # the input is called "image", as the calibration file says
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, image):
                    return self.inner(image)
            example = torch.from_numpy(calibration[:2].transpose(0, 3, 1, 2).copy())
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.export.export(Named(model.eval()), (example,), dynamic_shapes={"image": {0: batch}})
            torch.export.save(program, str(folder / f"{name}.pt2"))
            entries.append({"name": name, "source": f"{name}.pt2", "calibration": "nchw.npz"})
        print(f"  {name}: trained to {accuracy:.2f} in {time.perf_counter() - began:.0f} s", flush=True)
    return entries


def _train_torch(model, images: np.ndarray, labels: np.ndarray, epochs: int) -> float:
    import torch
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = torch.from_numpy(images.copy()), torch.from_numpy(labels)
    model.train()
    correct = 0
    for _ in range(epochs):
        correct = 0
        for start in range(0, len(x), 32):
            logits = model(x[start:start + 32])
            loss = torch.nn.functional.cross_entropy(logits, y[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == y[start:start + 32]).sum())
    model.eval()
    return correct / len(x)


def write_pipeline(folder: Path, entries: list[dict], output: str) -> Path:
    lines = [f"output: {output}/", "targets: [onnx, tflite, 'edge:tflite:int8']", "models:"]
    for entry in entries:
        lines += [f"  - name: {entry['name']}", f"    source: {entry['source']}",
                  f"    calibration: {entry['calibration']}"]
    path = folder / f"{output}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the runs ------------------------------------------------------------------------------------------

def modelport(*args, cwd: Path, env=None) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "modelport.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env)
    return time.perf_counter() - began, done


def run_pipeline(folder: Path, entries, output: str, *extra) -> tuple[float, dict]:
    seconds, done = modelport("pipeline", write_pipeline(folder, entries, output), "--json", *extra, cwd=folder)
    if done.returncode not in (0, 1):
        raise SystemExit(f"pipeline {output} exited {done.returncode}:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    return seconds, {f"{j['model']}/{j['target']}": j["status"] for j in summary["jobs"]} | {"_cached": summary["cached"]}


def run_loop(folder: Path, entries) -> tuple[float, dict]:
    """The pipeline's own jobs as a bash script of single modelport commands, run one after the other."""
    import shlex

    from modelport.pipeline.runner import job_command
    from modelport.pipeline.spec import load
    pipeline = load(write_pipeline(folder, entries, "loop"))
    out = folder / "loop"
    script = ["#!/usr/bin/env bash", "codes=()"]
    for job in pipeline.jobs:
        artifact = out / job.output
        artifact.parent.mkdir(parents=True, exist_ok=True)
        command = job_command(job.argv, job.target.kind, artifact, out / job.model / job.target.folder)
        command = [c for c in command if c != "--json"]
        script.append(f"{shlex.quote(sys.executable)} -m modelport.cli {shlex.join(command)} >/dev/null 2>&1; "
                      "codes+=($?)")
    script.append('echo "${codes[@]}"')
    (folder / "loop.sh").write_text("\n".join(script) + "\n")
    began = time.perf_counter()
    done = subprocess.run(["bash", str(folder / "loop.sh")], cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    codes = [int(c) for c in done.stdout.split()]
    status = {0: "pass", 1: "fail"}
    return seconds, {f"{job.model}/{job.target.text}": status.get(code, "error")
                     for job, code in zip(pipeline.jobs, codes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--train", type=int, default=1024, help="training pictures")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="modelport-pipeline-bench-"))
    try:
        print(f"building {args.models} models in {folder}", flush=True)
        entries = build(folder, args.models, args.train, args.epochs)
        jobs = 3 * len(entries)
        runs: dict[str, tuple[float, dict, int]] = {}
        print(f"shell loop of {jobs} modelport commands ...", flush=True)
        seconds, statuses = run_loop(folder, entries)
        runs["shell loop (1 job at a time)"] = (seconds, statuses, 1)
        for name, output, extra, cores in (("pipeline --jobs 1", "jobs1", ("--jobs", "1"), 1),
                                           ("pipeline --jobs 2", "jobs2", ("--jobs", "2"), 2)):
            print(f"{name} ...", flush=True)
            seconds, statuses = run_pipeline(folder, entries, output, *extra)
            runs[name] = (seconds, statuses, cores)
        if not args.skip_ray:
            from tests.ray_head import local_head
            with local_head(cpus=2) as address:
                print("pipeline --ray (local head, 2 CPUs) ...", flush=True)
                seconds, statuses = run_pipeline(folder, entries, "ray", "--ray", address)
                runs["pipeline --ray (2 CPUs)"] = (seconds, statuses, 2)
        print("pipeline --jobs 1 again, on its warm cache ...", flush=True)
        warm, warm_statuses = run_pipeline(folder, entries, "jobs1", "--jobs", "1")
        report(runs, warm, warm_statuses, jobs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(runs: dict, warm: float, warm_statuses: dict, jobs: int) -> None:
    loop_seconds, loop_statuses, _ = runs["shell loop (1 job at a time)"]
    reference = {k: v for k, v in loop_statuses.items()}
    loop_rate = jobs / loop_seconds
    rows = []
    print(f"\n{jobs} jobs ({jobs // 3} models x ONNX, TFLite fp32, TFLite int8), {os.cpu_count()} cores\n")
    print("| run | wall s | jobs passed | jobs / min / core | per core vs shell loop | same verdicts |")
    print("|---|---:|---:|---:|---:|---|")
    first = runs["pipeline --jobs 1"][0]
    for name, (seconds, statuses, cores) in runs.items():
        clean = {k: v for k, v in statuses.items() if not k.startswith("_")}
        rate = jobs / seconds / cores
        same = clean == reference
        passed = sum(v == "pass" for v in clean.values())
        rows.append({"run": name, "seconds": round(seconds, 1), "cores": cores, "passed": passed,
                     "jobs_per_min_per_core": round(60 * rate, 2), "vs_loop": round(rate / loop_rate, 2),
                     "same_verdicts": same})
        print(f"| {name} | {seconds:.1f} | {passed}/{jobs} | {60 * rate:.2f} | {rate / loop_rate:.2f}x | "
              f"{'yes' if same else 'NO'} |")
    cached = warm_statuses.get("_cached", 0)
    warm_same = {k: v for k, v in warm_statuses.items() if not k.startswith("_")} == reference
    print(f"| pipeline --jobs 1, warm cache | {warm:.1f} | {cached}/{jobs} from the records | - | - | "
          f"{'yes' if warm_same else 'NO'} |")
    print(f"\nwarm rerun: {100 * warm / first:.1f} % of the first run's time (goal < 2 %)")
    differing = sorted(k for k, v in reference.items() if v != "pass")
    if differing:
        print("jobs that did not pass (in the loop): " + ", ".join(f"{k} ({reference[k]})" for k in differing))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"jobs": jobs, "cores": os.cpu_count(), "runs": rows,
                                   "warm": {"seconds": round(warm, 2), "cached": cached,
                                            "percent_of_first": round(100 * warm / first, 2), "same_verdicts": warm_same},
                                   "loop_verdicts": reference,
                                   "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n")
    print(f"results in {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
