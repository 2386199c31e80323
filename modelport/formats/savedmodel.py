"""TensorFlow SavedModel folders, run through one serving signature."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidModelError, UsageError, first_line
from ..tensors import TensorSpec, framework_dtype_to_numpy
from ._tf import import_tf
from .base import Format, Probe, Session, register_format


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

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = import_tf()
        result = self.function(**{s.name: tf.constant(feeds[s.name], dtype=s.dtype.name) for s in self.inputs})
        return {s.name: result[s.name].numpy() for s in self.outputs}

    def describe(self) -> dict[str, Any]:
        tf = import_tf()
        return {"signature": self.signature_name, "signatures": sorted(self.loaded.signatures),
                "tensorflow": tf.__version__}


def open_savedmodel(path, **options) -> SavedModelSession:
    return SavedModelSession(path, **options)


def sniff_savedmodel(probe: Probe) -> str | None:
    if probe.is_dir and ((probe.path / "saved_model.pb").is_file() or (probe.path / "saved_model.pbtxt").is_file()):
        return "a TensorFlow SavedModel folder"
    return None


register_format(Format("savedmodel", "TensorFlow SavedModel", (), open_savedmodel, sniff_savedmodel,
                       is_directory=True, extra="tf", runtime_modules=("tensorflow",), aliases=("saved_model", "tf")))
