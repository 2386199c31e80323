"""``modelport demo``: build two small models, then inspect, convert and check them, end to end.

Each step is the CLI command a user would type, run in this process and shown before it runs.
Later parts of modelport (edge, serve) add their steps to ``demo_steps``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from rich.markup import escape

from ._console import console


def demo_cnn():
    """A small PyTorch CNN with BatchNorm: the demo's factory (``modelport.demo:demo_cnn``)."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return model.eval()


def _build_torch(workdir: Path) -> None:
    import torch
    model = demo_cnn()
    for module in model.modules():  # trained-looking BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), workdir / "cnn_weights.pt")


def _build_keras(workdir: Path) -> None:
    from .formats._tf import import_keras
    keras = import_keras()
    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), name="image")
    meta = keras.Input((4,), name="meta")
    x = keras.layers.Conv2D(8, 3, activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, meta])
    model = keras.Model([image, meta], [keras.layers.Dense(5, name="logits")(x),
                                        keras.layers.Dense(1, name="quality")(x)])
    model.save(workdir / "two_heads.keras")


LENET_PROTOTXT = """name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape: { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 20 kernel_size: 5 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 50 kernel_size: 5 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1" inner_product_param { num_output: 500 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""


def _get_lenet(workdir: Path) -> None:
    import shutil
    target = workdir / "lenet"
    target.mkdir(parents=True, exist_ok=True)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "caffe" / "lenet"
    if (shared / "weights.caffemodel").is_file():
        for name in ("deploy.prototxt", "weights.caffemodel"):
            shutil.copy(shared / name, target / name)
        console.print(f"copied the trained LeNet from {escape(str(shared))}")
        return
    from .convert.caffe.writer import write_random_caffemodel
    (target / "deploy.prototxt").write_text(LENET_PROTOTXT)
    write_random_caffemodel(target / "deploy.prototxt", target / "weights.caffemodel")
    console.print("wrote LeNet's definition with random weights (../shared/models/caffe/lenet not found)")


def demo_steps(workdir: Path) -> list[tuple[str, Callable[[], None] | list[str]]]:
    """(title, action) pairs; an action is a CLI argument list or a function."""
    w = str(workdir)
    return [
        ("Build a PyTorch CNN (random weights) and save its state_dict", lambda: _build_torch(workdir)),
        ("Inspect it", ["info", "modelport.demo:demo_cnn", "--weights", f"{w}/cnn_weights.pt",
                        "--input-shape", "image:1,3,32,32"]),
        ("Convert it to ONNX; parity is checked against PyTorch",
         ["convert", "modelport.demo:demo_cnn", f"{w}/cnn.onnx", "--weights", f"{w}/cnn_weights.pt",
          "--input-shape", "image:1,3,32,32", "--report", f"{w}/cnn_parity.json"]),
        ("Inspect the ONNX model", ["info", f"{w}/cnn.onnx"]),
        ("Build a Keras model with two inputs and two outputs", lambda: _build_keras(workdir)),
        ("Inspect it", ["info", f"{w}/two_heads.keras"]),
        ("Convert it to ONNX; parity is checked against Keras",
         ["convert", f"{w}/two_heads.keras", f"{w}/two_heads.onnx", "--report", f"{w}/two_heads_parity.json"]),
        ("Get Caffe's LeNet (trained weights from ../shared, else random ones from modelport's writer)",
         lambda: _get_lenet(workdir)),
        ("Convert LeNet to ONNX; parity is checked against OpenCV's Caffe runtime",
         ["convert", f"{w}/lenet/deploy.prototxt", f"{w}/lenet.onnx", "--weights", f"{w}/lenet/weights.caffemodel",
          "--report", f"{w}/lenet_parity.json"]),
        ("Validate PyTorch against ONNX module by module; write an HTML report",
         ["validate", "modelport.demo:demo_cnn", f"{w}/cnn.onnx", "--weights", f"{w}/cnn_weights.pt",
          "--input-shape", "image:1,3,32,32", "--localize", "--report", f"{w}/cnn_validate.html"]),
    ]


def run_demo(workdir: Path) -> None:
    from .cli import main
    from .errors import InternalError
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    steps = demo_steps(workdir)
    for number, (title, action) in enumerate(steps, 1):
        console.rule(f"[bold]{number}/{len(steps)}[/] {escape(title)}")
        if callable(action):
            action()
            continue
        console.print(f"[dim]$ modelport {escape(' '.join(action))}[/]")
        code = main(action)
        if code != 0:
            raise InternalError(f"demo step {number} ({title}) exited with {code}")
    elapsed = time.perf_counter() - start
    console.rule("[bold]done")
    console.print(
        f"In {elapsed:.0f}s the demo built a PyTorch CNN and a two-input, two-output Keras model, "
        f"converted both and Caffe's LeNet to ONNX, checked each against its own runtime (PyTorch, Keras, "
        f"OpenCV) on seeded inputs (batch 1 and 3), and validated the CNN's ONNX against PyTorch module by module. "
        f"Models and reports are in {escape(str(workdir))}/; open cnn_validate.html in a browser.")
