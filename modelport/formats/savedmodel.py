"""TensorFlow SavedModel folders, run through one serving signature."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidModelError, UsageError, first_line
from ..tensors import TensorSpec, framework_dtype_to_numpy
from ._tf import import_tf
from .base import Format, Intermediate, Probe, Session, register_format


class SavedModelSession(Session):
    format_name = "savedmodel"

    def __init__(self, path, *, signature: str | None = None, **_ignored):
        super().__init__(path)
        tf = import_tf()
        try:
            self.loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:
            raise InvalidModelError(f"cannot load SavedModel {str(path)!r}: {first_line(exc)}",
                                    hint="the folder may be incomplete (variables/ missing?)") from exc
        signatures = dict(self.loaded.signatures)
        if not signatures:
            raise InvalidModelError(f"SavedModel {str(path)!r} has no serving signature",
                                    hint="save it with signatures=..., or model.export(...) for Keras")
        name = signature or ("serving_default" if "serving_default" in signatures else sorted(signatures)[0])
        if name not in signatures:
            raise UsageError(f"SavedModel has no signature {name!r}; it has {', '.join(sorted(signatures))}")
        self.signature_name = name
        self.function = signatures[name]
        _, kwargs = self.function.structured_input_signature
        self.inputs = [TensorSpec(k, tuple(v.shape), framework_dtype_to_numpy(v.dtype)) for k, v in sorted(kwargs.items())]
        outputs = self.function.structured_outputs
        self.outputs = [TensorSpec(k, tuple(v.shape), framework_dtype_to_numpy(v.dtype)) for k, v in sorted(outputs.items())]
        self._onnx_tensors = _read_onnx_tensors(self.path)
        if self._onnx_tensors is not None:
            self.intermediate_scheme = "onnx"  # written by modelport's onnx -> savedmodel: ONNX value names
        self._pruned: dict[tuple[str, ...], Any] = {}
        self._frozen = None  # the recorded function's graph with variables as constants, made once

    def run_with_intermediates(self, feeds, names=None) -> list[Intermediate]:
        """The ONNX values the converter recorded, computed by this SavedModel's own graph (variables
        frozen, the graph pruned to them), in ONNX's axis order."""
        if self._onnx_tensors is None:
            return super().run_with_intermediates(feeds, names)
        tf = import_tf()
        record = self._onnx_tensors["tensors"]
        wanted = tuple(n for n in (names if names is not None else record) if n in record)
        if wanted not in self._pruned:
            self._pruned[wanted] = self._prune([record[n][0] for n in wanted])
        feeds = self.check_feeds(feeds)
        order = self._onnx_tensors["inputs"]
        values = self._pruned[wanted](*[tf.constant(feeds[name]) for name in order])
        result = []
        for name, value in zip(wanted, values):
            _, perm, node, op_type = record[name]
            array = value.numpy()
            if perm is not None and array.ndim == len(perm):
                array = np.transpose(array, np.argsort(perm))
            result.append(Intermediate(name, array, {"node": node, "op_type": op_type}))
        return result

    def _prune(self, tensor_names: list[str]):
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
        tf = import_tf()
        if self._frozen is None:
            function = getattr(self.loaded, self._onnx_tensors["function"]).concrete_functions[0]
            self._frozen = convert_variables_to_constants_v2(function).graph.as_graph_def()
        graph_def = self._frozen
        wrapped = tf.compat.v1.wrap_function(lambda: tf.graph_util.import_graph_def(graph_def, name=""), [])
        graph = wrapped.graph
        return wrapped.prune([graph.get_tensor_by_name(f"{name}:0") for name in self._onnx_tensors["inputs"]],
                             [graph.get_tensor_by_name(name) for name in tensor_names])

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = import_tf()
        result = self.function(**{s.name: tf.constant(feeds[s.name], dtype=s.dtype.name) for s in self.inputs})
        return {s.name: result[s.name].numpy() for s in self.outputs}

    def describe(self) -> dict[str, Any]:
        tf = import_tf()
        return {"signature": self.signature_name, "signatures": sorted(self.loaded.signatures),
                "tensorflow": tf.__version__}


def _read_onnx_tensors(path) -> dict | None:
    import json
    from ..metadata import SAVEDMODEL_ONNX_TENSORS
    record = path / "assets" / SAVEDMODEL_ONNX_TENSORS
    try:
        return json.loads(record.read_text()) if record.is_file() else None
    except (OSError, ValueError):
        return None  # unreadable: no localization, the model still runs


def open_savedmodel(path, **options) -> SavedModelSession:
    return SavedModelSession(path, **options)


def sniff_savedmodel(probe: Probe) -> str | None:
    if probe.is_dir and ((probe.path / "saved_model.pb").is_file() or (probe.path / "saved_model.pbtxt").is_file()):
        return "a TensorFlow SavedModel folder"
    return None


register_format(Format("savedmodel", "TensorFlow SavedModel", (), open_savedmodel, sniff_savedmodel,
                       is_directory=True, extra="tf", runtime_modules=("tensorflow",), aliases=("saved_model", "tf")))
