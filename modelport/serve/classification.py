"""Triton's classification extension: an output requested with ``"parameters": {"classification": K}``
(tritonclient's ``InferRequestedOutput(name, class_count=K)``) comes back as its top K classes,
BYTES strings ``"score:index"`` or ``"score:index:label"``, shape [batch, K] for a batched model
([K] otherwise), the scores as C's ``%f`` writes them, as Triton does.

Labels, per output, from (first found): the ``label_filename`` of the output in the model's
config (a file in the model's folder of the repository), ``labels.txt`` in the model's folder of
the repository, or ``labels.txt`` beside a model given as a path (an edge bundle's), else the labels
packed into a TFLite file's Model Metadata. A labels file names one class per line; it labels an
output whose class count (its last dim) it matches.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ServeError

PARAMETER = "classification"
LABELS_FILE = "labels.txt"


def read_labels(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"cannot read the labels file {str(path)!r}: {exc}", status=500) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def labels_for(outputs, configured: dict[str, Path], default: Path | None,
               packed: list[str] | None = None) -> dict[str, list[str]]:
    """Output name -> its labels: a configured file for that output, else the default file, else the
    labels packed in the model file itself, for every output whose last dim is their number."""
    labels = {name: read_labels(path) for name, path in configured.items()}
    for lines in ((read_labels(default) if default is not None and default.is_file() else None), packed):
        for spec in outputs:
            if lines and spec.name not in labels and spec.shape and spec.shape[-1] == len(lines):
                labels[spec.name] = lines
    return labels


def requested_count(name: str, parameters: dict, spec, batched: bool) -> int | None:
    """K when the output is asked for classification (checked against its classes), else None."""
    if PARAMETER not in parameters:
        return None
    count = parameters[PARAMETER]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ServeError(f"output {name!r}: parameter 'classification' is the number of top classes, a positive "
                         f"integer; got {count!r}")
    class_dims = spec.shape[1:] if batched else spec.shape
    classes = int(np.prod(class_dims)) if class_dims and all(d is not None for d in class_dims) else None
    if classes is not None and count > classes:
        raise ServeError(f"output {name!r} has {classes} classes; classification asks for the top {count}")
    if spec.dtype.kind not in "fiu":
        raise ServeError(f"output {name!r} is {spec.dtype}; classification ranks numbers")
    return count


def classify(array: np.ndarray, count: int, labels: list[str] | None, batched: bool) -> np.ndarray:
    """The top ``count`` entries of each row (each batch item's values flattened), best first;
    equal scores keep the lower index first."""
    rows = array.reshape(array.shape[0], -1) if batched else array.reshape(1, -1)
    order = np.argsort(-rows.astype(np.float64), axis=1, kind="stable")[:, :count]
    result = np.empty(order.shape, dtype=object)
    for row, indices in enumerate(order):
        for column, index in enumerate(indices):
            text = f"{float(rows[row, index]):f}:{int(index)}"
            if labels is not None and index < len(labels):
                text += f":{labels[index]}"
            result[row, column] = text.encode("utf-8")
    return result if batched else result[0]
