"""What ``modelport info`` reports about a model, as plain data."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..tensors import TensorSpec
from . import FORMATS, detect, is_factory_spec


def _size_bytes(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return None


def describe_model(model: str | os.PathLike, *, weights=None, input_specs: Sequence[TensorSpec] | None = None,
                   trust_pickle: bool = False, factory: str | None = None, task: str | None = None) -> dict[str, Any]:
    """Format, inputs, outputs (names, shapes with dynamic dims, dtypes), format facts and size."""
    fmt = detect(model)
    options, _ = fmt.accepted_options({"weights": weights, "input_specs": input_specs, "trust_pickle": trust_pickle,
                                       "factory": factory, "task": task})
    with fmt.open(model, **options) as session:
        data = {
            "model": str(model),
            "format": fmt.name,
            "format_title": fmt.title,
            "size_bytes": None if is_factory_spec(model) else _size_bytes(Path(model)),
            "inputs": [s.to_dict() for s in session.inputs],
            "outputs": [s.to_dict() for s in session.outputs],
        }
        data.update(session.describe())
    if weights is not None:
        data["weights_size_bytes"] = _size_bytes(Path(weights))
    return data


__all__ = ["FORMATS", "describe_model"]
