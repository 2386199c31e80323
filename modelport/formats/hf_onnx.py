"""Hugging Face ONNX folders: a generative model's ``config.json``, generation config and tokenizer
files beside its graphs under ``onnx/``, the layout transformers.js loads and ONNX Runtime users
expect (convert/hf_decoder.py writes them).

- A decoder: ``onnx/model.onnx`` takes the key/value cache as flat tensors,
  ``past_key_values.{i}.key`` / ``.value`` (batch_size, kv_heads, past_sequence_length, head_dim),
  and returns ``logits`` and ``present.{i}.key`` / ``.value``.
- An encoder-decoder: ``onnx/encoder_model.onnx`` (``input_ids``, ``attention_mask`` ->
  ``last_hidden_state``) and ``onnx/decoder_model_merged.onnx`` (``encoder_attention_mask``,
  ``input_ids``, ``encoder_hidden_states`` and ``past_key_values.{i}.decoder/.encoder.key/.value``
  -> ``logits``, ``present.*``).

As a Session the folder is the model at an empty past: fed what its transformers model is fed
(``input_ids``, ``attention_mask``; ``decoder_input_ids`` too for an encoder-decoder), it answers
``logits``, so a conversion is checked like any other; :meth:`DecoderFolderSession.generate` is
the cached greedy loop that the generation check, ``modelport.generate`` and the server run.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import InvalidModelError, UsageError
from ..tensors import TensorSpec
from .base import Format, Probe, Session, register_format

ONNX_FILE = Path("onnx") / "model.onnx"
ENCODER_FILE = Path("onnx") / "encoder_model.onnx"
DECODER_FILE = Path("onnx") / "decoder_model_merged.onnx"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
CACHE_KINDS = ("key", "value")
SEQ2SEQ_PARTS = ("decoder", "encoder")  # the self-attention cache, the cross-attention one
# What a user feeds; position_ids and the past are the loop's business.
LOOP_INPUTS = ("position_ids",)
# transformers.js in Node (onnxruntime-node underneath): installed by the set-up, `npm ci` in its folder.
TRANSFORMERSJS_RUNNER = Path(__file__).resolve().parent.parent / "edge" / "transformersjs_runner"
TRANSFORMERSJS_TIMEOUT = 900


@dataclass
class Generation:
    """Greedy decoding from one prompt: the new token ids, the logits each was picked from
    (one row per new token) and the seconds the loop took."""

    tokens: list[int]
    step_logits: np.ndarray
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else float("inf")


def _cache_names(prefix: str, layers: int, seq2seq: bool) -> list[str]:
    parts = [f".{part}" for part in SEQ2SEQ_PARTS] if seq2seq else [""]
    return [f"{prefix}.{layer}{part}.{kind}" for layer in range(layers) for part in parts for kind in CACHE_KINDS]


def past_names(layers: int, seq2seq: bool = False) -> list[str]:
    return _cache_names("past_key_values", layers, seq2seq)


def present_names(layers: int, seq2seq: bool = False) -> list[str]:
    return _cache_names("present", layers, seq2seq)


class DecoderFolderSession(Session):
    """A decoder (or encoder-decoder) folder run by ONNX Runtime: one forward pass at an empty past,
    or the cached greedy loop."""

    format_name = "hf-onnx"
    runtime_name = "onnxruntime"  # whose loop generate() is, in the generation check's report

    def __init__(self, path: str | Path, *, threads: int = 0, **_ignored):
        super().__init__(path)
        from .onnx import OnnxSession
        folder = Path(path)
        self.seq2seq = (folder / DECODER_FILE).is_file()
        graph_file = folder / (DECODER_FILE if self.seq2seq else ONNX_FILE)
        if not graph_file.is_file():
            raise InvalidModelError(f"{str(folder)!r} has no {ONNX_FILE.as_posix()} (nor {DECODER_FILE.as_posix()})",
                                    hint="such a folder is what `modelport convert FOLDER OUT --to hf-onnx` writes")
        if self.seq2seq and not (folder / ENCODER_FILE).is_file():
            raise InvalidModelError(f"{str(folder)!r} has {DECODER_FILE.as_posix()} but no {ENCODER_FILE.as_posix()}")
        self.graph = OnnxSession(graph_file, threads=threads)
        self.encoder = OnnxSession(folder / ENCODER_FILE, threads=threads) if self.seq2seq else None
        self.config = _read_json(folder / CONFIG)
        self.generation_config = _read_json(folder / "generation_config.json", required=False)
        by_name = {spec.name: spec for spec in self.graph.inputs}
        per_layer = 4 if self.seq2seq else 2
        self.layers = sum(1 for name in by_name if name.startswith("past_key_values.")) // per_layer
        self.cache = past_names(self.layers, self.seq2seq)
        missing = [name for name in self.cache if name not in by_name]
        if not self.layers or missing or "logits" not in {o.name for o in self.graph.outputs}:
            raise InvalidModelError(f"{str(graph_file)!r} is not a decoder with a key/value cache (it needs "
                                    f"{self.cache[0] if self.cache else 'past_key_values.*'} ... inputs and a logits "
                                    "output)", hint="export it with `modelport convert FOLDER OUT --to hf-onnx`")
        # Per past input: (heads, head_dim), static in the graph.
        self.cache_dims = {name: (by_name[name].shape[1], by_name[name].shape[3]) for name in self.cache}
        self.cache_dtype = by_name[self.cache[0]].dtype
        self._takes = set(by_name)
        if self.seq2seq:
            target = by_name["input_ids"]
            self.inputs = [*self.encoder.inputs, TensorSpec("decoder_input_ids", target.shape, target.dtype,
                                                            dim_names=target.dim_names)]
        else:
            self.inputs = [spec for spec in self.graph.inputs if spec.name not in self.cache
                           and spec.name not in LOOP_INPUTS]
        self.outputs = [spec for spec in self.graph.outputs if spec.name == "logits"]
        if self.seq2seq:  # what transformers' encoder-decoders return beside the logits
            states = self.encoder.outputs[0]
            self.outputs.append(TensorSpec("encoder_last_hidden_state", states.shape, states.dtype))
        self._loaded_tokenizer = None

    # -- one step of the graph ----------------------------------------------------------------------
    def _empty_past(self, batch: int) -> dict[str, np.ndarray]:
        return {name: np.zeros((batch, heads, 0, dim), self.cache_dtype) for name, (heads, dim) in self.cache_dims.items()}

    def _decoder_feeds(self, input_ids: np.ndarray, attention_mask: np.ndarray | None,
                       past: dict[str, np.ndarray], past_length: int) -> dict[str, np.ndarray]:
        batch, length = input_ids.shape
        feeds = {"input_ids": input_ids.astype(np.int64), **past}
        if "attention_mask" in self._takes:
            mask = np.ones((batch, past_length + length), np.int64) if attention_mask is None else attention_mask
            feeds["attention_mask"] = mask.astype(np.int64)
        if "position_ids" in self._takes:
            # What the model computes when it is given none: the positions after the past (an
            # attention mask's padding changes which keys are read, not the positions).
            feeds["position_ids"] = np.broadcast_to(np.arange(past_length, past_length + length, dtype=np.int64),
                                                    (batch, length)).copy()
        return feeds

    def _encode(self, input_ids: np.ndarray, attention_mask: np.ndarray | None) -> dict[str, np.ndarray]:
        """An encoder-decoder's encoder once: what every decoder step is fed beside its own inputs."""
        mask = np.ones_like(input_ids, dtype=np.int64) if attention_mask is None else attention_mask.astype(np.int64)
        feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": mask}
        feeds = {spec.name: feeds[spec.name] for spec in self.encoder.inputs}
        states, = self.encoder.run_outputs(["last_hidden_state"], feeds)
        return {"encoder_hidden_states": states, "encoder_attention_mask": mask}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.seq2seq:
            batch = feeds["decoder_input_ids"].shape[0]
            encoded = self._encode(feeds["input_ids"], feeds.get("attention_mask"))
            graph_feeds = {**encoded, "input_ids": feeds["decoder_input_ids"].astype(np.int64), **self._empty_past(batch)}
            graph_feeds = {name: value for name, value in graph_feeds.items() if name in self._takes}
            logits, = self.graph.run_outputs(["logits"], graph_feeds)
            return {"logits": logits, "encoder_last_hidden_state": encoded["encoder_hidden_states"]}
        graph_feeds = self._decoder_feeds(feeds["input_ids"], feeds.get("attention_mask"),
                                          self._empty_past(feeds["input_ids"].shape[0]), 0)
        logits, = self.graph.run_outputs(["logits"], graph_feeds)
        return {"logits": logits}

    # -- the cached greedy loop ------------------------------------------------------------------
    def stream(self, prompt_ids: Sequence[int], max_new_tokens: int = 32, *,
               stop_at_eos: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Greedy decoding after ``prompt_ids`` (batch 1), one (token, logits) per step as it is made,
        the cache carried from step to step; ties go to the lowest token id (argmax's first maximum,
        as in torch). Stops after ``max_new_tokens``, or at an end-of-sequence token when asked.
        An encoder-decoder encodes the prompt once and decodes from its decoder start token."""
        prompt = np.asarray(prompt_ids, dtype=np.int64).reshape(1, -1)
        if prompt.shape[1] == 0:
            raise UsageError("generation needs a prompt of at least one token")
        eos = self.eos_token_ids() if stop_at_eos else set()
        names = ["logits", *(present_names(self.layers, self.seq2seq))]
        past, past_length = self._empty_past(1), 0
        if self.seq2seq:
            context = {name: value for name, value in self._encode(prompt, None).items() if name in self._takes}
            step_input = np.array([[self.decoder_start_token_id()]], np.int64)
        else:
            context, step_input = {}, prompt
        for _ in range(max_new_tokens):
            if self.seq2seq:
                feeds = {**context, "input_ids": step_input, **past}
            else:
                feeds = self._decoder_feeds(step_input, None, past, past_length)
            outputs = self.graph.run_outputs(names, feeds)
            last = outputs[0][0, -1]
            token = int(np.argmax(last))
            yield token, last
            past_length += step_input.shape[1]
            past = dict(zip(self.cache, outputs[1:]))
            step_input = np.array([[token]], np.int64)
            if token in eos:
                return

    def decoder_start_token_id(self) -> int:
        for source in (self.generation_config, self.config):
            if source.get("decoder_start_token_id") is not None:
                return int(source["decoder_start_token_id"])
        raise InvalidModelError(f"{str(self.path)!r}: the config names no decoder_start_token_id",
                                hint="set it in config.json or generation_config.json")

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int = 32, *,
                 stop_at_eos: bool = False) -> Generation:
        """:meth:`stream` run to its end: the tokens, the logits each was picked from, the seconds."""
        start = time.perf_counter()
        steps = list(self.stream(prompt_ids, max_new_tokens, stop_at_eos=stop_at_eos))
        seconds = time.perf_counter() - start
        rows = [row.astype(np.float32) for _, row in steps]
        vocabulary = self.vocabulary_size or 0
        return Generation([token for token, _ in steps], np.stack(rows) if rows else np.zeros((0, vocabulary), np.float32),
                          seconds)

    def eos_token_ids(self) -> set[int]:
        return _ids(self.generation_config.get("eos_token_id", self.config.get("eos_token_id")))

    @property
    def max_length(self) -> int | None:
        """The most positions the model takes (prompt and new tokens), where the config says."""
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            if isinstance(self.config.get(key), int):
                return self.config[key]
        return None

    # -- text, where the folder has a tokenizer ---------------------------------------------------
    @property
    def has_tokenizer(self) -> bool:
        return (self.path / TOKENIZER).is_file()

    def encode(self, text: str) -> list[int]:
        return self._tokenizer().encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer().decode(list(ids))

    def _tokenizer(self):
        if self._loaded_tokenizer is None:
            if not self.has_tokenizer:
                raise UsageError(f"{str(self.path)!r} has no {TOKENIZER}: give token ids, not text")
            try:
                from tokenizers import Tokenizer
            except ModuleNotFoundError:
                raise UsageError("text needs the tokenizers package", hint="pip install tokenizers") from None
            self._loaded_tokenizer = Tokenizer.from_file(str(self.path / TOKENIZER))
        return self._loaded_tokenizer

    def other_runtimes(self) -> dict[str, Any]:
        """Runtimes beyond ONNX Runtime's Python API that users load the folder in, each as
        ``generate_many(prompts, max_new_tokens) -> [Generation]``, or why it is not installed here."""
        missing = transformersjs_missing()
        return {"transformers.js": missing if missing is not None else self.generate_in_transformersjs}

    def generate_in_transformersjs(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        """Greedy decoding by transformers.js (``model.generate``) from each prompt; no logits come back."""
        missing = transformersjs_missing()
        if missing is not None:
            raise UsageError(missing, hint=f"npm ci --prefix {TRANSFORMERSJS_RUNNER}")
        request = json.dumps({"prompts": [list(map(int, p)) for p in prompts], "max_new_tokens": max_new_tokens,
                              "seq2seq": self.seq2seq})
        try:
            done = subprocess.run([shutil.which("node"), str(TRANSFORMERSJS_RUNNER / "run.mjs"), str(self.path)],
                                  input=request, capture_output=True, text=True, timeout=TRANSFORMERSJS_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise InvalidModelError(f"transformers.js did not finish within {TRANSFORMERSJS_TIMEOUT}s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("    at ")]
            raise InvalidModelError("transformers.js cannot run the folder: " + " / ".join(lines[-3:])[:800])
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        return [Generation(item["tokens"], np.zeros((0, 0), np.float32), item["seconds"]) for item in answer["results"]]

    @property
    def vocabulary_size(self) -> int | None:
        return self.config.get("vocab_size") or (self.outputs[0].shape[-1] if self.outputs[0].shape else None)

    def describe(self) -> dict[str, Any]:
        heads, dim = self.cache_dims[self.cache[0]]
        parts = "(self-attention, cross-attention) x " if self.seq2seq else ""
        return {**super().describe(), "model_type": self.config.get("model_type"), "layers": self.layers,
                "kind": "encoder-decoder" if self.seq2seq else "decoder",
                "cache": f"{self.layers} layers x {parts}(key, value) of [batch_size, {heads}, "
                         f"past_sequence_length, {dim}]"}

    def close(self) -> None:
        self.graph.close()
        if self.encoder is not None:
            self.encoder.close()


def transformersjs_missing() -> str | None:
    """Why transformers.js cannot run here (no Node, packages not installed), or None."""
    if shutil.which("node") is None:
        return "transformers.js needs Node.js, which is not on the PATH"
    if not (TRANSFORMERSJS_RUNNER / "node_modules" / "@huggingface" / "transformers").is_dir():
        return "the transformers.js runner's packages are not installed"
    return None


def _ids(value) -> set[int]:
    if value is None:
        return set()
    return {int(v) for v in value} if isinstance(value, (list, tuple)) else {int(value)}


def _read_json(path: Path, required: bool = True) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return {}
        raise InvalidModelError(f"{str(path.parent)!r} has no {path.name}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModelError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidModelError(f"{str(path)!r} is not a JSON object")
    return data


def generate(folder: str | Path, prompt_ids: Sequence[int], max_new_tokens: int = 32, *,
             stop_at_eos: bool = True) -> list[int]:
    """The new token ids greedy decoding gives after ``prompt_ids``, run by ONNX Runtime with the cache."""
    session = DecoderFolderSession(folder)
    try:
        return session.generate(prompt_ids, max_new_tokens, stop_at_eos=stop_at_eos).tokens
    finally:
        session.close()


def open_decoder_folder(path, **options) -> DecoderFolderSession:
    return DecoderFolderSession(path, **options)


def sniff_decoder_folder(probe: Probe) -> str | None:
    if probe.is_dir and (probe.path / CONFIG).is_file() and ((probe.path / ONNX_FILE).is_file()
                                                            or (probe.path / DECODER_FILE).is_file()):
        return "a Hugging Face ONNX folder (config.json + onnx/model.onnx or decoder_model_merged.onnx)"
    return None


register_format(Format("hf-onnx", "Hugging Face ONNX folder", (), open_decoder_folder, sniff_decoder_folder,
                       is_directory=True, runtime_modules=("onnx", "onnxruntime"),
                       aliases=("onnx-folder", "transformers.js", "transformersjs")),
                before="huggingface")
