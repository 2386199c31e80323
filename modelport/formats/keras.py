"""Keras models (``.keras`` v3 archives and legacy ``.h5``), run by Keras on TensorFlow.

Loading uses ``safe_mode=True``: a model whose config carries Python lambdas is refused.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, UntrustedPickleError, UsageError, first_line
from ..tensors import TensorSpec, ValueRange, framework_dtype_to_numpy
from ._tf import import_keras
from .base import Format, Intermediate, Probe, Session, register_format
from .value_ranges import normalization_range, rescaling_range

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


_MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_CLASS_MODULE = re.compile(r"'module': '([\w.]+)', 'class_name': '([^']+)'")


def _missing_custom_object(exc: BaseException) -> UsageError | None:
    """Keras could not find a custom layer/function class: say which, and which module defines it."""
    while exc is not None:
        found = _MISSING_CLASS.search(str(exc))
        if found:
            name = found.group(1)
            modules = [m for m, cls in _CLASS_MODULE.findall(str(exc)) if cls == name]
            where = f", defined in module {modules[0]!r}" if modules else ""
            return UsageError(f"the model uses the custom Keras class {name!r}{where}, which is not registered "
                              "in this process", hint=f"pass --import {modules[0] if modules else 'MODULE'} (the module "
                              "that defines and registers it), or keras.saving.register_keras_serializable it")
        exc = exc.__cause__ or exc.__context__
    return None


def load_keras_model(path: Path):
    keras = import_keras()
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except (TypeError, ValueError) as exc:
        missing = _missing_custom_object(exc)
        if missing is not None:
            raise missing from exc
        if isinstance(exc, TypeError):
            raise InvalidModelError(f"cannot load Keras model {str(path)!r}: {first_line(exc)}") from exc
        if "safe_mode" in str(exc) or "lambda" in str(exc).lower():
            raise UntrustedPickleError(
                f"{str(path)!r} contains Python code (a Lambda layer); refusing to deserialize it",
                hint="replace Lambda layers by registered custom layers") from exc
        raise InvalidModelError(f"cannot load Keras model {str(path)!r}: {first_line(exc)}") from exc
    except Exception as exc:
        raise InvalidModelError(f"cannot load Keras model {str(path)!r}: {first_line(exc)}",
                                hint="the file may be truncated or corrupt, or hold weights only") from exc


def _load_weights(model, weights) -> None:
    try:
        model.load_weights(str(weights))
    except FileNotFoundError:
        raise InvalidModelError(f"no such weights file: {str(weights)!r}") from None
    except Exception as exc:
        raise InvalidModelError(f"weights {str(weights)!r} do not fit the model: {first_line(exc)}",
                                hint="give the .weights.h5 saved from this architecture (model.save_weights)") from exc


def keras_input_specs(model) -> list[TensorSpec]:
    specs = []
    for tensor in model.inputs:
        name = getattr(tensor, "name", None) or f"input_{len(specs)}"
        dtype = framework_dtype_to_numpy(tensor.dtype)
        value_range = expected_range(model, tensor) if dtype.kind == "f" else None
        specs.append(TensorSpec(name.split(":")[0], tuple(tensor.shape), dtype, value_range=value_range))
    return specs


# keras.applications models whose preprocessing is a separate preprocess_input(), by model name:
# the range of what that function returns for pixels 0..255 (modes "caffe", "tf" and "torch").
_APPLICATION_INPUTS = (
    (re.compile(r"(vgg1[69]|resnet(50|101|152))$"), (-123.68, 255.0 - 103.939),
     "keras.applications preprocess_input(mode='caffe'): BGR pixels less the ImageNet mean"),
    (re.compile(r"(inception_v3|inception_resnet_v2|xception|mobilenet(v2)?_[\d.]+_\d+|resnet\d+v2|nasnet_\w+)$"),
     (-1.0, 1.0), "keras.applications preprocess_input(mode='tf'): pixels scaled to [-1, 1]"),
    (re.compile(r"densenet\d+$"), ((0 - 0.485) / 0.229, (1 - 0.406) / 0.225),
     "keras.applications preprocess_input(mode='torch'): pixels normalized by the ImageNet mean and std"),
)


def expected_range(model, tensor) -> ValueRange | None:
    """The values ``tensor`` (an input of ``model``) expects, where the model says so: its first layer
    is a Rescaling or Normalization, or it is a keras.applications model whose preprocess_input is
    known."""
    keras = import_keras()
    for layer in model.layers:
        try:
            consumed = layer.input
        except (AttributeError, ValueError):  # input layers, layers called more than once
            continue
        if consumed is not tensor:
            continue
        if isinstance(layer, keras.layers.Rescaling):
            scale, offset = np.ravel(layer.scale), np.ravel(layer.offset)
            if scale.size == 1 and offset.size == 1:
                return rescaling_range(float(scale[0]), float(offset[0]),
                                       f"the first layer {layer.name!r} is Rescaling(scale={scale[0]:.4g}, "
                                       f"offset={offset[0]:.4g})")
        if isinstance(layer, keras.layers.Normalization) and getattr(layer, "mean", None) is not None:
            mean = np.ravel(np.asarray(layer.mean, np.float64))
            std = np.sqrt(np.ravel(np.asarray(layer.variance, np.float64)))
            return normalization_range(mean.tolist(), std.tolist(),
                                       f"the first layer {layer.name!r} is a Normalization")
    if len(model.inputs) == 1:
        for pattern, (low, high), why in _APPLICATION_INPUTS:
            if pattern.match(model.name or ""):
                return ValueRange(low, high, why)
    return None


def _output_names(model) -> list[str]:
    names = getattr(model, "output_names", None)  # functional models
    if names:
        return list(names)
    names = []
    for i, tensor in enumerate(model.outputs):  # Sequential: name outputs after their layers
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "operation", None) if history else None
        names.append(getattr(layer, "name", None) or f"output_{i}")
    return names if len(set(names)) == len(names) else [f"output_{i}" for i in range(len(names))]


def keras_output_specs(model) -> list[TensorSpec]:
    names = _output_names(model)
    return [TensorSpec(n, tuple(t.shape), framework_dtype_to_numpy(t.dtype)) for n, t in zip(names, model.outputs)]


class KerasSession(Session):
    format_name = "keras"
    intermediate_scheme = "keras-layer"

    def __init__(self, path, *, model=None, weights=None, **_ignored):
        from .factory import is_factory_spec, take
        super().__init__(path)
        if model is None and is_factory_spec(str(path)):  # package.module:factory returning a keras.Model
            model = take(str(path))
            if weights is not None:
                _load_weights(model, weights)
        elif weights is not None:
            raise UsageError("--weights goes with a package.module:factory model, not a model file")
        self.model = model if model is not None else load_keras_model(self.path)
        if not getattr(self.model, "inputs", None):
            raise InvalidModelError(f"{str(path)!r} is a subclassed Keras model without a known input signature",
                                    hint="save a functional or Sequential model, or export a SavedModel")
        self.inputs = keras_input_specs(self.model)
        self.outputs = keras_output_specs(self.model)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._call(self.model, feeds)
        if isinstance(result, dict):
            result = [result[s.name] for s in self.outputs]
        elif not isinstance(result, (list, tuple)):
            result = [result]
        return {s.name: np.asarray(r) for s, r in zip(self.outputs, result)}

    def _call(self, model, feeds):
        args = [np.asarray(feeds[s.name], dtype=s.dtype) for s in self.inputs]
        return model(args if len(args) > 1 else args[0], training=False)

    def run_with_intermediates(self, feeds, names=None) -> list[Intermediate]:
        """Layer outputs (layers with one tensor output), in layer order."""
        keras = import_keras()
        ordered = self.check_feeds(feeds)
        wanted = set(names) if names is not None else None
        layers = []
        for layer in self.model.layers:
            if wanted is not None and layer.name not in wanted:
                continue
            try:
                if not isinstance(layer.output, (list, tuple, dict)):
                    layers.append(layer)
            except (AttributeError, ValueError):  # input layers, layers called more than once
                continue
        if not layers:
            return []
        values = self._call(keras.Model(self.model.inputs, [layer.output for layer in layers]), ordered)
        values = values if isinstance(values, (list, tuple)) else [values]
        return [Intermediate(layer.name, np.asarray(v), {"layer": layer.name, "class": type(layer).__name__})
                for layer, v in zip(layers, values)]

    def describe(self) -> dict[str, Any]:
        keras = import_keras()
        return {"keras": keras.__version__, "layers": len(self.model.layers),
                "parameters": int(self.model.count_params()), "model_class": type(self.model).__name__}


def open_keras(path, **options) -> KerasSession:
    return KerasSession(path, **options)


def sniff_keras(probe: Probe) -> str | None:
    if probe.is_dir:
        return None
    if probe.head.startswith(HDF5_MAGIC):
        return "an HDF5 file"
    names = probe.zip_names
    if names is not None and {"config.json", "metadata.json"} <= set(names):
        return "a Keras v3 archive"
    return None


register_format(Format("keras", "Keras", (".keras", ".h5", ".hdf5"), open_keras, sniff_keras, extra="tf",
                       runtime_modules=("tensorflow", "keras", "h5py"), open_options=frozenset({"weights"}),
                       factory_framework="keras"))
