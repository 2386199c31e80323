"""TF.js graph models (a folder with ``model.json`` and its weight shards, as ``modelport edge
tfjs`` and TensorFlow's own converter write them), run in real TF.js: a Node.js process with the
WebAssembly backend (``edge/tfjs_runner``), so a check sees the numbers a browser computes.

The runner is a Node package installed by the set-up (``npm ci`` in its folder); the session talks
to it one JSON line per run. Inputs and outputs come from the model's serving signature.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, UnsupportedFormatError
from ..tensors import TensorSpec
from ._node import NodeRunner, decode, encode, node_command
from .base import Format, Probe, Session, register_format

RUNNER_DIR = Path(__file__).resolve().parent.parent / "edge" / "tfjs_runner"
# TF.js has no 64-bit or narrow types: TensorFlow dtypes as the TF.js tensors that carry them.
_DTYPES = {"DT_FLOAT": "float32", "DT_HALF": "float32", "DT_DOUBLE": "float32", "DT_BFLOAT16": "float32",
           "DT_INT32": "int32", "DT_INT64": "int32", "DT_INT16": "int32", "DT_INT8": "int32", "DT_UINT8": "int32",
           "DT_UINT16": "int32", "DT_BOOL": "bool"}
_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def runner_command(*args: str) -> list[str]:
    """``node run.mjs ARGS``; UnsupportedFormatError saying how to install what is missing."""
    return node_command(RUNNER_DIR, "@tensorflow/tfjs", *args)


def read_model_json(folder: Path) -> dict[str, Any]:
    try:
        model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModelError(f"cannot read the TF.js model {str(folder / 'model.json')!r}: {exc}") from None
    if not isinstance(model, dict) or model.get("format") != "graph-model":
        raise UnsupportedFormatError(f"{str(folder / 'model.json')!r} is not a TF.js graph model "
                                     f"(format {model.get('format') if isinstance(model, dict) else None!r})",
                                     hint="modelport runs TF.js graph models; Layers models are Keras: give the Keras file")
    return model


def _specs(signature_part: dict[str, Any]) -> list[TensorSpec]:
    specs = []
    for key, info in signature_part.items():
        dims = info.get("tensorShape", {}).get("dim")
        shape = None if dims is None else tuple(None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in dims)
        dtype = _DTYPES.get(info.get("dtype", "DT_FLOAT"))
        if dtype is None:
            raise UnsupportedFormatError(f"TF.js tensor {key!r} has dtype {info.get('dtype')}, which TF.js cannot carry")
        specs.append(TensorSpec(key, shape, np.dtype(_NUMPY[dtype])))
    return specs


class TfjsSession(Session):
    format_name = "tfjs"

    def __init__(self, path, *, backend: str = "wasm", **_ignored):
        super().__init__(path)
        self.folder = self.path if self.path.is_dir() else self.path.parent
        self.model = read_model_json(self.folder)
        signature = self.model.get("signature") or {}
        if not signature.get("inputs") or not signature.get("outputs"):
            raise InvalidModelError(f"the TF.js model {str(self.folder)!r} has no signature (inputs and outputs)",
                                    hint="convert it from a SavedModel or Keras model, which carry one")
        self.inputs = _specs(signature["inputs"])
        self.outputs = _specs(signature["outputs"])
        self.backend = backend
        command = runner_command(str(self.folder), "--backend", backend)  # refused before anything is opened
        self._runner = NodeRunner(command, "TF.js", lambda error: InvalidModelError(
            f"TF.js cannot load {str(self.folder)!r}: {error}"))
        self.tfjs_version = self._runner.ready.get("tfjs")

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = {"inputs": {}, "outputs": [spec.name for spec in self.outputs]}
        for spec in self.inputs:
            value = np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype)
            request["inputs"][spec.name] = encode(value.astype(np.uint8), "bool") if spec.dtype == np.bool_ \
                else encode(value, spec.dtype.name)
        reply = self._runner.ask(request)
        if "error" in reply:
            raise InvalidModelError(f"TF.js failed to run {str(self.folder)!r}: {reply['error']}")
        outputs = {}
        for spec in self.outputs:
            item = reply["outputs"][spec.name]
            value = decode(item, {"float32": np.float32, "int32": np.int32}.get(item["dtype"], np.uint8))
            outputs[spec.name] = value.astype(bool) if item["dtype"] == "bool" else value
        return outputs

    def op_names(self) -> set[str]:
        from google.protobuf import json_format
        from tensorflow.core.framework import graph_pb2
        return graph_ops(json_format.ParseDict(self.model["modelTopology"], graph_pb2.GraphDef(),
                                               ignore_unknown_fields=True))

    def describe(self) -> dict[str, Any]:
        return {"tfjs": self.tfjs_version, "backend": self.backend, "generated_by": self.model.get("generatedBy"),
                "converted_by": self.model.get("convertedBy"),
                "weight_files": [p for group in self.model.get("weightsManifest", []) for p in group.get("paths", [])]}

    def close(self) -> None:
        if getattr(self, "_runner", None) is not None:
            self._runner.close()


def graph_ops(graph_def) -> set[str]:
    """Every op a GraphDef runs, its functions' bodies included."""
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def sniff_tfjs(probe: Probe) -> str | None:
    target = probe.path / "model.json" if probe.is_dir else probe.path
    if target.name != "model.json" or not target.is_file():
        return None
    with target.open("rb") as handle:
        head = handle.read(4096)
    if b'"graph-model"' in head:
        return "a TF.js graph model"
    return None


register_format(Format("tfjs", "TF.js graph model", (), TfjsSession, sniff_tfjs, is_directory=True,
                       aliases=("tensorflowjs", "tf.js")))
