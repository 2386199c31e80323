"""Feeds for parity checks: generated from a signature (seeded, dtype-aware) or loaded from .npz."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InvalidModelError, UsageError
from ..tensors import TensorSpec

DEFAULT_DYNAMIC_DIM = 8  # for dynamic dims other than the batch, unless --dim says otherwise


def generate_feeds(specs: Sequence[TensorSpec], *, seed: int = 0, batch: int | None = None,
                   dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """One seeded feed per input.

    Floats are standard-normal (the range of normalised images and embeddings), integers lie in
    [0, 10) so that they are valid indices for any small vocabulary, booleans are fair coins.
    ``batch`` fixes dim 0; other dynamic dims take ``dims[input_name]`` or a small default.
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        if spec.shape is None:
            raise UsageError(f"input {spec.name!r} has no known shape", hint="pass --input-shape")
        shape = []
        for axis, dim in enumerate(spec.shape):
            if axis == 0 and batch is not None:
                shape.append(batch)
            elif dim is None:
                shape.append(int((dims or {}).get(spec.name, 1 if axis == 0 else DEFAULT_DYNAMIC_DIM)))
            else:
                shape.append(dim)
        if np.issubdtype(spec.dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(spec.dtype, np.integer):
            feeds[spec.name] = rng.integers(0, 10, size=shape).astype(spec.dtype)
        else:
            raise UsageError(f"cannot generate values of dtype {spec.dtype.name!r} for input {spec.name!r}",
                             hint="give real inputs with --inputs FEEDS.npz")
    return feeds


def load_feeds(path: str | Path) -> dict[str, np.ndarray]:
    """Read feeds from an .npz without unpickling (``allow_pickle=False``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise InvalidModelError(f"no such inputs file: {str(path)!r}") from None
    except Exception as exc:
        raise InvalidModelError(f"cannot read inputs {str(path)!r} as .npz: {exc}",
                                hint="write it with numpy.savez(path, input_name=array, ...)") from exc
