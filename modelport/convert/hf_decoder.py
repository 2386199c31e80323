"""Hugging Face generative model folder -> ONNX folder with its key/value cache (``--to hf-onnx``).

transformers 5 keeps the cache in cache objects (``DynamicCache``, ``EncoderDecoderCache``), which
no ONNX graph can take. The model is exported inside a wrapper whose inputs are the cache's
tensors, flat, rebuilt into a cache for the model's forward, and whose outputs are the logits and
the grown cache, flat again: the names and dims ONNX Runtime users and transformers.js expect.

- A decoder (``text-generation``) is one graph, ``onnx/model.onnx``: ``input_ids``,
  ``attention_mask``, ``position_ids``, ``past_key_values.{i}.key/.value`` in; ``logits``,
  ``present.{i}.key/.value`` out. It serves the first step (an empty past) and every later one.
- An encoder-decoder (``text2text-generation``: T5, BART) is two: ``onnx/encoder_model.onnx``
  (``input_ids``, ``attention_mask`` -> ``last_hidden_state``) and
  ``onnx/decoder_model_merged.onnx`` (``encoder_attention_mask``, ``input_ids``,
  ``encoder_hidden_states``, ``past_key_values.{i}.decoder/.encoder.key/.value`` in; ``logits``,
  ``present.*`` out). The cross-attention keys and values are computed from
  ``encoder_hidden_states`` at every step (the past ``.encoder`` inputs are taken, as
  transformers.js feeds them, and not read): one graph for every step, no If.

The folder written is the layout transformers.js loads: the graphs under ``onnx/`` beside the
source's config, generation config and tokenizer files.
"""
from __future__ import annotations

import inspect
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..formats.hf_onnx import DECODER_FILE, ENCODER_FILE, ONNX_FILE, past_names, present_names
from ..formats.huggingface import HuggingFaceSession
from .registry import ConvertOptions, EdgeOutput, converter
from .torch_onnx import _export_program, torch_opsets

# Sizes the graphs are traced at: torch.export specialises 0 and 1, so none of the dynamic dims is
# traced there (the graphs still run at an empty past and at one new token).
TRACE_BATCH, TRACE_LENGTH, TRACE_PAST, TRACE_SOURCE = 2, 3, 5, 6
# ONNX's protobuf limit: a model whose weights come near it keeps them in one external file.
EXTERNAL_DATA_BYTES = 1_800_000_000
# Files beside the weights that a loader of the folder reads (transformers.js: config, generation
# config, tokenizer); copied as they are.
FOLDER_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
                "spiece.model", "chat_template.jinja", "chat_template.json", "preprocessor_config.json")
TOTAL_LENGTH = "total_sequence_length"
DTYPES = {"fp32": "float32", "fp16": "float16"}  # --dtype -> the torch dtype the model is exported in
EXTERNAL_SUFFIX = "_data"  # model.onnx -> model.onnx_data, the name transformers.js reads
OPSET = 18


@dataclass
class Graph:
    """One graph to export: the wrapper module, its example inputs and dynamic shapes, the ONNX
    input/output names, and the dim name of each (input or output name, axis)."""

    file: Path
    module: object
    args: tuple
    dynamic_shapes: object
    inputs: list[str]
    outputs: list[str]
    dims: dict[str, dict[int, str]]
    cache_inputs: set[str]


@converter("huggingface", "hf-onnx", "torch.onnx.export of a generative model with its key/value cache as flat "
           "tensors", opsets=torch_opsets)
def huggingface_to_hf_onnx(session: HuggingFaceSession, dst: Path, options: ConvertOptions) -> EdgeOutput:
    planner = GRAPH_PLANS.get(session.task)
    if planner is None:
        raise UsageError(f"an ONNX folder with a key/value cache is for {' and '.join(GRAPH_PLANS)} models; "
                         f"{str(session.path)!r} is opened for {session.task!r}",
                         hint="convert it to a .onnx file, or give --task")
    import torch
    from ..formats.pytorch import CACHE_TURNED_OFF
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    # The source's forward pass runs without its cache; this edge exports the cache.
    session.warnings[:] = [w for w in session.warnings if w != CACHE_TURNED_OFF]
    model, dtype = session.module, options.dtype or "fp32"
    if dtype != "fp32":  # a copy: the source session, the check's reference, stays fp32
        import copy
        model = copy.deepcopy(model).to(getattr(torch, DTYPES[dtype]))
    graphs, note = planner(model, dst)
    if dtype != "fp32":
        note += f", {dtype}"
    external = sum(p.numel() * p.element_size() for p in model.parameters()) > EXTERNAL_DATA_BYTES
    for graph in graphs:
        with torch.no_grad():
            program = torch.export.export(graph.module, graph.args, dynamic_shapes=graph.dynamic_shapes, strict=False)
        graph.file.parent.mkdir(parents=True, exist_ok=True)
        _export_program(program, graph.file, graph.inputs, graph.outputs, options.opset or OPSET, external_data=external)
        _finish_graph(graph, external)
    if external:
        note += f"; weights in {', '.join(sorted(p.name for p in (dst / 'onnx').glob('*' + EXTERNAL_SUFFIX)))}"
    copied = _copy_folder_files(Path(session.path), dst, model)
    return EdgeOutput(exporter="dynamo", note=f"{note}; copied {', '.join(copied)}")


# -- decoders ----------------------------------------------------------------------------------------

def _decoder_graphs(model, dst: Path) -> tuple[list[Graph], str]:
    import torch
    from torch.export import Dim
    layers = _probe_cache(model)
    shapes = [(int(layer.keys.shape[1]), int(layer.keys.shape[3])) for layer in layers]
    wrapper = _wrapper_classes()["decoder"](model, len(layers))
    batch, length, past = Dim("batch_size"), Dim("sequence_length"), Dim("past_sequence_length")
    args = [torch.randint(0, 2, (TRACE_BATCH, TRACE_LENGTH), dtype=torch.long)]
    dynamic = [{0: batch, 1: length}]
    if wrapper.takes_mask:
        args.append(torch.ones((TRACE_BATCH, TRACE_PAST + TRACE_LENGTH), dtype=torch.long))
        dynamic.append({0: batch, 1: Dim.AUTO})  # past + sequence: named total_sequence_length after export
    if wrapper.takes_positions:
        args.append(torch.arange(TRACE_PAST, TRACE_PAST + TRACE_LENGTH).expand(TRACE_BATCH, -1).contiguous())
        dynamic.append({0: batch, 1: length})
    dtype = next(model.parameters()).dtype
    for heads, dim in shapes:
        for _ in range(2):
            args.append(torch.randn((TRACE_BATCH, heads, TRACE_PAST, dim), dtype=dtype))
            dynamic.append({0: batch, 2: past})
    pasts, presents = past_names(len(layers)), present_names(len(layers))
    dims = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: TOTAL_LENGTH},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"},
            **{name: {0: "batch_size", 2: "past_sequence_length"} for name in pasts},
            **{name: {0: "batch_size", 2: TOTAL_LENGTH} for name in presents}}
    graph = Graph(dst / ONNX_FILE, wrapper, tuple(args), {"input_ids": dynamic[0], "rest": tuple(dynamic[1:])},
                  wrapper.input_names, ["logits", *presents], dims, set(pasts))
    heads, dim = shapes[0]
    return [graph], (f"{len(layers)} layers' cache as past_key_values.*/present.* "
                     f"[batch_size, {heads}, past_sequence_length, {dim}]")


# -- encoder-decoders --------------------------------------------------------------------------------

def _seq2seq_graphs(model, dst: Path) -> tuple[list[Graph], str]:
    import torch
    from torch.export import Dim
    cache = _probe_cache(model, seq2seq=True)
    layers = len(cache.self_attention_cache.layers)
    classes = _wrapper_classes()
    batch, source = Dim("batch_size"), Dim("encoder_sequence_length")
    target, past, source_past = Dim("decoder_sequence_length"), Dim("past_decoder_sequence_length"), \
        Dim("encoder_sequence_length_out")
    hidden = int(model.config.d_model if hasattr(model.config, "d_model") else model.config.hidden_size)
    dtype = next(model.parameters()).dtype
    encoder = Graph(dst / ENCODER_FILE, classes["encoder"](model.get_encoder()),
                    (torch.randint(0, 2, (TRACE_BATCH, TRACE_SOURCE), dtype=torch.long),
                     torch.ones((TRACE_BATCH, TRACE_SOURCE), dtype=torch.long)),
                    {"input_ids": {0: batch, 1: source}, "attention_mask": {0: batch, 1: source}},
                    ["input_ids", "attention_mask"], ["last_hidden_state"],
                    {"input_ids": {0: "batch_size", 1: "encoder_sequence_length"},
                     "attention_mask": {0: "batch_size", 1: "encoder_sequence_length"},
                     "last_hidden_state": {0: "batch_size", 1: "encoder_sequence_length"}}, set())
    args = [torch.ones((TRACE_BATCH, TRACE_SOURCE), dtype=torch.long),
            torch.randint(0, 2, (TRACE_BATCH, TRACE_LENGTH), dtype=torch.long),
            torch.randn((TRACE_BATCH, TRACE_SOURCE, hidden), dtype=dtype)]
    dynamic = [{0: batch, 1: source}, {0: batch, 1: target}, {0: batch, 1: source}]
    for index in range(layers):
        for part, length, dim in (("self", TRACE_PAST, past), ("cross", TRACE_SOURCE, source_past)):
            keys = getattr(cache, f"{part}_attention_cache").layers[index].keys
            for _ in range(2):
                args.append(torch.randn((TRACE_BATCH, keys.shape[1], length, keys.shape[3]), dtype=dtype))
                dynamic.append({0: batch, 2: dim})
    pasts, presents = past_names(layers, seq2seq=True), present_names(layers, seq2seq=True)
    dims = {"encoder_attention_mask": {0: "batch_size", 1: "encoder_sequence_length"},
            "input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
            "encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
            "logits": {0: "batch_size", 1: "decoder_sequence_length"}}
    for name in pasts:
        dims[name] = {0: "batch_size", 2: "past_decoder_sequence_length" if ".decoder." in name
                      else "encoder_sequence_length_out"}
    for name in presents:
        dims[name] = {0: "batch_size", 2: "total_decoder_sequence_length" if ".decoder." in name
                      else "encoder_sequence_length"}
    decoder = Graph(dst / DECODER_FILE, classes["seq2seq"](model, layers), tuple(args),
                    {"encoder_attention_mask": dynamic[0], "input_ids": dynamic[1], "encoder_hidden_states": dynamic[2],
                     "rest": tuple(dynamic[3:])},
                    ["encoder_attention_mask", "input_ids", "encoder_hidden_states", *pasts], ["logits", *presents],
                    dims, set(pasts))
    keys = cache.self_attention_cache.layers[0].keys
    return [encoder, decoder], (f"encoder + decoder with {layers} layers' cache (self and cross attention) as "
                                f"past_key_values.*.decoder/.encoder [batch_size, {keys.shape[1]}, ..., "
                                f"{keys.shape[3]}]")


GRAPH_PLANS = {"text-generation": _decoder_graphs, "text2text-generation": _seq2seq_graphs}


def _probe_cache(model, seq2seq: bool = False):
    """The cache the model itself builds on a short input: its layers (a decoder) or the whole
    EncoderDecoderCache, which says how many layers and their heads and head size."""
    import torch
    ids = torch.zeros((1, 2), dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids, decoder_input_ids=ids, use_cache=True) if seq2seq else \
            model(input_ids=ids, use_cache=True)
    cache = out.past_key_values
    if seq2seq and cache is not None and hasattr(cache, "self_attention_cache"):
        return cache
    if not seq2seq and cache is not None and getattr(cache, "layers", None):
        return cache.layers
    raise UsageError(f"{type(model).__name__} returns no key/value cache transformers' way",
                     hint="only models with a transformers DynamicCache / EncoderDecoderCache export with their cache")


def _wrapper_classes():
    """The wrappers, defined when torch is imported (registering the edge imports nothing)."""
    import torch

    class FlatDecoder(torch.nn.Module):
        """A decoder with its cache as flat tensors in and out (see the module's docstring)."""

        def __init__(self, model, layers: int):
            super().__init__()
            self.model, self.layers = model, layers
            accepted = set(inspect.signature(model.forward).parameters)
            self.takes_mask = "attention_mask" in accepted
            self.takes_positions = "position_ids" in accepted
            self.input_names = ["input_ids", *(["attention_mask"] if self.takes_mask else []),
                                *(["position_ids"] if self.takes_positions else []), *past_names(layers)]

        def forward(self, input_ids, *rest):
            from transformers import DynamicCache
            rest = list(rest)
            kwargs = {}
            if self.takes_mask:
                kwargs["attention_mask"] = rest.pop(0)
            if self.takes_positions:
                kwargs["position_ids"] = rest.pop(0)
            # No config: every layer a plain one, so a sliding-window model keeps its whole past and
            # its attention mask (built from the config) hides what the window excludes.
            cache = DynamicCache()
            for layer in range(self.layers):
                cache.update(rest[2 * layer], rest[2 * layer + 1], layer)
            out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True, **kwargs)
            flat = [tensor for layer in out.past_key_values.layers for tensor in (layer.keys, layer.values)]
            return (out.logits, *flat)

    class Encoder(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    class FlatSeq2SeqDecoder(torch.nn.Module):
        """An encoder-decoder's decoder step: the self-attention past in, the cross-attention keys
        and values recomputed from the encoder's states (an empty cross cache makes the model do so)."""

        def __init__(self, model, layers: int):
            super().__init__()
            self.model, self.layers = model, layers

        def forward(self, encoder_attention_mask, input_ids, encoder_hidden_states, *rest):
            from transformers import DynamicCache, EncoderDecoderCache
            own = DynamicCache()
            for layer in range(self.layers):
                own.update(rest[4 * layer], rest[4 * layer + 1], layer)
            cache = EncoderDecoderCache(own, DynamicCache())
            out = self.model(encoder_outputs=(encoder_hidden_states,), attention_mask=encoder_attention_mask,
                             decoder_input_ids=input_ids, past_key_values=cache, use_cache=True)
            grown = out.past_key_values
            flat = []
            for layer in range(self.layers):
                mine, cross = grown.self_attention_cache.layers[layer], grown.cross_attention_cache.layers[layer]
                flat += [mine.keys, mine.values, cross.keys, cross.values]
            return (out.logits, *flat)

    return {"decoder": FlatDecoder, "encoder": Encoder, "seq2seq": FlatSeq2SeqDecoder}


def _finish_graph(graph: Graph, external: bool) -> None:
    """Three touches after export.

    - The batch is read from ``input_ids``: the exporter reads it from whichever input has the
      dim, often the first past tensor, and transformers.js feeds an empty past whose batch its
      own rules give (it adds nothing to the concatenation either way).
    - Dims get the names users feed by (the exporter writes its own symbols, s18, s70 + s43).
    - Weights kept outside the graph go to one file named as transformers.js looks for it,
      ``model.onnx_data`` beside ``model.onnx`` (torch names it ``model.onnx.data``).
    """
    import onnx
    from onnx import helper
    model = onnx.load(str(graph.file), load_external_data=external)
    for node in model.graph.node:
        if node.op_type == "Shape" and node.input[0] in graph.cache_inputs:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("start", 0) == 0 and attrs.get("end") == 1:
                node.input[0] = "input_ids"
    symbols: dict[str, str] = {}  # the exporter's symbol -> our name, read off the inputs
    for value in model.graph.input:
        for axis, name in graph.dims.get(value.name, {}).items():
            dim = value.type.tensor_type.shape.dim[axis]
            if dim.dim_param:
                symbols.setdefault(dim.dim_param, name)
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            given = graph.dims.get(value.name, {}).get(axis)
            if given is not None and not dim.HasField("dim_value"):
                dim.dim_param = given
            elif dim.dim_param in symbols:
                dim.dim_param = symbols[dim.dim_param]
    if not external:
        onnx.save(model, str(graph.file))
        return
    for written in graph.file.parent.glob(graph.file.name + ".*"):  # torch's external data file(s)
        written.unlink()
    onnx.save(model, str(graph.file), save_as_external_data=True, all_tensors_to_one_file=True,
              location=graph.file.name + EXTERNAL_SUFFIX)


def _copy_folder_files(source: Path, dst: Path, model) -> list[str]:
    copied = []
    for name in FOLDER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, dst / name)
            copied.append(name)
    if "generation_config.json" not in copied and getattr(model, "generation_config", None) is not None:
        (dst / "generation_config.json").write_text(model.generation_config.to_json_string(), encoding="utf-8")
        copied.append("generation_config.json (from the model)")
    config = json.loads((dst / "config.json").read_text(encoding="utf-8"))
    config["use_cache"] = True  # what the folder is for; transformers.js reads it
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return copied
