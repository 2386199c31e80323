"""ONNX -> PyTorch on real models: converted from the CLI to a .pt2 (every hop checked), and the
program compared with ONNX Runtime by PyTorch itself, at batch sizes the trace never saw; the
module trains; --as-code gives source that computes the same; a round trip keeps the numbers."""
from __future__ import annotations

import importlib.util
import io
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests.light_models import LIGHT_MODELS, light_model_with_weights
from tests.parity import assert_outputs_match


def _ort(path, feeds: dict) -> dict:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


def _program_outputs(pt2, feeds: dict) -> dict:
    """Run a .pt2 with torch.export.load (no modelport code), outputs named by ONNX's names."""
    import json
    extra = {"modelport_names.json": ""}
    program = torch.export.load(str(pt2), extra_files=extra)
    names = json.loads(extra["modelport_names.json"])
    with torch.no_grad():
        result = program.module()(*[torch.from_numpy(feeds[n]) for n in names["inputs"]])
    if isinstance(result, dict):
        return {k: v.numpy() for k, v in result.items()}
    return {names["outputs"][0]: result.numpy()}


def _to_onnx(cli, factory: str, shape: str, path):
    result = cli("convert", f"tests.zoo_torch:{factory}", path, "--input-shape", shape, "--no-check")
    assert result.code == 0, result.err


def _feeds(path, batch: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in value.shape]
        shape = [d if isinstance(d, int) else 7 for d in shape]
        feeds[value.name] = rng.integers(0, 20, shape).astype(np.int64) if "int64" in value.type else \
            rng.standard_normal(shape).astype(np.float32)
    return feeds


def test_resnet18_converts_to_a_pt2_with_parity_and_a_dynamic_batch(cli, tmp_path):
    """The issue's own example: ResNet-18 (BatchNorm calibrated) -> ONNX -> .pt2, checked by the
    pipeline, then by ONNX Runtime vs the loaded program at batch 5 (traced at 2, dynamic in the
    ONNX). The weighted layers are nn modules named after the original's (so its state_dict keys
    carry over) and the .pt2 keeps the ONNX output name."""
    from modelport.convert.onnx_torch import to_module
    from tests.zoo_torch import resnet18_calibrated
    onnx_path, pt2 = tmp_path / "resnet18.onnx", tmp_path / "r18.pt2"
    _to_onnx(cli, "resnet18_calibrated", "image:1,3,224,224", onnx_path)
    result = cli("convert", onnx_path, pt2, "--json")
    assert result.code == 0, result.err
    hop = result.json()["hops"][0]
    assert hop["edge"] == "onnx->pytorch" and hop["parity"]["passed"] and hop["parity"]["batch_sizes"] == [1, 3]
    assert not result.json()["warnings"]  # names paired, no dim made static
    feeds = _feeds(onnx_path, batch=5)
    expected, got = _ort(onnx_path, feeds), _program_outputs(pt2, feeds)
    assert list(got) == list(expected)
    assert_outputs_match(expected, got)
    module = to_module(onnx_path)
    kinds = [type(m).__name__ for m in module.modules()]
    assert kinds.count("Conv2d") == 20 and kinds.count("Linear") == 1
    original = set(resnet18_calibrated().state_dict())
    assert {k for k in module.state_dict() if k.endswith("weight")} <= original


@pytest.mark.slow
@pytest.mark.parametrize("factory,shape,layers", [
    ("small_cnn", "image:1,3,32,32", {"Conv2d": 2, "Linear": 1}),
    ("mobilenet_v2", "image:1,3,224,224", {"Conv2d": 52}),
    ("gru_classifier", "sequence:1,7,8", {"GRU": 2}),
    ("lstm_tagger", "tokens:1,9:int64", {"LSTM": 1}),
    ("tiny_transformer", "x:1,7,32", {"Linear": 8}),
    ("attention_block", "x:1,3,32,32", {"ConvTranspose2d": 1, "InstanceNorm1d": 1})])
def test_pytorch_models_come_back_from_onnx(cli, tmp_path, factory, shape, layers):
    """PyTorch -> ONNX -> .pt2: CNNs, torch's GRU (linear_before_reset, so a real nn.GRU), an
    embedding + bidirectional LSTM, a TransformerEncoder and a block with GroupNorm (exported as
    InstanceNormalization), ConvTranspose,
    a bilinear resize and MultiheadAttention; each .pt2 against ONNX Runtime at a new batch size."""
    from modelport.convert.onnx_torch import to_module
    onnx_path, pt2 = tmp_path / f"{factory}.onnx", tmp_path / f"{factory}.pt2"
    _to_onnx(cli, factory, shape, onnx_path)
    result = cli("convert", onnx_path, pt2, "--samples", "1", "--json")
    assert result.code == 0, result.err
    assert result.json()["passed"] and not result.json()["warnings"]
    feeds = _feeds(onnx_path, batch=4)
    assert_outputs_match(_ort(onnx_path, feeds), _program_outputs(pt2, feeds))
    kinds = [type(m).__name__ for m in to_module(onnx_path).modules()]
    for kind, count in layers.items():
        assert kinds.count(kind) >= count, (kind, kinds)


@pytest.mark.slow
@pytest.mark.parametrize("factory", ["two_inputs_two_outputs", "cnn_batchnorm", "mobilenet_v2", "recurrent"])
def test_keras_models_reach_pytorch_through_onnx(cli, tmp_path, factory):
    """Keras -> ONNX (tf2onnx) -> .pt2, each hop checked: two inputs and outputs, BatchNorm +
    depthwise, MobileNetV2, LSTM + GRU (tf2onnx writes the GRU as a Loop of fixed length, unrolled
    here so that torch.export can trace it, with the batch still dynamic)."""
    from tests import zoo_keras
    source = tmp_path / f"{factory}.keras"
    getattr(zoo_keras, factory)().save(source)
    result = cli("convert", source, tmp_path / f"{factory}.pt2", "--via", "onnx", "--samples", "1",
                 "--relative-to", "scale", "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["keras->onnx", "onnx->pytorch"]
    assert result.json()["passed"] and not result.json()["warnings"]


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["lenet", "cifar10_quick", "cifar10_full_v1", "mtcnn_pnet", "mtcnn_onet"])
def test_trained_caffe_models_reach_pytorch(cli, tmp_path, folder):
    """Trained Caffe models: Caffe -> ONNX -> .pt2 (ceil-mode pooling, LRN, PReLU, several outputs),
    each hop checked (OpenCV's Caffe runtime, ONNX Runtime, PyTorch)."""
    from tests.convert.caffe.helpers import CAFFE_DATA
    model = CAFFE_DATA / folder
    result = cli("convert", model / "deploy.prototxt", tmp_path / f"{folder}.pt2", "--weights",
                 model / "weights.caffemodel", "--samples", "1", "--json")
    assert result.code == 0, result.err
    assert [h["edge"] for h in result.json()["hops"]] == ["caffe->onnx", "onnx->pytorch"]
    assert result.json()["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_onnx_light_models_reach_pytorch(cli, tmp_path, name):
    """The model-zoo graphs onnx ships (opset 9, IR 3: LRN, Sum, Concat, grouped convs, channel
    shuffles) with random weights, then the .pt2 against ONNX Runtime directly."""
    source, target = tmp_path / f"{name}.onnx", tmp_path / f"{name}.pt2"
    light_model_with_weights(name, source)
    result = cli("convert", source, target, "--samples", "1", "--fixed-batch", "--relative-to", "scale", "--json")
    assert result.code == 0, result.err
    feeds = _feeds(source, batch=1)
    expected = _ort(source, feeds)
    assert next(iter(expected.values())).std() > 0.1  # logits that really depend on the input
    got = _program_outputs(target, feeds)
    assert_outputs_match(expected, {name: got[list(got)[0]] for name in expected}, relative_to="scale")


@pytest.mark.slow
def test_round_trip_torch_onnx_torch_onnx_keeps_the_numbers(cli, tmp_path):
    """ResNet-18: PyTorch -> ONNX -> .pt2 -> ONNX again; the last ONNX against the first in ONNX
    Runtime, and the model's own PyTorch output against both."""
    from tests.zoo_torch import resnet18_calibrated
    first, pt2, second = tmp_path / "a.onnx", tmp_path / "b.pt2", tmp_path / "c.onnx"
    _to_onnx(cli, "resnet18_calibrated", "image:1,3,224,224", first)
    assert cli("convert", first, pt2, "--samples", "1").code == 0
    result = cli("convert", pt2, second, "--samples", "1", "--json")
    assert result.code == 0, result.err
    feeds = _feeds(first, batch=2)
    original = resnet18_calibrated()(torch.from_numpy(feeds["image"])).detach().numpy()
    expected = _ort(first, feeds)
    again = _ort(second, {ort.InferenceSession(str(second)).get_inputs()[0].name: feeds["image"]})
    assert_outputs_match({"logits": original}, {"logits": next(iter(expected.values()))})
    assert_outputs_match({"logits": original}, {"logits": next(iter(again.values()))})


def _bn_cnn() -> torch.nn.Module:
    from tests import zoo_torch
    torch.manual_seed(0)  # the same weights every time: the test compares with the original
    return zoo_torch._calibrated(zoo_torch.SmallCNN(classes=4), (8, 3, 16, 16))


def _bn_cnn_onnx() -> bytes:
    """A small CNN with its BatchNorm kept as BatchNormalization nodes (calibrated statistics)."""
    buffer = io.BytesIO()
    torch.onnx.export(_bn_cnn(), (torch.randn(1, 3, 16, 16),), buffer, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}}, dynamo=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    return buffer.getvalue()


def test_a_converted_cnn_fine_tunes(tmp_path):
    """to_module gives an nn.Module that trains: real Conv2d/BatchNorm2d/Linear layers named as in
    the original PyTorch model, the same gradients as the original's for every parameter (BatchNorm
    in training mode included), and SGD steps that lower the loss on a fixed batch."""
    from modelport.convert.onnx_torch import to_module
    path = tmp_path / "cnn.onnx"
    path.write_bytes(_bn_cnn_onnx())
    model = to_module(onnx.load(str(path)))
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Conv2d", "BatchNorm2d", "Linear"} <= kinds
    torch.manual_seed(0)
    images = torch.randn(16, 3, 16, 16)
    labels = torch.randint(0, 4, (16,))
    with torch.no_grad():  # the converted model computes what ONNX Runtime does before training
        assert_outputs_match(_ort(path, {"image": images.numpy()}), {"logits": model(images).numpy()})
    original = _bn_cnn().train()
    model.train()
    for net in (original, model):
        torch.nn.functional.cross_entropy(net(images), labels).backward()
    theirs = {name: p.grad for name, p in original.named_parameters()}
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"no gradient reaches {name}"
        torch.testing.assert_close(parameter.grad, theirs[name], rtol=1e-4, atol=1e-5)
    assert len(theirs) == len(list(model.parameters()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.95 * losses[0], losses


def test_as_code_writes_source_that_computes_the_same(cli, tmp_path):
    """--as-code: NAME.py (torch.nn source) and NAME.pth beside NAME.pt2; the class loads the
    weights with weights_only=True and matches ONNX Runtime."""
    path = tmp_path / "cnn.onnx"
    path.write_bytes(_bn_cnn_onnx())
    result = cli("convert", path, tmp_path / "my_cnn.pt2", "--as-code", "--json")
    assert result.code == 0, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.onnx", "my_cnn.pt2", "my_cnn.pth", "my_cnn.py"]
    source = (tmp_path / "my_cnn.py").read_text()
    assert "nn.Conv2d(3, 8" in source and "nn.BatchNorm2d(8" in source and "modelport" not in source.split('"""', 2)[2]
    spec = importlib.util.spec_from_file_location("my_cnn", tmp_path / "my_cnn.py")
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    model = generated.MyCnn()
    model.load_state_dict(torch.load(tmp_path / "my_cnn.pth", weights_only=True))
    model.eval()
    feeds = _feeds(path, batch=3)
    with torch.no_grad():
        got = model(torch.from_numpy(feeds["image"])).numpy()
    assert_outputs_match(_ort(path, feeds), {"logits": got})


def test_as_code_is_refused_for_other_targets(cli, tmp_path):
    path = tmp_path / "cnn.onnx"
    path.write_bytes(_bn_cnn_onnx())
    result = cli("convert", path, tmp_path / "m.tflite", "--as-code")
    assert result.code == 2 and "--as-code" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.onnx"]


def test_destination_must_be_pt2(cli, tmp_path):
    path = tmp_path / "cnn.onnx"
    path.write_bytes(_bn_cnn_onnx())
    result = cli("convert", path, tmp_path / "m.pt", "--to", "pytorch")
    assert result.code == 2 and ".pt2" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.onnx"]


def test_unsupported_op_is_exit_2_naming_op_opset_and_node(cli, tmp_path, monkeypatch):
    """An op without a handler (Relu's taken out of the registry for this test): exit 2, nothing written."""
    from onnx import TensorProto, helper
    from modelport.convert.onnx_torch import OPS
    for key in [k for k in OPS.keys() if k.op_type == "Relu"]:
        monkeypatch.delitem(OPS._handlers, key)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="pick_one")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    source = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(source))
    result = cli("convert", source, tmp_path / "out.pt2")
    assert result.code == 2, result.err
    assert "'Relu'" in result.err and "opset 19" in result.err and "pick_one" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relu.onnx"]


def test_python_api(tmp_path):
    """modelport.convert(...) to a .pt2, and modelport.convert.onnx_torch.to_module(...) as an nn.Module."""
    import modelport
    from modelport.convert.onnx_torch import to_module
    path = tmp_path / "cnn.onnx"
    path.write_bytes(_bn_cnn_onnx())
    result = modelport.convert(path, tmp_path / "cnn.pt2")
    assert result.passed and result.hops[0].edge == "onnx->pytorch"
    assert isinstance(to_module(onnx.load(str(path))), torch.nn.Module)
    assert "torch" in sys.modules
