"""onnx's light models (the model-zoo graphs onnx ships in its package, weights stripped) with
seeded random weights, for the ONNX converters' tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

LIGHT_MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
                "squeezenet", "zfnet512"]


def _weights_for(consumer, index: int, shape: list[int], rng) -> np.ndarray:
    """Random weights of the kind the consuming op expects: He-scaled filters and matrices,
    BatchNorm statistics near identity, small biases (so that activations stay of order one)."""
    if consumer.op_type == "Conv" and index == 1:
        return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
    if consumer.op_type == "Gemm" and index == 1:
        trans_b = any(a.name == "transB" and a.i for a in consumer.attribute)
        return rng.standard_normal(shape) * np.sqrt(1.0 / shape[1 if trans_b else 0])
    if consumer.op_type == "BatchNormalization":
        low, high = {1: (0.8, 1.2), 4: (0.5, 1.5)}.get(index, (-0.1, 0.1))
        return rng.uniform(low, high, shape)
    if consumer.op_type == "Mul":
        return rng.uniform(0.8, 1.2, shape)
    return rng.uniform(-0.1, 0.1, shape)


def light_model_with_weights(name: str, target):
    """onnx's light model ``name`` with its ConstantOfShape fills replaced by seeded random weights
    (a constant fill makes every channel equal and the output independent of the input, which would
    prove nothing) and its final Softmax dropped, so that the logits are compared."""
    import onnx
    from onnx import helper, numpy_helper
    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    model = onnx.load(str(light / f"light_{name}.onnx"))
    graph, rng = model.graph, np.random.default_rng(0)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers = {}
    for node in graph.node:
        for index, value in enumerate(node.input):
            consumers.setdefault(value, (node, index))
    fills = [n for n in graph.node if n.op_type == "ConstantOfShape"]
    for fill in fills:
        shape = [int(d) for d in constants[fill.input[0]]]
        consumer, index = consumers[fill.output[0]]
        while consumer.op_type == "Unsqueeze":  # per-channel scales reach Mul/Add through an Unsqueeze
            consumer, index = consumers[consumer.output[0]]
        array = _weights_for(consumer, index, shape, rng).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(array, fill.output[0]))
        graph.node.remove(fill)
    last = graph.node[-1]
    if last.op_type == "Softmax" and last.output[0] == graph.output[0].name:
        graph.node.remove(last)
        graph.output.pop()
        graph.output.append(helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(target))
