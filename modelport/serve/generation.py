"""The generate extension (KServe / Triton): ``POST /v2/models/{name}/generate`` and
``/generate_stream`` for decoder folders, greedy decoding with the key/value cache server-side.

A request is a JSON object: ``text_input`` (a string; the folder's ``tokenizer.json`` turns it
into ids) or ``input_ids`` (a list of token ids), and ``parameters``: ``max_tokens`` (default
DEFAULT_MAX_TOKENS), ``stop`` (stop at the end-of-sequence token, default true). Sampling is not
offered: ``temperature`` 0 and ``do_sample`` false are accepted, anything else is refused. The
answer has ``output_ids``, ``text_output`` (when the folder has a tokenizer) and the request's id;
the stream sends one server-sent event per token, then one with ``"finished": true``.

Everything is checked before the model runs: the ids are integers in the vocabulary, the prompt
and new tokens fit the model's positions, the model is a decoder. The Session does the loop
(formats/hf_onnx.py), in a worker thread so the server keeps answering.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

from ..errors import ModelportError, ServeError, first_line
from .repository import ModelVersion

DEFAULT_MAX_TOKENS = 32
MAX_TOKENS_LIMIT = 4096
MAX_PROMPT_TOKENS = 32768
PARAMETERS = {"max_tokens", "stop", "temperature", "do_sample", "stream"}
FIELDS = {"text_input", "input_ids", "parameters", "id"}


@dataclass
class GenerateRequest:
    model: str
    version: str
    text: str | None
    ids: list[int] | None
    max_tokens: int
    stop: bool
    id: str = ""


def parse_generate(data: Any, model: str, version: str) -> GenerateRequest:
    """The request's fields, each of the right kind; ServeError (400) naming what is wrong."""
    if not isinstance(data, dict):
        raise ServeError('the generate request is a JSON object, e.g. {"text_input": "...", '
                         '"parameters": {"max_tokens": 16}}')
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ServeError(f"unknown field(s) {unknown} in the generate request; known: {sorted(FIELDS)}")
    text, ids = data.get("text_input"), data.get("input_ids")
    if (text is None) == (ids is None):
        raise ServeError("give the prompt as text_input (a string) or input_ids (a list of token ids), one of them")
    if text is not None and (not isinstance(text, str) or not text):
        raise ServeError("text_input is a non-empty string")
    if ids is not None and (not isinstance(ids, list) or not ids
                            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise ServeError("input_ids is a non-empty list of integer token ids")
    if ids is not None and len(ids) > MAX_PROMPT_TOKENS:
        raise ServeError(f"input_ids has {len(ids)} tokens; at most {MAX_PROMPT_TOKENS}")
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ServeError("parameters is a JSON object")
    unknown = sorted(set(parameters) - PARAMETERS)
    if unknown:
        raise ServeError(f"unknown parameter(s) {unknown}; this server decodes greedily and takes "
                         f"{sorted(PARAMETERS)}")
    if parameters.get("temperature", 0) not in (0, 0.0) or parameters.get("do_sample", False) is not False:
        raise ServeError("sampling is not offered: decoding is greedy (temperature 0, do_sample false)")
    max_tokens = parameters.get("max_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise ServeError(f"max_tokens is an integer from 1 to {MAX_TOKENS_LIMIT}")
    stop = parameters.get("stop", True)
    if not isinstance(stop, bool):
        raise ServeError("stop is true (end at the end-of-sequence token) or false")
    request_id = data.get("id", "")
    if not isinstance(request_id, str):
        raise ServeError("id is a string")
    return GenerateRequest(model, version, text, ids, max_tokens, stop, request_id)


def prompt_ids(entry: ModelVersion, request: GenerateRequest) -> list[int]:
    """The prompt as token ids, checked against the model: a decoder, ids in its vocabulary, prompt
    and new tokens within its positions."""
    decoder = entry.generator
    if decoder is None:
        raise ServeError(f"model {entry.name!r} ({entry.format}) is not a decoder: generate serves decoder folders "
                         "(modelport convert HF_FOLDER OUT --to hf-onnx); use /infer for this model")
    if request.text is not None:
        if not decoder.has_tokenizer:
            raise ServeError(f"model {entry.name!r} has no tokenizer.json: send input_ids instead of text_input")
        ids = decoder.encode(request.text)
        if not ids:
            raise ServeError("text_input encodes to no tokens")
    else:
        ids = request.ids
    vocabulary = decoder.vocabulary_size
    if vocabulary is not None:
        outside = [i for i in ids if not 0 <= i < vocabulary]
        if outside:
            raise ServeError(f"token id(s) {outside[:5]} are outside the vocabulary [0, {vocabulary})")
    limit = decoder.max_length
    if limit is not None and decoder.seq2seq and max(len(ids), request.max_tokens) > limit:
        raise ServeError(f"the prompt ({len(ids)} tokens) or max_tokens ({request.max_tokens}) exceeds the "
                         f"model's {limit} positions")
    if limit is not None and not decoder.seq2seq and len(ids) + request.max_tokens > limit:
        raise ServeError(f"the prompt ({len(ids)} tokens) and max_tokens ({request.max_tokens}) exceed the "
                         f"model's {limit} positions")
    return ids


def answer(entry: ModelVersion, request: GenerateRequest, tokens: list[int], seconds: float) -> dict:
    decoder = entry.generator
    body = {"model_name": entry.name, "model_version": entry.version, "output_ids": tokens,
            "tokens_per_second": round(len(tokens) / seconds, 2) if seconds > 0 else None}
    if decoder.has_tokenizer:
        body["text_output"] = decoder.decode(tokens)
    if request.id:
        body["id"] = request.id
    return body


async def generate(dataplane, request: GenerateRequest) -> dict:
    entry = dataplane.repository.get(request.model, request.version)
    ids = prompt_ids(entry, request)
    timeout = dataplane.repository.options.request_timeout_s
    started = time.perf_counter()
    async with dataplane.running(entry):
        try:
            generation = await asyncio.wait_for(asyncio.to_thread(
                entry.generator.generate, ids, request.max_tokens, stop_at_eos=request.stop), timeout)
        except asyncio.TimeoutError:
            raise ServeError(f"model {entry.name!r} did not finish generating within {timeout:g} s (the request "
                             "timeout); ask for fewer max_tokens", status=504) from None
        except ModelportError as exc:
            raise ServeError(f"model {entry.name!r} failed to generate: {exc}", status=500) from exc
    return answer(entry, request, generation.tokens, time.perf_counter() - started)


async def stream(dataplane, request: GenerateRequest) -> AsyncIterator[dict]:
    """One event per new token (its id and, with a tokenizer, its text), then a last one with the
    whole answer and ``"finished": true``. Checked before the first event, so a bad request is
    still a plain 400."""
    entry = dataplane.repository.get(request.model, request.version)
    ids = prompt_ids(entry, request)

    async def events():
        decoder = entry.generator
        started = time.perf_counter()
        tokens: list[int] = []
        text = ""  # the decoded text so far: each event carries what the new token added to it
        async with dataplane.running(entry):
            steps = decoder.stream(ids, request.max_tokens, stop_at_eos=request.stop)
            try:
                while True:
                    step = await asyncio.to_thread(next, steps, None)
                    if step is None:
                        break
                    tokens.append(step[0])
                    event = {"model_name": entry.name, "model_version": entry.version, "output_ids": [step[0]],
                             "finished": False}
                    if decoder.has_tokenizer:  # decoded whole: a token's text can depend on its neighbours
                        now = decoder.decode(tokens)
                        event["text_output"], text = now[len(text):] if now.startswith(text) else now, now
                    yield event
            except Exception as exc:  # the stream has begun: the error becomes its last event
                yield {"error": f"model {entry.name!r} failed to generate: {first_line(exc)}", "finished": True}
                return
        yield {**answer(entry, request, tokens, time.perf_counter() - started), "finished": True}
    return events()
