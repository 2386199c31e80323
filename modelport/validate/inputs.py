"""Feeds for parity checks: generated from a signature (seeded, dtype-aware) or loaded from .npz."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InvalidModelError, UsageError
from ..tensors import TensorSpec

DEFAULT_DYNAMIC_DIM = 8  # for dynamic dims other than the batch, unless --dim says otherwise
# The sizes of such dims, one per batch size checked: a dynamic dim is checked at two sizes.
DYNAMIC_DIM_SIZES = (DEFAULT_DYNAMIC_DIM, 12)


def generate_feeds(specs: Sequence[TensorSpec], *, seed: int = 0, batch: int | None = None,
                   dims: Mapping[str, int] | None = None,
                   default_dim: int = DEFAULT_DYNAMIC_DIM) -> dict[str, np.ndarray]:
    """One seeded feed per input.

    Floats are standard-normal (the range of normalised images and embeddings); integers lie in
    [0, 10), or below the input's known index bound (the size of the table it indexes); booleans
    are fair coins. ``batch`` fixes dim 0; another dynamic dim takes ``dims[dim name]``, then
    ``dims[input name]``, then ``default_dim``.
    """
    rng = np.random.default_rng(seed)
    dims = dims or {}
    feeds = {}
    for spec in specs:
        if spec.shape is None:
            raise UsageError(f"input {spec.name!r} has no known shape", hint="pass --input-shape")
        shape = []
        for axis, dim in enumerate(spec.shape):
            symbol = spec.dim_names[axis] if spec.dim_names and axis < len(spec.dim_names) else None
            if axis == 0 and batch is not None:
                shape.append(batch)
            elif dim is not None:
                shape.append(dim)
            elif symbol and symbol in dims:
                shape.append(int(dims[symbol]))
            else:
                shape.append(int(dims.get(spec.name, 1 if axis == 0 else default_dim)))
        if np.issubdtype(spec.dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(spec.dtype, np.integer):
            high = min(10, spec.index_bound) if spec.index_bound else 10
            feeds[spec.name] = rng.integers(0, high, size=shape).astype(spec.dtype)
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
