"""The model repository: which models are served, their versions, configs and loaded Sessions.

Two ways in, as Triton's users expect:

- model paths (``modelport serve resnet18.onnx keras_model.keras``): each is one model, named by
  its file name without the suffix, version ``1``;
- a repository folder with Triton's layout, ``REPO/<name>/<version>/model.<suffix>`` (any format
  ``formats/`` opens), with an optional ``REPO/<name>/config.pbtxt`` or ``config.json`` (Triton's
  ``ModelConfig``: ``max_batch_size``, ``dynamic_batching``, ``instance_group``,
  ``version_policy``, ``parameters { key: "intra_op_thread_count" ... }``).

A model that fails to load is kept as UNAVAILABLE with its reason; the others are served. Every
path the repository reads is resolved inside its root, so a model name cannot escape it.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelportError, ServeError, UsageError, first_line
from ..tensors import TensorSpec
from . import ensemble
from .batching import Batcher
from .classification import LABELS_FILE, labels_for
from .codec import datatype_of
from .images import image_inputs
from .proto import grpc_service_pb2 as pb

READY, UNAVAILABLE, LOADING = "READY", "UNAVAILABLE", "LOADING"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

# Triton's platform names where one exists, so clients that branch on them see what they know.
PLATFORMS = {"onnx": "onnxruntime_onnx", "savedmodel": "tensorflow_savedmodel", "keras": "tensorflow_keras",
             "tflite": "tflite", "pytorch": "pytorch_torch", "ort": "onnxruntime_ort", "caffe": "caffe_opencv",
             "tfjs": "tfjs_graph_model", "openvino": "openvino"}

# Session options a format takes for serving, from the model's config parameters.
_SESSION_OPTIONS = {"onnx": lambda threads: {"threads": threads} if threads else {},
                    "openvino": lambda threads: {"threads": threads} if threads else {}}


@dataclass
class ServeOptions:
    """Server-wide defaults; a model's config file overrides the per-model ones."""

    max_batch_size: int = 8
    batch_delay_ms: float = 0.0
    max_queue_size: int = 256
    instances: int = 1
    threads: int = 0               # ONNX Runtime intra-op threads; 0 lets ORT choose
    request_timeout_s: float = 60.0
    max_body_bytes: int = 64 << 20
    model_control: bool = True
    model_name: str | None = None  # the name of the one model given as a path (KServe: the InferenceService's)
    cache_bytes: int = 0           # the response cache for models whose config enables it; 0: none
    allow_client_shm: bool = False # clients may register system shared memory regions (serve/shared_memory.py)


@dataclass
class Stats:
    """Counters in Triton's statistics shape (durations in nanoseconds)."""

    success: list = field(default_factory=lambda: [0, 0])
    fail: list = field(default_factory=lambda: [0, 0])
    queue: list = field(default_factory=lambda: [0, 0])
    compute_input: list = field(default_factory=lambda: [0, 0])
    compute_infer: list = field(default_factory=lambda: [0, 0])
    compute_output: list = field(default_factory=lambda: [0, 0])
    cache_hit: list = field(default_factory=lambda: [0, 0])   # answered from the response cache: [count, lookup ns]
    cache_miss: list = field(default_factory=lambda: [0, 0])  # looked up, not there: [count, lookup + insert ns]
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    batches: dict = field(default_factory=dict)  # batch size -> [count, compute ns]
    depths: dict = field(default_factory=dict)   # queue depth a request found -> how often

    def queued(self, depth: int) -> None:
        self.depths[depth] = self.depths.get(depth, 0) + 1

    def answered_from_cache(self, rows: int, lookup_ns: int) -> None:
        """A cache hit counts as an inference (and a success) but not as an execution, as in Triton."""
        self.cache_hit[0] += 1
        self.cache_hit[1] += lookup_ns
        self.inference_count += rows
        self.last_inference_ms = int(time.time() * 1000)

    def executed(self, batch_size: int, requests: int, queue_ns: int, compute_ns: int) -> None:
        self.execution_count += 1
        self.inference_count += batch_size
        self.last_inference_ms = int(time.time() * 1000)
        self.queue[0] += requests
        self.queue[1] += queue_ns
        self.compute_infer[0] += requests
        self.compute_infer[1] += compute_ns
        entry = self.batches.setdefault(batch_size, [0, 0])
        entry[0] += 1
        entry[1] += compute_ns


@dataclass
class ModelVersion:
    """One version of one model: its file, state, config and, once loaded, its batcher."""

    name: str
    version: str
    path: Path
    state: str = LOADING
    reason: str = ""
    format: str = ""
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    config: pb.ModelConfig | None = None
    batcher: Batcher | None = None
    stats: Stats = field(default_factory=Stats)
    # A decoder's Session (it has generate/stream), for the generate extension; None for other models.
    generator: Any = None
    # Output name -> class labels, for the classification extension (serve/classification.py).
    labels: dict[str, list[str]] = field(default_factory=dict)
    # Input name -> how it takes encoded images (serve/images.py), for inputs that declare it.
    images: dict = field(default_factory=dict)
    # An ensemble's steps (serve/ensemble.py); empty for a model that runs itself.
    steps: list = field(default_factory=list)

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size if self.config is not None else 0

    @property
    def ready(self) -> bool:
        return self.state == READY


class Repository:
    """The served models by name, each with its versions (newest last)."""

    def __init__(self, sources: list[str | Path], options: ServeOptions):
        self.options = options
        model_name = options.model_name
        self.root: Path | None = None
        self.models: dict[str, dict[str, ModelVersion]] = {}
        self._single: dict[str, Path] = {}  # model name -> path, for models given as paths
        if model_name is not None and (len(sources) != 1 or _is_repository(Path(sources[0]))):
            raise UsageError("--model-name names the one model given as a path",
                             hint="in a repository, the folder names are the model names")
        if model_name is not None and not MODEL_NAME.match(model_name):
            raise UsageError(f"{model_name!r} is not a model name (letters, digits, '_', '.', '-')")
        if len(sources) == 1 and _is_repository(Path(sources[0])):
            self.root = Path(sources[0]).resolve()
            for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and MODEL_NAME.match(p.name)):
                self.models[folder.name] = {}
        else:
            for source in sources:
                if not _is_factory(source) and not Path(source).exists():
                    raise UsageError(f"no such model file or folder: {str(source)!r}",
                                     hint="give model paths, or one repository folder (REPO/<name>/<version>/model.onnx)")
                name = model_name or _model_name(source)
                if name in self._single:
                    raise UsageError(f"two models would both be named {name!r}: {str(self._single[name])!r} "
                                     f"and {str(source)!r}", hint="put them in a model repository "
                                     "(REPO/<name>/1/model.onnx) to name them yourself")
                self._single[name] = _the_model_in(Path(source)) if not _is_factory(source) else source
                self.models[name] = {}

    # -- loading ---------------------------------------------------------------------------------
    async def load_all(self) -> None:
        await asyncio.gather(*(self.load(name) for name in list(self.models)))

    async def load(self, name: str) -> None:
        """(Re)load a model's versions as its folder and config say; failures become UNAVAILABLE."""
        versions = self._discover(name)
        previous = self.models.get(name, {})
        self.models[name] = versions
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, self._open, entry) for entry in versions.values()
                               if entry.state == LOADING))
        for entry in versions.values():
            if entry.state == READY and entry.batcher is not None:   # an ensemble has none of its own
                entry.batcher.start()
        for entry in previous.values():
            if entry.batcher is not None:
                await entry.batcher.close()

    async def unload(self, name: str) -> None:
        versions = self.models.get(name)
        if versions is None:
            raise ServeError(f"no model named {name!r} in the repository", status=404)
        for entry in versions.values():
            entry.state, entry.reason = UNAVAILABLE, "unloaded"
            if entry.batcher is not None:
                await entry.batcher.close()
                entry.batcher = None
            entry.generator = None

    async def close(self) -> None:
        for versions in self.models.values():
            for entry in versions.values():
                if entry.batcher is not None:
                    await entry.batcher.close()

    def _discover(self, name: str) -> dict[str, ModelVersion]:
        if self.root is None:
            if name not in self._single:
                raise ServeError(f"no model named {name!r}; this server serves {sorted(self._single)}", status=404)
            entry = ModelVersion(name, "1", self._single[name])
            entry.config = pb.ModelConfig(name=name)
            return {"1": entry}
        folder = self.model_folder(name)
        if not folder.is_dir():
            raise ServeError(f"no model named {name!r} in the repository {str(self.root)!r}", status=404)
        try:
            config = read_config(folder, name)
        except ModelportError as exc:
            entry = ModelVersion(name, "1", folder, state=UNAVAILABLE, reason=str(exc))
            return {"1": entry}
        numbered = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
        chosen = _apply_policy(config, numbered)
        if not chosen:
            entry = ModelVersion(name, "1", folder, state=UNAVAILABLE,
                                 reason=f"no version folder (e.g. {name}/1/model.onnx) matches its version policy")
            return {"1": entry}
        versions = {}
        for version_dir in chosen:
            entry = ModelVersion(name, version_dir.name, version_dir)
            entry.config = pb.ModelConfig()
            entry.config.CopyFrom(config)
            versions[version_dir.name] = entry
        return versions

    def model_folder(self, name: str) -> Path:
        if not MODEL_NAME.match(name):
            raise ServeError(f"{name!r} is not a model name (letters, digits, '_', '.', '-')")
        folder = (self.root / name).resolve()
        if not folder.is_relative_to(self.root):
            raise ServeError(f"model {name!r} resolves outside the repository", status=403)
        return folder

    def _open(self, entry: ModelVersion) -> None:
        """Open a version's Sessions (one per instance) and its batcher; never raises."""
        from ..formats import detect
        if entry.config is not None and entry.config.response_cache.enable and not self.options.cache_bytes:
            entry.state = UNAVAILABLE
            entry.reason = ("its config enables response_cache, but the server has no cache: start it with "
                            "--cache-size-mb N")
            return
        if entry.config is not None and entry.config.platform == ensemble.PLATFORM:
            self._open_ensemble(entry)
            return
        try:
            path = entry.path
            if self.root is not None:
                path = _model_file(entry.path, self.root)
            fmt = detect(path)
            config = entry.config
            threads = int(config.parameters["intra_op_thread_count"].string_value or 0) \
                if "intra_op_thread_count" in config.parameters else self.options.threads
            options = _SESSION_OPTIONS.get(fmt.name, lambda _: {})(threads)
            count = sum(group.count for group in config.instance_group) or self.options.instances
            sessions = [fmt.open(path, **fmt.accepted_options(options)[0]) for _ in range(count)]
        except ModelportError as exc:
            entry.state, entry.reason = UNAVAILABLE, str(exc)
            return
        except Exception as exc:  # a model the runtime chokes on must not take the server down
            entry.state, entry.reason = UNAVAILABLE, f"{type(exc).__name__}: {first_line(exc)}"
            return
        first = sessions[0]
        entry.format, entry.inputs, entry.outputs = fmt.name, list(first.inputs), list(first.outputs)
        entry.generator = first if callable(getattr(first, "stream", None)) else None
        try:
            entry.labels = self._labels(entry, path)
            entry.images = image_inputs(config, entry.inputs)
        except ModelportError as exc:
            entry.state, entry.reason = UNAVAILABLE, str(exc)
            return
        unknown_rank = [spec.name for spec in [*entry.inputs, *entry.outputs] if spec.shape is None]
        if unknown_rank:
            entry.state = UNAVAILABLE
            entry.reason = (f"the model does not declare the shapes of {unknown_rank}; serve an ONNX or "
                            "exported (.pt2) version of it, whose inputs are typed")
            return
        batchable = first.flexible_batch and all(spec.shape and spec.shape[0] is None for spec in entry.outputs)
        _complete_config(entry, batchable, self.options)
        delay_us = config.dynamic_batching.max_queue_delay_microseconds if config.HasField("dynamic_batching") \
            else int(self.options.batch_delay_ms * 1000)
        entry.batcher = Batcher(f"{entry.name}:{entry.version}", [session.run for session in sessions],
                                max_batch_size=config.max_batch_size, delay_s=delay_us / 1e6,
                                max_queue=self.options.max_queue_size, stats=entry.stats,
                                closers=[session.close for session in sessions])
        entry.state, entry.reason = READY, ""

    def _open_ensemble(self, entry: ModelVersion) -> None:
        """An ensemble runs no file of its own: its tensors and steps come from its config, checked
        here as a pipeline that can run (serve/ensemble.py)."""
        entry.config.name = entry.name
        try:
            entry.inputs, entry.outputs = ensemble.specs(entry.config)
            entry.steps = ensemble.plan(entry.config, set(self.models))
            entry.labels = self._labels(entry, entry.path)
        except ModelportError as exc:
            entry.state, entry.reason = UNAVAILABLE, str(exc)
            return
        entry.format = "ensemble"
        entry.state, entry.reason = READY, ""

    def _labels(self, entry: ModelVersion, path: Path) -> dict[str, list[str]]:
        """The classification labels of each output: the config's label_filename (in the model's folder),
        else labels.txt there, or beside a model given as a path, else those a TFLite file packs."""
        from ..formats.tflite import packed_labels
        packed = packed_labels(path) if Path(path).suffix.lower() == ".tflite" else None
        if self.root is None:
            return labels_for(entry.outputs, {}, Path(path).parent / LABELS_FILE, packed)
        folder = entry.path.parent  # REPO/<name>/, the version folder's parent
        configured = {}
        for output in entry.config.output:
            if output.label_filename:
                file = (folder / output.label_filename).resolve()
                if not file.is_relative_to(folder.resolve()) or not file.is_file():
                    raise UsageError(f"output {output.name!r}: label_filename {output.label_filename!r} is not a file "
                                     f"in {str(folder)!r}")
                configured[output.name] = file
        return labels_for(entry.outputs, configured, folder / LABELS_FILE, packed)

    # -- lookups ---------------------------------------------------------------------------------
    def get(self, name: str, version: str = "", *, ready: bool = True) -> ModelVersion:
        versions = self.models.get(name)
        if versions is None:
            known = ", ".join(repr(n) for n in sorted(self.models)) or "none"
            raise ServeError(f"unknown model {name!r}; served models: {known}", status=404)
        if version:
            entry = versions.get(version)
            if entry is None:
                raise ServeError(f"model {name!r} has no version {version!r}; versions: "
                                 f"{', '.join(sorted(versions, key=version_key))}", status=404)
        else:
            loaded = [v for v in versions.values() if v.ready] or list(versions.values())
            if not loaded:
                raise ServeError(f"model {name!r} has no version loaded", status=503)
            entry = max(loaded, key=lambda v: version_key(v.version))
        if ready and not entry.ready:
            raise ServeError(f"model {name!r} version {entry.version} is not ready: {entry.reason or entry.state}",
                             status=503)
        return entry

    def index(self) -> list[dict]:
        rows = []
        for name in sorted(self.models):
            versions = self.models[name] or {"": ModelVersion(name, "", Path(), state=UNAVAILABLE,
                                                               reason="not loaded")}
            for entry in sorted(versions.values(), key=lambda v: version_key(v.version)):
                rows.append({"name": name, "version": entry.version, "state": entry.state, "reason": entry.reason})
        return rows

    def all_ready(self) -> bool:
        return all(entry.ready for versions in self.models.values() for entry in versions.values())


def _complete_config(entry: ModelVersion, batchable: bool, options: ServeOptions) -> None:
    """Fill the config's io, platform and batching from the model, as Triton's auto-complete does."""
    config = entry.config
    config.name = entry.name
    config.platform = PLATFORMS.get(entry.format, f"modelport_{entry.format}")
    config.backend = "modelport"
    if not batchable:
        config.max_batch_size = 0
    elif not config.HasField("max_batch_size"):  # a config's own 0 means no batching, as in Triton
        config.max_batch_size = options.max_batch_size
    skip = 1 if config.max_batch_size > 0 else 0
    del config.input[:]
    del config.output[:]
    for spec in entry.inputs:
        config.input.add(name=spec.name, data_type=_config_type(spec),
                         dims=[-1 if d is None else d for d in spec.shape[skip:]])
    for spec in entry.outputs:
        config.output.add(name=spec.name, data_type=_config_type(spec),
                          dims=[-1 if d is None else d for d in spec.shape[skip:]])
    if not config.instance_group:
        config.instance_group.add(count=options.instances, kind=pb.ModelInstanceGroup.KIND_CPU)
    if config.max_batch_size and not config.HasField("dynamic_batching"):
        config.dynamic_batching.max_queue_delay_microseconds = int(options.batch_delay_ms * 1000)


def _config_type(spec: TensorSpec) -> int:
    datatype = datatype_of(spec.dtype)
    return pb.DataType.Value("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}")


def config_dict(config: pb.ModelConfig) -> dict:
    """A ModelConfig as Triton's REST API shows it (protobuf JSON, with its int64s as numbers)."""
    from google.protobuf import json_format
    data = json_format.MessageToDict(config, preserving_proto_field_name=True)
    for tensor in [*data.get("input", []), *data.get("output", [])]:
        tensor["dims"] = [int(d) for d in tensor.get("dims", [])]
    batching = data.get("dynamic_batching")
    if batching is not None:
        batching["max_queue_delay_microseconds"] = int(batching.get("max_queue_delay_microseconds", 0))
    return data


def read_config(folder: Path, name: str) -> pb.ModelConfig:
    """A model folder's config.pbtxt (protobuf text) or config.json (its JSON form) as Triton's
    ModelConfig; fields modelport does not use (optimization, reshape, ...) are skipped."""
    from google.protobuf import json_format, text_format
    config = pb.ModelConfig()
    text_path, json_path = folder / "config.pbtxt", folder / "config.json"
    try:
        if text_path.is_file():
            text_format.Parse(text_path.read_text(), config, allow_unknown_field=True)
        elif json_path.is_file():
            import json
            json_format.ParseDict(json.loads(json_path.read_text()), config, ignore_unknown_fields=True)
    except Exception as exc:
        raise UsageError(f"cannot read the config of model {name!r}: {first_line(exc)}",
                         hint="config.pbtxt is Triton's ModelConfig in protobuf text format") from exc
    if config.name and config.name != name:
        raise UsageError(f"the config in folder {name!r} names the model {config.name!r}",
                         hint="a model's config must carry its folder's name (or leave name out)")
    config.name = name
    if config.max_batch_size < 0:
        raise UsageError(f"model {name!r}: max_batch_size must be 0 or more")
    return config


def _apply_policy(config: pb.ModelConfig, numbered: list[Path]) -> list[Path]:
    policy = config.version_policy.WhichOneof("policy_choice")
    if policy == "all":
        return numbered
    if policy == "specific":
        wanted = {str(v) for v in config.version_policy.specific.versions}
        return [p for p in numbered if p.name in wanted]
    count = config.version_policy.latest.num_versions if policy == "latest" else 1
    return numbered[-max(count, 1):]


def _model_file(version_dir: Path, root: Path) -> Path:
    """The model in a version folder: ``model.<suffix>`` (file or folder), else its only entry; an
    MLflow model folder is the model itself."""
    if _is_model_folder(version_dir):
        return version_dir
    entries = [p for p in version_dir.iterdir() if not p.name.startswith(".")]
    # An OpenVINO IR is model.xml with its weights in model.bin: the .bin is part of the model, not another.
    entries = [p for p in entries if not (p.suffix == ".bin" and p.with_suffix(".xml").is_file())]
    named = [p for p in entries if p.name == "model" or p.name.startswith("model.")]
    candidates = named or entries
    if len(candidates) != 1:
        found = ", ".join(sorted(p.name for p in entries)) or "nothing"
        raise UsageError(f"{str(version_dir)!r} should hold one model named model.<suffix>; it holds {found}")
    path = candidates[0].resolve()
    if not path.is_relative_to(root):
        raise UsageError(f"{str(candidates[0])!r} links outside the model repository")
    return path


def _the_model_in(path: Path) -> Path:
    """A model path as given; a folder that is neither a model (SavedModel, TF.js) nor a repository
    stands for the one model inside it — KServe's storage initializer puts the model file in
    /mnt/models."""
    if path.is_dir() and not _is_model_folder(path):
        return _model_file(path, path.resolve())
    return path


def _is_model_folder(path: Path) -> bool:
    """A folder that is one model: a SavedModel, TF.js or ORT Web bundle, an MLflow model."""
    from ..formats.detect import sniff
    from ..formats.mlflow import is_mlflow_folder
    return path.is_dir() and (is_mlflow_folder(path) or sniff(path)[0] is not None)


def _is_repository(path: Path) -> bool:
    """A folder of model folders holding numbered version folders (Triton's layout)."""
    if not path.is_dir() or _is_model_folder(path):  # a SavedModel or TF.js folder is a model, not a repository
        return False
    return any(sub.is_dir() and any(v.is_dir() and v.name.isdigit() for v in sub.iterdir())
               for sub in path.iterdir() if sub.is_dir())


def _is_factory(source) -> bool:
    from ..formats import is_factory_spec
    return is_factory_spec(source)


def _model_name(source) -> str:
    if _is_factory(source):
        name = str(source).rsplit(":", 1)[1].split(".")[-1]
    else:
        path = Path(source)
        name = path.name.split(".")[0] if path.name.split(".")[0] else path.name
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"
    return name if MODEL_NAME.match(name) else f"m{name}"


def version_key(version: str):
    return (0, int(version)) if version.isdigit() else (1, version)
