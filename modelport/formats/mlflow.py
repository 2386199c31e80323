"""MLflow model folders: read as a source, written around an ONNX result.

An MLflow model is a folder whose ``MLmodel`` file (YAML) names its flavors and, optionally, a
signature. modelport reads it with YAML alone (mlflow itself stays optional) and opens the model
file the flavor points at in that file's own format: the folder *is* that model, so detection
(``resolve``) hands back the inner format under an MLflow title, with an opener that finds the
file, and every command that takes a model takes the folder. Flavors:

- ``onnx``: the ``data`` file (``model.onnx``);
- ``pytorch``: ``data/model.pt2`` (MLflow 3's default, torch.export), or ``data/model.pth``: a
  state_dict opened with ``--factory package.module:fn`` (the weights go into what it builds), or a
  pickled module, refused unless ``--trust-pickle``;
- ``keras`` (Keras 3) and ``tensorflow`` (``model_type: keras``): ``data/model.keras``; a
  ``tensorflow`` SavedModel: the folder under ``data`` holding ``saved_model.pb``.

Tensor signatures give the input names, shapes and dtypes a state_dict's factory needs when no
``--input-shape`` is given. Every path the MLmodel names must stay inside the folder.

``write_onnx_model`` writes the other way: an MLflow folder with the ``onnx`` and
``python_function`` flavors around an ONNX file, its tensor signature, ``requirements.txt``,
``python_env.yaml`` and ``conda.yaml``: what ``mlflow.pyfunc.load_model`` reads.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import InvalidModelError, UsageError
from .base import Format

MLMODEL = "MLmodel"
_FLAVOR_ORDER = ("onnx", "pytorch", "keras", "tensorflow")  # the first one a folder has is opened


def is_mlflow_folder(path: Path) -> bool:
    return path.is_dir() and (path / MLMODEL).is_file()


def read_mlmodel(folder: Path) -> dict[str, Any]:
    import yaml
    try:
        data = yaml.safe_load((folder / MLMODEL).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidModelError(f"{str(folder / MLMODEL)!r} is not a readable MLmodel file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise InvalidModelError(f"{str(folder / MLMODEL)!r} names no flavors", hint="is this an MLflow model folder?")
    return data


@dataclasses.dataclass
class Flavor:
    name: str
    path: Path  # the model file or folder it points at
    state_dict: bool = False  # a pytorch .pth: weights for --factory, or a pickled module


def flavor_of(folder: Path, mlmodel: dict[str, Any]) -> Flavor:
    flavors = mlmodel["flavors"]
    name = next((f for f in _FLAVOR_ORDER if isinstance(flavors.get(f), dict)), None)
    if name is None:
        raise UsageError(f"the MLflow model {str(folder)!r} has the flavors {', '.join(sorted(flavors))}; modelport "
                         f"opens {', '.join(_FLAVOR_ORDER)}",
                         hint="log the model with mlflow.onnx, mlflow.pytorch, mlflow.keras or mlflow.tensorflow")
    conf = flavors[name]
    if name == "onnx":
        return Flavor(name, _inside(folder, conf.get("data", "model.onnx")))
    data = _inside(folder, conf.get("model_data") or conf.get("data") or "data")
    if name == "pytorch":
        for file, state in (("model.pt2", False), ("model.pth", True)):
            if (data / file).is_file():
                return Flavor(name, data / file, state_dict=state)
        raise InvalidModelError(f"the MLflow pytorch model {str(folder)!r} has neither data/model.pt2 nor data/model.pth")
    if (data / "model.keras").is_file():
        return Flavor(name, data / "model.keras")
    saved = sorted(p.parent for p in data.rglob("saved_model.pb"))
    if saved:
        return Flavor(name, saved[0])
    raise InvalidModelError(f"the MLflow {name} model {str(folder)!r} has no model.keras or SavedModel under "
                            f"{str(data.relative_to(folder))!r}")


def _inside(folder: Path, relative: str) -> Path:
    path = (folder / str(relative)).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InvalidModelError(f"{str(folder / MLMODEL)!r} points outside its folder ({relative!r}); refused")
    if not path.exists():
        raise InvalidModelError(f"{str(folder / MLMODEL)!r} names {relative!r}, which the folder does not have")
    return path


def signature_inputs(mlmodel: dict[str, Any]):
    """The tensor signature's inputs as TensorSpecs (unnamed ones ``input`` / ``input_N``), or None."""
    from ..tensors import TensorSpec
    text = (mlmodel.get("signature") or {}).get("inputs")
    try:
        entries = json.loads(text) if text else None
    except ValueError:
        return None
    if not entries or any(e.get("type") != "tensor" for e in entries):
        return None  # a column (DataFrame) signature says nothing of tensors
    specs = []
    for index, entry in enumerate(entries):
        tensor = entry.get("tensor-spec") or {}
        name = entry.get("name") or ("input" if len(entries) == 1 else f"input_{index}")
        shape = tensor.get("shape")
        try:
            specs.append(TensorSpec(name, tuple(None if d == -1 else d for d in shape) if shape is not None else None,
                                    tensor.get("dtype", "float32")))
        except (TypeError, ValueError):  # a dtype or shape numpy does not take: the signature gives nothing
            return None
    return specs


def model_path(path: Path) -> Path:
    """The model file an MLflow folder's flavor names; any other path as it is."""
    path = Path(path)
    return flavor_of(path, read_mlmodel(path)).path if is_mlflow_folder(path) else path


def resolve(folder: Path) -> Format:
    """The Format an MLflow folder opens as: its flavor's model file's format, titled as MLflow's,
    whose opener opens that file (see the module's text)."""
    from . import FORMATS, detect
    mlmodel = read_mlmodel(folder)
    flavor = flavor_of(folder, mlmodel)
    inner = detect(flavor.path)
    signature = signature_inputs(mlmodel)

    def opener(path, **options):
        factory = options.pop("factory", None)
        if not flavor.state_dict:
            return inner.open(flavor.path, **options)
        if options.get("input_specs") is None and signature is not None:
            options["input_specs"] = signature  # a .pth carries no shapes; the signature does
        if factory is not None:
            if options.get("weights") is not None:
                raise UsageError("--weights: the MLflow model's data/model.pth is the factory's weights already")
            return FORMATS["pytorch"].open(factory, **{**options, "weights": str(flavor.path)})
        try:
            return inner.open(flavor.path, **options)
        except InvalidModelError as exc:
            if "weights only" not in exc.message:
                raise
            raise InvalidModelError(f"the MLflow model {str(folder)!r} holds a state_dict (data/model.pth), not a "
                                    "model", hint="give the code that builds it: --factory package.module:fn") from None
    title = f"MLflow model ({flavor.name} flavor, {inner.title})"
    extra_options = frozenset({"factory"}) if flavor.state_dict else frozenset()
    return dataclasses.replace(inner, title=title, opener=opener, open_options=inner.open_options | extra_options)


# -- writing ---------------------------------------------------------------------------------------

def write_onnx_model(onnx_path: Path, destination: Path, inputs, outputs) -> None:
    """An MLflow model folder at ``destination`` around a copy of ``onnx_path`` (and its external
    data), written atomically; ``inputs``/``outputs``: the model's TensorSpecs for the signature."""
    import shutil

    import onnx
    import onnxruntime
    import yaml

    from .. import __version__
    from .._atomic import atomic_output
    with atomic_output(destination, directory=True) as staging:
        staging.mkdir()
        model = onnx.load(str(onnx_path), load_external_data=False)
        external = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
        shutil.copyfile(onnx_path, staging / "model.onnx")
        for name in external:
            shutil.copyfile(onnx_path.parent / name, staging / name)
        mlmodel = {
            "artifact_path": None,
            "flavors": {
                "onnx": {"code": None, "data": "model.onnx", "onnx_session_options": None,
                         "onnx_version": onnx.__version__, "providers": ["CPUExecutionProvider"]},
                "python_function": {"data": "model.onnx", "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                                    "loader_module": "mlflow.onnx", "python_version": _python_version()},
            },
            "metadata": {"written_by": f"modelport {__version__}"},
            "signature": {"inputs": json.dumps([_tensor_entry(s) for s in inputs]),
                          "outputs": json.dumps([_tensor_entry(s) for s in outputs]), "params": None},
        }
        (staging / MLMODEL).write_text(yaml.safe_dump(mlmodel, sort_keys=False))
        requirements = ["mlflow", f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"]
        (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (staging / "python_env.yaml").write_text(yaml.safe_dump(
            {"python": _python_version(), "build_dependencies": ["pip"], "dependencies": ["-r requirements.txt"]},
            sort_keys=False))
        (staging / "conda.yaml").write_text(yaml.safe_dump(
            {"channels": ["conda-forge"], "dependencies": [f"python={_python_version()}", "pip",
                                                            {"pip": requirements}], "name": "mlflow-env"},
            sort_keys=False))


def _tensor_entry(spec) -> dict[str, Any]:
    shape = [-1 if d is None else int(d) for d in spec.shape] if spec.shape is not None else None
    return {"type": "tensor", "tensor-spec": {"dtype": spec.dtype.name, "shape": shape}, "name": spec.name}


def _python_version() -> str:
    import platform
    return platform.python_version()
