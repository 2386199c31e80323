"""The values a model's inputs expect, where the model says so, carried along a conversion.

A parity check that feeds standard-normal noise to a model calibrated on pixels 0..255 judges it
far outside what it was built for: activations blow up and the rounding differences between two
correct runtimes grow with them. Formats declare each input's range on its TensorSpec
(``value_range``); converted ONNX models carry it in their metadata so that later hops and
``validate`` feed the same range.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Sequence

from ..metadata import INPUT_RANGES
from ..tensors import TensorSpec, ValueRange


def read_input_ranges(model) -> dict[str, ValueRange]:
    """The ranges recorded in an ONNX ModelProto's metadata (a damaged record is ignored: the check
    then falls back to its default feeds)."""
    text = next((p.value for p in model.metadata_props if p.key == INPUT_RANGES), None)
    if not text:
        return {}
    try:
        return {name: ValueRange.from_dict(value) for name, value in json.loads(text).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_input_ranges(model, ranges: Mapping[str, ValueRange]) -> None:
    """Record ``ranges`` in an ONNX ModelProto's metadata (replacing an earlier record)."""
    kept = [p for p in model.metadata_props if p.key != INPUT_RANGES]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if ranges:
        entry = model.metadata_props.add()
        entry.key = INPUT_RANGES
        entry.value = json.dumps({name: r.to_dict() for name, r in ranges.items()})


def ranges_of(specs: Sequence[TensorSpec]) -> dict[str, ValueRange]:
    return {spec.name: spec.value_range for spec in specs if spec.value_range is not None}


def attach_ranges(specs: Sequence[TensorSpec], ranges: Mapping[str, ValueRange],
                  names: Sequence[str] | None = None) -> list[TensorSpec]:
    """``specs`` with the ranges of ``ranges`` put on them: by input name, or by position when the
    converted model renamed its inputs (``names`` are the source's input names, in order)."""
    if not ranges:
        return list(specs)
    by_position = {}
    if names is not None and len(names) == len(specs):
        by_position = {spec.name: ranges[name] for spec, name in zip(specs, names) if name in ranges}
    result = []
    for spec in specs:
        value_range = ranges.get(spec.name) or by_position.get(spec.name)
        floating = spec.dtype.kind == "f"
        result.append(dataclasses.replace(spec, value_range=value_range) if value_range and floating else spec)
    return result


def rescaling_range(scale: float, offset: float, why: str) -> ValueRange | None:
    """The inputs a ``y = scale * x + offset`` first layer expects: [0, X] mapped onto [offset, 1]
    (Rescaling(1/255) and Rescaling(1/127.5, offset=-1) both take pixels 0..255)."""
    if scale <= 0 or offset >= 1:
        return None
    return ValueRange(0.0, (1.0 - offset) / scale, why)


def normalization_range(mean: Sequence[float], std: Sequence[float], why: str) -> ValueRange | None:
    """The inputs a ``(x - mean) / std`` first layer expects: the uniform interval with that mean and
    standard deviation (mean +- sqrt(3) std), averaged over channels."""
    if not mean or not std or min(std) <= 0:
        return None
    centre = sum(mean) / len(mean)
    spread = 3 ** 0.5 * sum(std) / len(std)
    return ValueRange(centre - spread, centre + spread, why)


def carried(values: Mapping[str, object], names: Sequence[str], source_names: Sequence[str]) -> dict:
    """``values`` keyed by the source model's input names, keyed instead by ``names``, another
    model's inputs along the same conversion: by position when both have as many inputs (a
    converter may rename them), else by name."""
    if not values:
        return {}
    if len(names) == len(source_names):
        return {name: values[source] for name, source in zip(names, source_names) if source in values}
    return {name: values[name] for name in names if name in values}


def carried_ranges(specs: Sequence[TensorSpec], ranges: Mapping[str, ValueRange],
                   source_names: Sequence[str]) -> dict[str, ValueRange]:
    """``ranges`` as the names of ``specs`` (see :func:`carried`), for their float inputs only."""
    floats = [spec.name for spec in specs if spec.dtype.kind == "f"]
    return {name: r for name, r in carried(ranges, [s.name for s in specs], source_names).items() if name in floats}


def stamp_onnx_ranges(path, ranges: Mapping[str, ValueRange], source_names: Sequence[str]) -> None:
    """Record ``ranges`` in the ONNX file at ``path`` under its own input names, so that a later
    ``validate`` or conversion of it feeds what the source model expects."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    floats = {i.name for i in model.graph.input if i.type.tensor_type.elem_type in (1, 10, 11, 16)}
    specs = [TensorSpec(n, None, "float32" if n in floats else "int64") for n in names]
    write_input_ranges(model, carried_ranges(specs, ranges, source_names))
    onnx.save(model, str(path))
