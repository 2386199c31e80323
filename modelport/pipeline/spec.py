"""The pipeline file: models x targets, read from YAML, checked against ``SCHEMA`` before any work
(errors name the line), and expanded into jobs, each exactly one modelport command.

Targets: a convert target by format name (``onnx``, ``tflite``, ``savedmodel``, ``pytorch``,
``openvino``, ...), ``edge:RUNTIME[:MODES]`` (``edge:tflite:fp32+int8``, ``edge:web:fp16``) and
``quantize:MODE``. Paths are relative to the pipeline file's folder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

EDGE_RUNTIMES = ("tflite", "tfjs", "ort", "executorch", "openvino", "web")
# Edge runtimes whose check data flag is --calibration (the others take --inputs).
_CALIBRATED = ("tflite", "executorch", "openvino")
_LABELLED = ("tflite", "tfjs", "web")
_NORMALIZED = ("tflite", "tfjs", "executorch", "openvino", "web")
QUANTIZE_MODES = ("int8", "int8-dynamic", "fp16", "int4-weights")

_TARGET_PATTERN = r"^[A-Za-z0-9:+._-]+$"
# In a job's command, the job's own folder (the executor puts it in: it differs locally and on Ray).
JOB_FOLDER = "{job}"

_MODEL_KEYS = {
    "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
             "description": "The model's folder under output/ and its row in the results."},
    "source": {"type": "string", "description": "A model file or folder, or package.module:factory."},
    "weights": {"type": "string", "description": "--weights: a factory's state_dict, a Caffe .caffemodel, ..."},
    "input_shape": {"type": "array", "items": {"type": "string"}, "description": "--input-shape, one per input."},
    "dims": {"type": "array", "items": {"type": "string"}, "description": "--dim NAME=SIZE."},
    "calibration": {"type": "string",
                    "description": ".npz by input name, or an image folder (or class folders): int8 calibration "
                                   "and the edge checks' data; convert's check data when an .npz."},
    "labels": {"type": "string", "description": "Class labels, one per line (edge tflite, tfjs, web)."},
    "mean": {"type": ["number", "array"], "items": {"type": "number"}, "description": "Image normalization."},
    "std": {"type": ["number", "array"], "items": {"type": "number"}, "description": "See mean."},
    "targets": {"$ref": "#/$defs/targets"},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "modelport pipeline",
    "type": "object",
    "additionalProperties": False,
    "required": ["output", "models", "targets"],
    "properties": {
        "output": {"type": "string", "description": "Folder for results.json, index.html and one folder per model/target."},
        "defaults": {"type": "object", "additionalProperties": False,
                     "properties": {k: v for k, v in _MODEL_KEYS.items() if k not in ("name", "source", "targets")},
                     "description": "Keys every model takes unless it says otherwise."},
        "models": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "source"],
            "properties": _MODEL_KEYS}},
        "targets": {"$ref": "#/$defs/targets"},
    },
    "$defs": {"targets": {"type": "array", "minItems": 1, "items": {"anyOf": [
        {"type": "string", "pattern": _TARGET_PATTERN},
        {"type": "object", "additionalProperties": False, "required": ["target"], "properties": {
            "target": {"type": "string", "pattern": _TARGET_PATTERN},
            "mlflow": {"type": "boolean", "description": "Also write the ONNX result as an MLflow model folder "
                                                         "(<model>/<target>/mlflow): onnx and quantize targets."}}}]},
        "description": "Convert targets (onnx, tflite, ...), edge:RUNTIME[:MODES], quantize:MODE; or {target: T, mlflow: true}."}},
}


@dataclass(frozen=True)
class Target:
    text: str
    kind: str  # "convert", "edge" or "quantize"
    name: str  # the format, the edge runtime or the quantize mode
    modes: str | None = None  # edge: "fp32,int8"
    mlflow: bool = False  # also write the ONNX result as an MLflow model folder

    @property
    def folder(self) -> str:
        return self.text.replace(":", "_").replace("+", "-")


@dataclass
class Job:
    """One model through one target: the modelport command that does it, and where it writes."""
    model: str
    target: Target
    argv: list[str]  # the command without its output path and --json
    output: str  # relative to the pipeline's output folder: the artifact (file or bundle folder)
    inputs: list[str] = field(default_factory=list)  # files and folders whose content the job depends on

    @property
    def id(self) -> str:
        return f"{self.model}/{self.target.folder}"


@dataclass
class Pipeline:
    path: Path
    output: Path
    jobs: list[Job]
    models: list[str]
    targets: list[str]


def load(path: str | Path) -> Pipeline:
    """Read, check and expand a pipeline file; UsageError naming the line of the first problem."""
    import yaml
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the pipeline file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path.name}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    _check_schema(data, node, path)
    base = path.parent
    defaults = data.get("defaults") or {}
    names = [m["name"] for m in data["models"]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"{path.name} line {_line(node, ['models', names.index(repeated[0]), 'name'], names)}: "
                         f"model name {repeated[0]!r} is given twice; names are the output folders")
    jobs: list[Job] = []
    for index, entry in enumerate(data["models"]):
        model = {**defaults, **entry}
        source = _source(model["source"], base, path, node, index)
        targets = [_target(t, path, node, ["models", index, "targets"] if "targets" in entry else ["targets"])
                   for t in model.get("targets", data["targets"])]
        for target in targets:
            _check_needs(model, target, path, node, ["models", index] + (["targets"] if "targets" in entry else []))
            jobs.append(_job(model, source, target, base))
    _check_reachable(jobs, path, node, data)
    return Pipeline(path, (base / data["output"]).resolve(), jobs, names, list(dict.fromkeys(
        j.target.text for j in jobs)))


def _check_schema(data, node, path: Path) -> None:
    import jsonschema
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    error = errors[0]
    where = list(error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = re.findall(r"'([^']+)' was unexpected", error.message)
        key_path = where + [unknown[0]] if unknown else where
        allowed = sorted(error.schema.get("properties", {}))
        message = f"unknown key {unknown[0]!r}" if unknown else error.message
        raise UsageError(f"{path.name} line {_line(node, key_path)}: {message}",
                         hint=f"the keys here are {', '.join(allowed)} (modelport pipeline --schema)")
    label = "/".join(map(str, where)) or "the file"
    raise UsageError(f"{path.name} line {_line(node, where)}: {label}: {error.message}",
                     hint="modelport pipeline --schema prints what the file takes")


def _line(node, where: list, _names=None) -> int:
    """The 1-based line of the YAML node at ``where`` (keys and indices), or of its nearest parent."""
    import yaml
    line = node.start_mark.line if node is not None else 0
    for step in where:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == step), None)
            if match is None:
                break
            line = match[0].start_mark.line
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line
        else:
            break
    return line + 1


def _source(text: str, base: Path, path: Path, node, index: int) -> str:
    from ..formats import is_factory_spec
    if is_factory_spec(text):
        return text
    resolved = (base / text).resolve()
    if not resolved.exists():
        raise UsageError(f"{path.name} line {_line(node, ['models', index, 'source'])}: no such model {text!r} "
                         f"(looked for {str(resolved)!r})", hint="paths are relative to the pipeline file's folder")
    return str(resolved)


def _target(item: str | dict, path: Path, node, where: list) -> Target:
    line = _line(node, where)
    if isinstance(item, dict):
        target = _target(item["target"], path, node, where)
        if not item.get("mlflow"):
            return target
        if target.kind == "edge" or (target.kind == "convert" and target.name != "onnx"):
            raise UsageError(f"{path.name} line {line}: target {target.text!r}: mlflow: true writes the onnx flavor, "
                             "for onnx and quantize targets")
        return Target(target.text, target.kind, target.name, target.modes, mlflow=True)
    return _parse_target(item, path, line)


def _parse_target(text: str, path: Path, line: int) -> Target:
    from ..formats import get_format
    parts = text.split(":")
    if parts[0] == "edge":
        if len(parts) not in (2, 3) or parts[1] not in EDGE_RUNTIMES:
            raise UsageError(f"{path.name} line {line}: target {text!r}: edge:RUNTIME[:MODES], RUNTIME one of "
                             f"{', '.join(EDGE_RUNTIMES)}", hint="e.g. edge:tflite:fp32+int8")
        return Target(text, "edge", parts[1], parts[2].replace("+", ",") if len(parts) == 3 else None)
    if parts[0] == "quantize":
        if len(parts) != 2 or parts[1] not in QUANTIZE_MODES:
            raise UsageError(f"{path.name} line {line}: target {text!r}: quantize:MODE, MODE one of "
                             f"{', '.join(QUANTIZE_MODES)}")
        return Target(text, "quantize", parts[1])
    if len(parts) != 1:
        raise UsageError(f"{path.name} line {line}: target {text!r}: a format name, edge:RUNTIME[:MODES] or quantize:MODE")
    try:
        fmt = get_format(text)
    except UsageError as exc:
        raise UsageError(f"{path.name} line {line}: target {text!r}: {exc.message}", hint=exc.hint) from None
    return Target(text, "convert", fmt.name)


# The modes that calibrate on data (edge runtime -> modes; quantize modes).
_CALIBRATED_MODES = {"tflite": {"int8", "int16x8"}, "executorch": {"int8"}, "openvino": {"int8"}}


def _check_needs(model: dict[str, Any], target: Target, path: Path, node, where: list) -> None:
    """What a job would refuse at once is refused now, before any job runs."""
    line = _line(node, where)
    modes = set((target.modes or "").split(","))
    calibrated = (target.kind == "edge" and modes & _CALIBRATED_MODES.get(target.name, set())) or \
        (target.kind == "quantize" and target.name == "int8")
    if calibrated and not model.get("calibration"):
        raise UsageError(f"{path.name} line {line}: {model['name']!r} -> {target.text} calibrates on data, and the "
                         "model has no calibration", hint="give it calibration: an .npz by input name, or an image folder")
    if target.kind == "quantize" and (model.get("weights") or model.get("input_shape")):
        raise UsageError(f"{path.name} line {line}: {model['name']!r} -> {target.text}: quantize opens its source "
                         "without --weights or --input-shape",
                         hint="quantize this model's ONNX file: convert it first (an onnx target), then give a model "
                              "whose source is that file")


def _job(model: dict[str, Any], source: str, target: Target, base: Path) -> Job:
    from ..formats import FORMATS
    def path_of(key):
        return str((base / model[key]).resolve()) if model.get(key) is not None else None

    def numbers(key):
        value = model.get(key)
        return ",".join(f"{v:g}" for v in (value if isinstance(value, list) else [value])) if value is not None else None

    common: list[str] = []
    if model.get("weights"):
        common += ["--weights", path_of("weights")]
    for shape in model.get("input_shape") or []:
        common += ["--input-shape", shape]
    for dim in model.get("dims") or []:
        common += ["--dim", dim]
    calibration, labels = path_of("calibration"), path_of("labels")
    mean_std = ["--mean", numbers("mean"), "--std", numbers("std")] if model.get("mean") is not None else []
    inputs = [p for p in (source, path_of("weights"), calibration, labels) if p]
    if target.mlflow:  # (onnx and quantize targets only: _target refused the others)
        common += ["--mlflow", f"{JOB_FOLDER}/mlflow"]
    if target.kind == "convert":
        fmt = FORMATS[target.name]
        output = f"{model['name']}/{target.folder}/model{fmt.suffixes[0] if fmt.suffixes else ''}"
        argv = ["convert", source, "--to", target.name, *common]
        if calibration and calibration.endswith(".npz"):
            argv += ["--inputs", calibration]
        return Job(model["name"], target, argv, output, inputs)
    if target.kind == "quantize":
        argv = ["quantize", source, "--mode", target.name, *common]
        if calibration:
            argv += ["--calibration", calibration, *mean_std]
        return Job(model["name"], target, argv, f"{model['name']}/{target.folder}/model.onnx", inputs)
    argv = ["edge", target.name, source, *common]
    if target.modes:
        argv += ["--quantize", target.modes]
    if calibration and (target.name != "ort" or calibration.endswith(".npz")):
        argv += ["--calibration" if target.name in _CALIBRATED else "--inputs", calibration]
    if labels and target.name in _LABELLED:
        argv += ["--labels", labels]
    if mean_std and target.name in _NORMALIZED:
        argv += mean_std
    return Job(model["name"], target, argv, f"{model['name']}/{target.folder}", inputs)


def _check_reachable(jobs: list[Job], path: Path, node, data) -> None:
    """Convert targets a file source cannot reach are refused now, with the hops that exist (a
    factory's framework is known only once it is built: its job says so if it cannot)."""
    from ..convert.registry import EDGES, plan
    from ..errors import NoConversionPathError
    from ..formats import detect, is_factory_spec
    formats: dict[str, str] = {}
    for job in jobs:
        source = job.argv[1] if job.target.kind == "convert" else None
        if source is None or is_factory_spec(source):
            continue
        if source not in formats:
            formats[source] = detect(source).name
        index = next(i for i, m in enumerate(data["models"]) if m["name"] == job.model)
        where = f"{path.name} line {_line(node, ['models', index, 'source'])}: {job.model!r} is {formats[source]}"
        try:
            plan(formats[source], job.target.name)
        except NoConversionPathError:
            reachable = sorted({dst for (src, dst) in EDGES if src == formats[source]})
            raise UsageError(f"{where}; no conversion reaches {job.target.name!r} from it",
                             hint=f"hops from {formats[source]}: {', '.join(reachable) or 'none'}") from None
        except UsageError as exc:  # the source is already in the target's format
            raise UsageError(f"{where}: {exc.message}", hint="give this model the targets it can reach (its own "
                                                               "targets: key)") from None
