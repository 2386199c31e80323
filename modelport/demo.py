"""``modelport demo``: build two small models, then inspect, convert and check them, end to end.

Each step is the CLI command a user would type, run in this process and shown before it runs.
Each part of modelport (convert, validate, edge, serve) has its steps in ``demo_steps``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from rich.markup import escape

from ._console import console
from .errors import UsageError


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


def _build_keras_pixels(workdir: Path) -> None:
    """keras.applications' MobileNetV3Small at 96 px: it rescales pixels 0..255 itself (its first layer
    is a Rescaling), so its BatchNorm statistics are measured on such pixels, as a trained model's are
    (one training-mode pass with momentum 0)."""
    import numpy as np
    from .formats._tf import import_keras
    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(96, 96, 3), classes=10,
                                                classifier_activation=None)
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(np.random.default_rng(0).uniform(0, 255, (8, 96, 96, 3)).astype("float32"), training=True)
    model.save(workdir / "pixels.keras")


LENET = Path(__file__).resolve().parent / "data" / "lenet"  # trained; provenance in data/SOURCES.md


def _get_lenet(workdir: Path) -> None:
    import shutil
    target = workdir / "lenet"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("deploy.prototxt", "weights.caffemodel", "labels.txt"):
        shutil.copy(LENET / name, target / name)
    console.print(f"copied Caffe's trained MNIST LeNet to {escape(str(target))}")


MXNET_CNN = Path(__file__).resolve().parent / "data" / "mxnet_cnn"  # made by real MXNet 1.9.1; data/SOURCES.md


def _get_mxnet(workdir: Path) -> None:
    import shutil
    target = workdir / "mxnet_cnn"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("mx_cnn-symbol.json", "mx_cnn-0000.params"):
        shutil.copyfile(MXNET_CNN / name, target / name)


def _train_lightning(workdir: Path) -> None:
    import importlib.util
    if importlib.util.find_spec("lightning") is None:
        raise UsageError("this step trains a LightningModule, which needs Lightning", hint="pip install lightning")
    from .demo_lightning import train_checkpoint
    train_checkpoint(workdir / "classifier.ckpt")


def demo_flax():
    """A small Flax linen CNN with BatchNorm, as (module, variables): the demo's JAX factory
    (``modelport.demo:demo_flax``); NHWC images 16x16x3 -> 5 logits."""
    import jax
    import numpy as np
    from flax import linen as nn

    class FlaxCNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(8, (3, 3))(x)))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.gelu(nn.Conv(16, (3, 3), strides=2)(x))
            return nn.Dense(5)(x.mean(axis=(1, 2)))

    module = FlaxCNN()
    variables = module.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))
    rng = np.random.default_rng(0)  # trained-looking BatchNorm statistics
    stats = variables["batch_stats"]["BatchNorm_0"]
    variables["batch_stats"]["BatchNorm_0"] = {"mean": rng.uniform(-0.2, 0.2, stats["mean"].shape).astype(np.float32),
                                               "var": rng.uniform(0.5, 1.5, stats["var"].shape).astype(np.float32)}
    return module, variables


def _export_flax(workdir: Path) -> None:
    """The demo's Flax CNN as a jax.export artifact with a symbolic batch, serialized."""
    import jax
    import numpy as np
    module, variables = demo_flax()
    batch = jax.ShapeDtypeStruct(jax.export.symbolic_shape("batch,16,16,3"), np.float32)
    exported = jax.export.export(jax.jit(lambda image: module.apply(variables, image)))(batch)
    (workdir / "flax_cnn.jax").write_bytes(exported.serialize())


def _serve_and_query(workdir: Path) -> None:
    """Serve cnn.onnx (the same server as `modelport serve`, here in a thread on free ports) and ask
    it over each protocol what ONNX Runtime says directly."""
    import json
    import urllib.request

    import numpy as np
    from rich.table import Table

    from . import serving
    from .formats import open_model
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with open_model(workdir / "cnn.onnx") as session:
        expected = session.run({"image": image})["output"]

    def post(url: str, body: dict) -> dict:
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    with serving(workdir / "cnn.onnx", max_batch_size=8) as server:
        console.print(f"$ modelport serve {escape(str(workdir))}/cnn.onnx   [dim](REST on {server.url}, "
                      f"gRPC on {server.grpc_address})[/]")
        oip = post(f"{server.url}/v2/models/cnn/infer", {"inputs": [
            {"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": image.ravel().tolist()}]})
        tf_serving = post(f"{server.url}/v1/models/cnn:predict", {"instances": image.tolist()})
        answers = {"OIP v2 REST (JSON)": np.array(oip["outputs"][0]["data"], np.float32).reshape(1, -1),
                   "TF Serving REST :predict": np.array(tf_serving["predictions"], np.float32),
                   "OIP v2 gRPC (raw tensors)": _grpc_infer(server.grpc_address, "cnn", image)}
    table = Table("protocol", "top class", "max abs diff vs ONNX Runtime")
    for protocol, answer in answers.items():
        table.add_row(protocol, str(int(answer.argmax())), f"{float(np.abs(answer - expected).max()):.2e}")
    console.print(table)


def _build_classifier(workdir: Path) -> None:
    from .demo_classifier import build
    build(workdir)


PIPELINE = """\
# modelport pipeline: models x targets, each job the modelport command it stands for
output: pipeline_out/
models:
  - name: stripes
    source: stripes.pt2
    calibration: stripes
    mean: 127.5
    std: 127.5
    targets: [{target: onnx, mlflow: true}, "edge:tflite:fp32+int8", "edge:executorch:fp32"]
  - name: two_heads
    source: two_heads.keras
targets: [onnx, tflite]
"""


def _write_pipeline(workdir: Path) -> None:
    (workdir / "pipeline.yaml").write_text(PIPELINE)


def _build_decoder(workdir: Path) -> None:
    from .demo_decoder import demo_gpt2
    demo_gpt2(workdir / "decoder")


def _serve_and_generate(workdir: Path) -> None:
    """Serve the decoder folder and ask its generate endpoint, by text (the folder's tokenizer) and
    by token ids, next to what ONNX Runtime's loop makes directly (modelport.generate)."""
    import json
    import urllib.request

    from . import serving
    from .formats.hf_onnx import generate
    folder = workdir / "decoder_onnx"
    with serving(folder) as server:
        console.print(f"$ modelport serve {escape(str(folder))}   [dim](REST on {server.url})[/]")
        body = {"text_input": "t5 t6 t7", "parameters": {"max_tokens": 8}}
        request = urllib.request.Request(f"{server.url}/v2/models/decoder_onnx/generate", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            served = json.load(answer)
    console.print(f"POST /v2/models/decoder_onnx/generate {escape(json.dumps(body))}")
    console.print(f"  -> text_output {served['text_output']!r}, output_ids {served['output_ids']}")
    console.print(f"modelport.generate(folder, [5, 6, 7], 8) -> {generate(folder, [5, 6, 7], 8)}")


def _serve_with_shared_memory_and_cache(workdir: Path) -> None:
    """Serve the stripes classifier from a repository whose config turns the response cache on, on a
    server that lets clients pass tensors through shared memory: one request with its image in a
    shared memory region and its scores written to another, then the same request again, answered
    from the cache (the model's statistics say so)."""
    import json
    import shutil
    import urllib.request
    from multiprocessing import shared_memory

    import numpy as np

    from . import serving
    repository = workdir / "stripes_repository"
    (repository / "stripes" / "1").mkdir(parents=True, exist_ok=True)
    shutil.copy(workdir / "stripes.onnx", repository / "stripes" / "1" / "model.onnx")
    from .demo_classifier import CLASSES, MEAN, STD
    (repository / "stripes" / "config.pbtxt").write_text(
        "max_batch_size: 8\nresponse_cache { enable: true }\n"
        f'parameters {{ key: "image_mean" value: {{ string_value: "{MEAN}" }} }}\n'
        f'parameters {{ key: "image_std" value: {{ string_value: "{STD}" }} }}\n')
    (repository / "stripes" / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    photo = sorted((workdir / "stripes" / CLASSES[1]).glob("*.png"))[0]
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    regions = {"image": shared_memory.SharedMemory(create=True, size=image.nbytes),
               "scores": shared_memory.SharedMemory(create=True, size=3 * 4)}

    def post(url: str, body: dict) -> dict:
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
        return json.loads(text) if text else {}
    try:
        np.ndarray(image.shape, np.float32, buffer=regions["image"].buf)[...] = image
        with serving(repository, cache_bytes=1 << 20, allow_client_shm=True) as server:
            console.print(f"$ modelport serve {escape(str(repository))} --cache-size-mb 1 --allow-client-shm")
            for name, block in regions.items():
                post(f"{server.url}/v2/systemsharedmemory/region/{name}/register",
                     {"key": f"/{block.name}", "offset": 0, "byte_size": block.size})
            body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": list(image.shape), "parameters": {
                        "shared_memory_region": "image", "shared_memory_byte_size": image.nbytes}}],
                    "outputs": [{"name": "output", "parameters": {"shared_memory_region": "scores",
                                                                  "shared_memory_byte_size": 12}}]}
            for _ in range(2):
                post(f"{server.url}/v2/models/stripes/infer", body)
            with urllib.request.urlopen(f"{server.url}/v2/models/stripes/stats", timeout=60) as answer:
                stats = json.load(answer)["model_stats"][0]
            # Images in: the PNG file itself as a BYTES row, the top class asked for with its label.
            encoded = photo.read_bytes()
            header = json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1], "parameters": {
                "binary_data_size": len(encoded) + 4}}], "outputs": [{"name": "output", "parameters": {
                    "classification": 1}}]}).encode()
            request = urllib.request.Request(
                f"{server.url}/v2/models/stripes/infer", header + len(encoded).to_bytes(4, "little") + encoded,
                {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})
            with urllib.request.urlopen(request, timeout=60) as answer:
                top = json.loads(answer.read())["outputs"][0]["data"][0]
            post(f"{server.url}/v2/systemsharedmemory/unregister", {})
        scores = np.ndarray((1, 3), np.float32, buffer=regions["scores"].buf).copy()
        console.print(f"  scores read from shared memory: [{', '.join(f'{v:.3f}' for v in scores[0])}]; the model ran "
                      f"{stats['execution_count']} time(s) for 2 requests (cache hits: "
                      f"{stats['inference_stats']['cache_hit']['count']})")
        console.print(f"  {photo.parent.name}/{photo.name} posted as PNG bytes, decoded and normalized by the server: "
                      f"top class {top!r} (score:index:label)")
    finally:
        for block in regions.values():
            block.close()
            block.unlink()


def _grpc_infer(address: str, model: str, image):
    """One ModelInfer call as tritonclient.grpc makes it (raw_input_contents)."""
    import grpc
    import numpy as np

    from .serve.proto import grpc_service_pb2 as pb
    from .serve.proto import grpc_service_pb2_grpc as pb_grpc
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="image", datatype="FP32", shape=image.shape)
    request.raw_input_contents.append(image.tobytes())
    with grpc.insecure_channel(address) as channel:
        answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    return np.frombuffer(answer.raw_output_contents[0], np.float32).reshape(answer.outputs[0].shape)


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
        ("Again for images of any size (dynamic height and width, checked at two sizes), optimized by onnxslim",
         ["convert", "modelport.demo:demo_cnn", f"{w}/cnn_any_size.onnx", "--weights", f"{w}/cnn_weights.pt",
          "--input-shape", "image:1,3,height,width", "--optimize"]),
        ("Take the ONNX model on to TFLite (ONNX -> SavedModel -> TFLite, checked in TensorFlow and LiteRT), "
         "channels-last inside and out",
         ["convert", f"{w}/cnn.onnx", f"{w}/cnn.tflite", "--keep-io-layout", "nhwc"]),
        ("Bring the ONNX model back into PyTorch: a torch.export .pt2 (dynamic batch) checked in PyTorch against "
         "ONNX Runtime, plus cnn_from_onnx.py (editable torch.nn source) and its state_dict",
         ["convert", f"{w}/cnn.onnx", f"{w}/cnn_from_onnx.pt2", "--as-code"]),
        ("Package the ONNX CNN for a mobile app: a TFLite bundle with fp32 and fp16 files, each checked in LiteRT "
         "against the ONNX model, a manifest and golden data",
         ["edge", "tflite", f"{w}/cnn.onnx", f"{w}/cnn_tflite_bundle", "--quantize", "fp32,fp16"]),
        ("And for ONNX Runtime Mobile: model.ort with its operator config, checked in ONNX Runtime",
         ["edge", "ort", f"{w}/cnn.onnx", f"{w}/cnn_ort_bundle"]),
        ("And for browsers: a TF.js graph model with float16 weights, run in TF.js (WebAssembly) against the ONNX "
         "model; examples/tfjs-web/serve.py serves it with a page that classifies images",
         ["edge", "tfjs", f"{w}/cnn.onnx", f"{w}/cnn_tfjs_bundle", "--quantize", "float16"]),
        ("Serve the ONNX CNN (Open Inference Protocol v2 over REST and gRPC, TF Serving REST, dynamic batching) "
         "and ask it over each protocol", lambda: _serve_and_query(workdir)),
        ("Build a Keras model with two inputs and two outputs", lambda: _build_keras(workdir)),
        ("Inspect it", ["info", f"{w}/two_heads.keras"]),
        ("Convert it to ONNX; parity is checked against Keras",
         ["convert", f"{w}/two_heads.keras", f"{w}/two_heads.onnx", "--report", f"{w}/two_heads_parity.json"]),
        ("Build an image classifier that takes raw pixels (keras.applications MobileNetV3Small, whose first layer "
         "rescales 0..255 itself)", lambda: _build_keras_pixels(workdir)),
        ("Convert it: the check feeds pixels 0..255 because the model says so (the report's 'fed' line), and "
         "judges fp32 on each output's scale with the tolerance raised to the model's own rounding noise",
         ["convert", f"{w}/pixels.keras", f"{w}/pixels.onnx"]),
        ("Get Caffe's LeNet (trained on MNIST; shipped with modelport)",
         lambda: _get_lenet(workdir)),
        ("Convert LeNet to ONNX; parity is checked against OpenCV's Caffe runtime",
         ["convert", f"{w}/lenet/deploy.prototxt", f"{w}/lenet.onnx", "--weights", f"{w}/lenet/weights.caffemodel",
          "--report", f"{w}/lenet_parity.json"]),
        ("Get an MXNet model (symbol JSON + .params, made by MXNet 1.9.1; shipped with modelport)",
         lambda: _get_mxnet(workdir)),
        ("Convert it to ONNX without MXNet: modelport reads both files itself; parity is checked against its MXNet "
         "interpreter (held to real MXNet's outputs by the tests)",
         ["convert", f"{w}/mxnet_cnn", f"{w}/mxnet_cnn.onnx", "--input-shape", "data:1,3,32,32"]),
        ("Train a LightningModule for a few steps with lightning.Trainer and save its checkpoint",
         lambda: _train_lightning(workdir)),
        ("Convert the Lightning checkpoint to ONNX: read with weights_only=True, the model rebuilt by its class",
         ["convert", f"{w}/classifier.ckpt", f"{w}/classifier.onnx",
          "--factory", "modelport.demo_lightning:DemoClassifier"]),
        ("Convert a Flax CNN (linen module + variables) to ONNX through its jaxpr; parity is checked against JAX",
         ["convert", "modelport.demo:demo_flax", f"{w}/flax_cnn.onnx", "--input-shape", "image:1,16,16,3"]),
        ("Export the same CNN with jax.export (a serialized StableHLO artifact, batch symbolic)",
         lambda: _export_flax(workdir)),
        ("Convert the artifact to ONNX: no Python code needed, its shapes and weights are in the file",
         ["convert", f"{w}/flax_cnn.jax", f"{w}/flax_cnn_exported.onnx"]),
        ("Build a small GPT-2 (2 layers), train it for a few seconds to continue a fixed walk through its words, "
         "and save_pretrained it with its tokenizer", lambda: _build_decoder(workdir)),
        ("Convert the Hugging Face folder to an ONNX decoder folder with its key/value cache (the layout "
         "transformers.js loads), checked by greedy generation against transformers' generate, in ONNX Runtime "
         "and in transformers.js", ["convert", f"{w}/decoder", f"{w}/decoder_onnx", "--to", "hf-onnx"]),
        ("Serve the decoder folder and generate from text (the generate extension: the cache stays on the server)",
         lambda: _serve_and_generate(workdir)),
        ("Make a labelled image set (stripes in three orientations, class folders) and train a small CNN on it "
         "for a few seconds; save it as a torch.export .pt2", lambda: _build_classifier(workdir)),
        ("Convert the classifier to ONNX", ["convert", f"{w}/stripes.pt2", f"{w}/stripes.onnx"]),
        ("Quantize it to int8 for a server with ONNX Runtime's tools (static QDQ, calibrated on the images, checked "
         "on a held-out quarter of them)",
         ["quantize", f"{w}/stripes.onnx", f"{w}/stripes_int8.onnx", "--mode", "int8", "--calibration",
          f"{w}/stripes", "--mean", "127.5", "--std", "127.5"]),
        ("Measure what int8 costs on the labelled data: both models over every image, each one's accuracy, their "
         "agreement and the classes that flip",
         ["validate", f"{w}/stripes.onnx", f"{w}/stripes_int8.onnx", "--data", f"{w}/stripes", "--mean", "127.5",
          "--std", "127.5"]),
        ("Package the classifier for PyTorch's on-device runtime: ExecuTorch programs lowered to XNNPACK, fp32 and "
         "int8 (XNNPACK's quantizer, calibrated on the images), each run in ExecuTorch against PyTorch",
         ["edge", "executorch", f"{w}/stripes.pt2", f"{w}/stripes_executorch", "--quantize", "fp32,int8",
          "--calibration", f"{w}/stripes", "--mean", "127.5", "--std", "127.5"]),
        ("And for browsers: an ONNX Runtime Web bundle (model.onnx, ORT Web's WebAssembly files and a page that "
         "classifies an image; examples/ort-web/serve.py serves it), the model checked in ORT Web's wasm",
         ["edge", "web", f"{w}/stripes.onnx", f"{w}/stripes_web", "--inputs", f"{w}/stripes", "--mean", "127.5",
          "--std", "127.5"]),
        ("And for Intel CPUs: OpenVINO IRs with fp32 and fp16 weights and an int8 one (NNCF), each run by OpenVINO",
         ["edge", "openvino", f"{w}/stripes.onnx", f"{w}/stripes_openvino", "--quantize", "fp32,fp16,int8",
          "--calibration", f"{w}/stripes", "--mean", "127.5", "--std", "127.5"]),
        ("Quantize the decoder's MatMul weights to int4 (MatMulNBits, blocks of 32; converted to one ONNX graph "
         "first)", ["quantize", f"{w}/decoder", f"{w}/decoder_int4.onnx", "--mode", "int4-weights"]),
        ("Write a pipeline file (two models, each to its targets)", lambda: _write_pipeline(workdir)),
        ("Run it: every job the command it stands for, two at a time, each checked; results.json and an "
         "index.html dashboard in pipeline_out/", ["pipeline", f"{w}/pipeline.yaml", "--jobs", "2"]),
        ("Run it again: nothing changed, so every job is taken from the last run's records",
         ["pipeline", f"{w}/pipeline.yaml"]),
        ("The pipeline also wrote the classifier's ONNX as an MLflow model (mlflow: true): an MLflow folder is a "
         "source like any model file (mlflow.pyfunc.load_model loads it too)",
         ["info", f"{w}/pipeline_out/stripes/onnx/mlflow"]),
        ("Serve the classifier with Triton's response cache and shared memory: the image passed in a shared memory "
         "region, the scores written to another, the same request again answered from the cache; then a PNG file "
         "posted as it is (images in), labelled by the classification extension",
         lambda: _serve_with_shared_memory_and_cache(workdir)),
        ("Validate PyTorch against ONNX module by module; write an HTML report",
         ["validate", "modelport.demo:demo_cnn", f"{w}/cnn.onnx", "--weights", f"{w}/cnn_weights.pt",
          "--input-shape", "image:1,3,32,32", "--localize", "--report", f"{w}/cnn_validate.html"]),
    ]


def run_demo(workdir: Path, run_command: Callable[[list[str]], int]) -> None:
    """Run every step; ``run_command`` runs one CLI argument list and returns its exit code."""
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
        code = run_command(action)
        if code != 0:
            raise InternalError(f"demo step {number} ({title}) exited with {code}")
    elapsed = time.perf_counter() - start
    console.rule("[bold]done")
    console.print(
        f"In {elapsed:.0f}s the demo built a PyTorch CNN and a two-input, two-output Keras model, "
        f"converted both and a classifier of raw pixels (the CNN also for any image size, optimized, on to TFLite, back into PyTorch as a .pt2 with "
        f"editable source, to ORT Mobile and TF.js bundles, "
        f"and served it over REST and gRPC), Caffe's LeNet, an MXNet model, a Lightning checkpoint and a Flax CNN "
        f"to ONNX, a small trained GPT-2 to an ONNX decoder folder with its cache (greedy tokens checked against "
        f"transformers in ONNX Runtime and transformers.js, then served with the generate extension), checked each "
        f"against its own runtime (PyTorch, Keras, "
        f"OpenCV, JAX) on seeded inputs (batch 1 and 3), quantized a stripes classifier to int8 and measured what it "
        f"costs on labelled images (accuracy of both, agreement, flips), and validated the CNN's ONNX against PyTorch "
        f"module by module. "
        f"Models and reports are in {escape(str(workdir))}/; open cnn_validate.html in a browser.")
