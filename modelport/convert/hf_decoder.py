"""Hugging Face decoder folder -> ONNX decoder folder with its key/value cache (``--to hf-onnx``).

transformers 5 keeps the cache in a ``DynamicCache`` object, which no ONNX graph can take. The
model is exported inside a wrapper whose inputs are the cache's tensors, flat
(``past_key_values.{i}.key/.value``), rebuilt into a cache for the model's forward, and whose
outputs are the logits and the grown cache, flat again (``present.{i}.key/.value``): the names
and dims ONNX Runtime users and transformers.js expect. One graph serves the first step (an
empty past) and every later one. The folder written is the layout transformers.js loads:
``onnx/model.onnx`` beside the source's config, generation config and tokenizer files.
"""
from __future__ import annotations

import inspect
import json
import logging
import shutil
from pathlib import Path

from ..errors import UsageError
from ..formats.hf_onnx import ONNX_FILE, past_names, present_names
from ..formats.huggingface import HuggingFaceSession
from .registry import ConvertOptions, EdgeOutput, converter
from .torch_onnx import _export_program, torch_opsets

# Sizes the graph is traced at: torch.export specialises 0 and 1, so none of the dynamic dims is
# traced there (the graph still runs at an empty past and at one new token).
TRACE_BATCH, TRACE_LENGTH, TRACE_PAST = 2, 3, 5
# ONNX's protobuf limit: a model whose weights come near it keeps them in one external file.
EXTERNAL_DATA_BYTES = 1_800_000_000
# Files beside the weights that a loader of the folder reads (transformers.js: config, generation
# config, tokenizer); copied as they are.
FOLDER_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
                "chat_template.jinja", "chat_template.json", "preprocessor_config.json")
TOTAL_LENGTH = "total_sequence_length"


@converter("huggingface", "hf-onnx", "torch.onnx.export of a decoder with its key/value cache as flat tensors",
           opsets=torch_opsets)
def huggingface_to_decoder_folder(session: HuggingFaceSession, dst: Path, options: ConvertOptions) -> EdgeOutput:
    if session.task != "text-generation":
        raise UsageError(f"an ONNX decoder folder is for text-generation models; {str(session.path)!r} is opened "
                         f"for {session.task!r}", hint="convert it to a .onnx file, or give --task text-generation")
    import torch
    from ..formats.pytorch import CACHE_TURNED_OFF
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    # The source's forward pass runs without its cache; this edge exports the cache.
    session.warnings[:] = [w for w in session.warnings if w != CACHE_TURNED_OFF]
    model = session.module
    layers, shapes = _cache_shapes(model)
    wrapper = _FlatCache(model, layers)
    args, dynamic_shapes = _trace_inputs(wrapper, shapes)
    with torch.no_grad():
        program = torch.export.export(wrapper, args, dynamic_shapes=dynamic_shapes, strict=False)
    dst.mkdir(parents=True, exist_ok=True)
    graph_file = dst / ONNX_FILE
    graph_file.parent.mkdir(parents=True, exist_ok=True)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    _export_program(program, graph_file, wrapper.input_names, ["logits", *present_names(layers)],
                    options.opset or 18, external_data=weight_bytes > EXTERNAL_DATA_BYTES)
    _finish_graph(graph_file, layers)
    copied = _copy_folder_files(Path(session.path), dst, model)
    heads, dim = shapes[0]
    return EdgeOutput(exporter="dynamo", note=f"{layers} layers' cache as past_key_values.*/present.* "
                                               f"[batch_size, {heads}, past_sequence_length, {dim}]; "
                                               f"copied {', '.join(copied)}")


def _cache_shapes(model) -> tuple[int, list[tuple[int, int]]]:
    """(layers, [(kv_heads, head_dim)] per layer) of the cache the model itself builds."""
    import torch
    ids = torch.zeros((1, 2), dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    cache = out.past_key_values
    if cache is None or not getattr(cache, "layers", None):
        raise UsageError(f"{type(model).__name__} returns no key/value cache",
                         hint="only decoders with a transformers key/value cache export to an ONNX decoder folder")
    return len(cache.layers), [(int(layer.keys.shape[1]), int(layer.keys.shape[3])) for layer in cache.layers]


def _wrapper_class():
    import torch

    class FlatCache(torch.nn.Module):
        """The model with its cache as flat tensors in and out (see the module's docstring)."""

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

    return FlatCache


def _FlatCache(model, layers: int):
    return _wrapper_class()(model, layers)


def _trace_inputs(wrapper, shapes):
    import torch
    from torch.export import Dim
    batch, length, past = Dim("batch_size"), Dim("sequence_length"), Dim("past_sequence_length")
    args = [torch.randint(0, 2, (TRACE_BATCH, TRACE_LENGTH), dtype=torch.long)]
    dynamic = [{0: batch, 1: length}]
    if wrapper.takes_mask:
        args.append(torch.ones((TRACE_BATCH, TRACE_PAST + TRACE_LENGTH), dtype=torch.long))
        dynamic.append({0: batch, 1: Dim.AUTO})  # past + sequence: renamed total_sequence_length after export
    if wrapper.takes_positions:
        args.append(torch.arange(TRACE_PAST, TRACE_PAST + TRACE_LENGTH).expand(TRACE_BATCH, -1).contiguous())
        dynamic.append({0: batch, 1: length})
    dtype = next(wrapper.model.parameters()).dtype
    for heads, dim in shapes:
        for _ in range(2):
            args.append(torch.randn((TRACE_BATCH, heads, TRACE_PAST, dim), dtype=dtype))
            dynamic.append({0: batch, 2: past})
    return tuple(args), {"input_ids": dynamic[0], "rest": tuple(dynamic[1:])}


def _finish_graph(graph_file: Path, layers: int) -> None:
    """Two touches after export.

    - The batch is read from ``input_ids``: the exporter reads it from whichever input has the
      dim, often the first past tensor, and transformers.js feeds an empty past with a batch of
      0 (it adds nothing to the concatenation either way).
    - Dims get the names users feed by (the exporter writes its own symbols, s18, s70 + s43).
    """
    import onnx
    from onnx import helper
    model = onnx.load(str(graph_file), load_external_data=False)
    cache = set(past_names(layers))
    for node in model.graph.node:
        if node.op_type == "Shape" and node.input[0] in cache:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("start", 0) == 0 and attrs.get("end") == 1:
                node.input[0] = "input_ids"
    _name_dims(model, layers)
    onnx.save(model, str(graph_file))


def _name_dims(model, layers: int) -> None:
    names = {"input_ids": {0: "batch_size", 1: "sequence_length"},
             "attention_mask": {0: "batch_size", 1: TOTAL_LENGTH},
             "position_ids": {0: "batch_size", 1: "sequence_length"},
             **{name: {0: "batch_size", 2: "past_sequence_length"} for name in past_names(layers)},
             "logits": {0: "batch_size", 1: "sequence_length"},
             **{name: {0: "batch_size", 2: TOTAL_LENGTH} for name in present_names(layers)}}
    symbols: dict[str, str] = {}  # the exporter's symbol -> our name, read off the inputs
    for value in model.graph.input:
        for axis, name in names.get(value.name, {}).items():
            dim = value.type.tensor_type.shape.dim[axis]
            if dim.dim_param:
                symbols.setdefault(dim.dim_param, name)
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            given = names.get(value.name, {}).get(axis)
            if given is not None and not dim.HasField("dim_value"):
                dim.dim_param = given
            elif dim.dim_param in symbols:
                dim.dim_param = symbols[dim.dim_param]


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
