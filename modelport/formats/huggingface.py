"""Hugging Face model folders (what ``save_pretrained`` writes): ``config.json`` and the weights in
safetensors (one file, or shards with their ``model.safetensors.index.json``).

The folder is read with ``transformers`` itself, offline and without remote code: the head comes
from ``--task`` (optimum's task names) or else from the config's ``architectures``, the weights from
safetensors only (a ``pytorch_model.bin`` is a pickle: it needs ``--trust-pickle``). The inputs and
their dynamic axes come from the task, so no ``--input-shape`` is needed (it still overrides). The
result is a PyTorch model in every other respect: it converts on PyTorch's edges.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, UsageError, first_line
from ..tensors import TensorSpec
from .base import Format, Probe, register_format
from .pytorch import TorchSession

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
AUDIO_SAMPLES = 16000  # one second at 16 kHz: raw audio longer than any convolution stack's reach


@dataclass(frozen=True)
class Task:
    """An optimum task: the transformers Auto class of its head and the inputs it is fed."""

    auto_class: str
    inputs: str  # "text", "seq2seq", "image" or "audio"


TASKS: dict[str, Task] = {
    "feature-extraction": Task("AutoModel", "text"),
    "text-classification": Task("AutoModelForSequenceClassification", "text"),
    "token-classification": Task("AutoModelForTokenClassification", "text"),
    "fill-mask": Task("AutoModelForMaskedLM", "text"),
    "question-answering": Task("AutoModelForQuestionAnswering", "text"),
    "multiple-choice": Task("AutoModelForMultipleChoice", "text"),
    "text-generation": Task("AutoModelForCausalLM", "text"),
    "text2text-generation": Task("AutoModelForSeq2SeqLM", "seq2seq"),
    "image-classification": Task("AutoModelForImageClassification", "image"),
    "automatic-speech-recognition": Task("AutoModelForCTC", "audio"),
}
# Tasks whose models generate token by token (a key/value cache; the generation check).
GENERATIVE_TASKS = ("text-generation", "text2text-generation")
# The task an architecture's class name implies (its suffix), as the config's "architectures" says.
ARCHITECTURE_TASKS: list[tuple[str, str]] = [
    ("ForCausalLM", "text-generation"), ("LMHeadModel", "text-generation"),
    ("ForSequenceClassification", "text-classification"), ("ForTokenClassification", "token-classification"),
    ("ForMaskedLM", "fill-mask"), ("ForQuestionAnswering", "question-answering"),
    ("ForMultipleChoice", "multiple-choice"), ("ForConditionalGeneration", "text2text-generation"),
    ("ForImageClassification", "image-classification"), ("ForCTC", "automatic-speech-recognition"),
    ("Model", "feature-extraction"),
]


def read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModelError(f"cannot read {str(folder / CONFIG)!r}: {first_line(exc)}",
                                hint="a Hugging Face model folder holds the config.json save_pretrained wrote") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise InvalidModelError(f"{str(folder / CONFIG)!r} names no model_type",
                                hint="a Hugging Face model folder holds the config.json save_pretrained wrote")
    return config


def task_of(config: dict[str, Any], task: str | None) -> str:
    """The task asked for, else the one the config's architecture implies."""
    if task is not None:
        if task not in TASKS:
            raise UsageError(f"--task {task!r} is not a task modelport knows", hint="tasks: " + ", ".join(TASKS))
        return task
    for architecture in config.get("architectures") or ():
        for suffix, implied in ARCHITECTURE_TASKS:
            if architecture.endswith(suffix):
                return implied
    raise UsageError(f"the config names no architecture modelport can map to a task "
                     f"({', '.join(config.get('architectures') or ['none'])})",
                     hint="give --task, one of: " + ", ".join(TASKS))


def weight_files(folder: Path, trust_pickle: bool) -> list[Path]:
    """The safetensors files the model's weights are in (every shard the index names, each present),
    or the pickled ones when trusted; InvalidModelError / UntrustedPickleError otherwise."""
    from ..errors import UntrustedPickleError
    index = folder / SAFETENSORS_INDEX
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidModelError(f"cannot read the shard index {str(index)!r}: {first_line(exc)}") from None
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise InvalidModelError(f"{str(folder)!r} lacks the safetensors shard(s) its index names: "
                                    + ", ".join(missing), hint="copy every shard of the model into the folder")
        return [folder / name for name in shards]
    if (folder / SAFETENSORS).is_file():
        return [folder / SAFETENSORS]
    pickled = [folder / name for name in PICKLED_WEIGHTS if (folder / name).is_file()]
    if pickled and not trust_pickle:
        raise UntrustedPickleError(f"{str(folder)!r} has its weights only as {pickled[0].name}, a pickle",
                                   hint="re-save it with save_pretrained (safetensors), or pass --trust-pickle "
                                        "if you trust where it came from")
    if pickled:
        return pickled
    raise InvalidModelError(f"{str(folder)!r} holds a config.json but no weights ({SAFETENSORS}, or shards "
                            f"with {SAFETENSORS_INDEX})", hint="save the model with save_pretrained into the folder")


def task_inputs(task: Task, config, model) -> list[TensorSpec]:
    """The inputs a task's head is fed, with their dynamic axes named as optimum names them."""
    import inspect
    accepted = set(inspect.signature(model.forward).parameters)
    vocabulary = getattr(config, "vocab_size", None)
    if task.inputs in ("text", "seq2seq"):
        specs = [TensorSpec("input_ids", (None, None), np.int64, dim_names=("batch_size", "sequence_length"),
                            index_bound=vocabulary)]
        if "attention_mask" in accepted:
            specs.append(TensorSpec("attention_mask", (None, None), np.int64,
                                    dim_names=("batch_size", "sequence_length"), index_bound=2))
        if task.inputs == "seq2seq":
            specs.append(TensorSpec("decoder_input_ids", (None, None), np.int64,
                                    dim_names=("batch_size", "decoder_sequence_length"), index_bound=vocabulary))
        return specs
    if task.inputs == "image":
        size = getattr(config, "image_size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)[:2]
        return [TensorSpec("pixel_values", (None, getattr(config, "num_channels", 3), height, width), np.float32,
                           dim_names=("batch_size", None, None, None))]
    return [TensorSpec("input_values", (None, None), np.float32, dim_names=("batch_size", "sequence_length"))]


class HuggingFaceSession(TorchSession):
    """A ``save_pretrained`` folder opened as the task's transformers model."""

    runtime_name = "transformers"  # whose generate() loop this is, in the generation check's report

    def __init__(self, source, *, task: str | None = None, input_specs=None, trust_pickle: bool = False,
                 dims=None, **_ignored):
        folder = Path(source)
        config_data = read_config(folder)
        if config_data.get("auto_map"):
            raise UsageError(f"{str(folder)!r} needs its own Python code (the config's auto_map), which modelport "
                             "does not run", hint="export it with the code it ships, or use an architecture "
                                                  "transformers has")
        self.task = task_of(config_data, task)
        files = weight_files(folder, trust_pickle)
        model = self._load(folder, config_data, files)
        specs = list(input_specs) if input_specs else task_inputs(TASKS[self.task], model.config, model)
        if TASKS[self.task].inputs == "audio" and not input_specs:
            dims = {"sequence_length": AUDIO_SAMPLES, **dict(dims or {})}
        self.folder_info = {"architecture": type(model).__name__, "model_type": config_data["model_type"],
                            "task": self.task, "dtype": str(config_data.get("dtype") or config_data.get("torch_dtype")
                                                            or "float32"),
                            "weights": [f.name for f in files],
                            "weights_bytes": sum(f.stat().st_size for f in files)}
        super().__init__(folder, module=model, kind="huggingface", input_specs=specs, dims=dims)

    def _load(self, folder: Path, config_data: dict, files: list[Path]):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never reach for the hub
        import transformers
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        task = TASKS[self.task]
        try:
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        except (ValueError, KeyError) as exc:
            raise UsageError(f"transformers {transformers.__version__} does not know the model type "
                             f"{config_data['model_type']!r} of {str(folder)!r}: {first_line(exc)}",
                             hint="upgrade transformers, or check config.json's model_type") from None
        auto = getattr(transformers, task.auto_class)
        try:
            model = auto.from_pretrained(folder, config=config, local_files_only=True, trust_remote_code=False,
                                         use_safetensors=files[0].suffix == ".safetensors")
        except ValueError as exc:
            if "Unrecognized configuration class" in str(exc):
                heads = [name for name, t in TASKS.items() if _has_head(transformers, t, config)]
                raise UsageError(f"{config_data['model_type']!r} models have no {self.task!r} head in transformers",
                                 hint="tasks this model has: " + (", ".join(heads) or "none")) from None
            raise InvalidModelError(f"cannot load {str(folder)!r}: {first_line(exc)}") from None
        except OSError as exc:
            raise InvalidModelError(f"cannot load {str(folder)!r}: {first_line(exc)}",
                                    hint="the weights may be truncated or not match config.json") from None
        return model.float().eval()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.folder_info}

    @property
    def generates(self) -> bool:
        return self.task in GENERATIVE_TASKS

    def generate(self, prompt_ids, max_new_tokens: int = 32, *, stop_at_eos: bool = False):
        """transformers' own greedy decoding (``generate(do_sample=False)`` with its cache) after
        ``prompt_ids`` (batch 1): the reference a decoder folder's loop is checked against."""
        if self.task not in GENERATIVE_TASKS:
            raise UsageError(f"generation needs a {' or '.join(GENERATIVE_TASKS)} model; this folder is opened "
                             f"for {self.task!r}")
        import time
        import torch
        import transformers
        from .hf_onnx import Generation
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long)
        # Without stop_at_eos, a fixed number of tokens, as the ONNX loop is asked for.
        settings = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1,
                    "pad_token_id": self.module.config.pad_token_id or 0,
                    "eos_token_id": self.module.generation_config.eos_token_id if stop_at_eos else None}
        if self.module.config.is_encoder_decoder:  # plain greedy: only the start token carried over
            start_token = self.module.generation_config.decoder_start_token_id
            settings["decoder_start_token_id"] = (start_token if start_token is not None
                                                  else self.module.config.decoder_start_token_id)
        # The model's own generation config is set aside for the call, so that none of its logits
        # processors (forced tokens, repetition penalties) joins in: plain greedy decoding.
        saved, self.module.generation_config = self.module.generation_config, transformers.GenerationConfig(**settings)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.module.generate(ids, attention_mask=torch.ones_like(ids), use_cache=True,
                                           output_logits=True, return_dict_in_generate=True)
        finally:
            self.module.generation_config = saved
        seconds = time.perf_counter() - start
        # A decoder's sequences start with the prompt, an encoder-decoder's with its decoder start token.
        tokens = out.sequences[0, 1 if self.module.config.is_encoder_decoder else ids.shape[1]:].tolist()
        logits = torch.stack([step[0] for step in out.logits]).float().numpy() if out.logits else np.zeros((0, 0))
        return Generation(tokens, logits, seconds)


def _has_head(transformers, task: Task, config) -> bool:
    mapping = getattr(transformers, task.auto_class)._model_mapping
    try:
        mapping[type(config)]
        return True
    except KeyError:
        return False


def open_huggingface(source, **options) -> HuggingFaceSession:
    return HuggingFaceSession(source, **options)


def sniff_huggingface(probe: Probe) -> str | None:
    """A folder whose config.json names a model_type (its weights are checked when it is opened,
    so that a folder missing them is told so by name)."""
    if not probe.is_dir or not (probe.path / CONFIG).is_file():
        return None
    try:
        config = json.loads((probe.path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return "a Hugging Face model folder (save_pretrained)" if isinstance(config, dict) and "model_type" in config else None


register_format(Format("huggingface", "Hugging Face model folder", (), open_huggingface, sniff_huggingface,
                       is_directory=True, extra="transformers", runtime_modules=("torch", "transformers"),
                       aliases=("hf", "transformers"),
                       open_options=frozenset({"task", "input_specs", "trust_pickle", "dims"})))
