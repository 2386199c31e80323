"""Feeds for parity checks: generated from a signature (seeded, dtype-aware) or loaded from .npz."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InvalidModelError, UsageError
from ..formats import images  # the image pipeline, shared with the server's images-in requests
from ..formats.images import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (imported from here too)
from ..tensors import TensorSpec, ValueRange

DEFAULT_DYNAMIC_DIM = 8  # for dynamic dims other than the batch, unless --dim says otherwise
# The sizes of such dims, one per batch size checked: a dynamic dim is checked at two sizes.
DYNAMIC_DIM_SIZES = (DEFAULT_DYNAMIC_DIM, 12)


def generate_feeds(specs: Sequence[TensorSpec], *, seed: int = 0, batch: int | None = None,
                   dims: Mapping[str, int] | None = None,
                   default_dim: int = DEFAULT_DYNAMIC_DIM) -> dict[str, np.ndarray]:
    """One seeded feed per input.

    Floats are uniform in the input's ``value_range`` where the model declares one (pixels 0..255
    for a model that rescales them itself), else standard-normal (the range of normalised images
    and embeddings); integers lie in [0, 10), or below the input's known index bound (the size of
    the table it indexes); booleans are fair coins. ``batch`` fixes dim 0; another dynamic dim takes ``dims[dim name]``, then
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
        if np.issubdtype(spec.dtype, np.floating) and spec.value_range is not None:
            feeds[spec.name] = rng.uniform(spec.value_range.low, spec.value_range.high, shape).astype(spec.dtype)
        elif np.issubdtype(spec.dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(spec.dtype, np.integer) and spec.index_bound == 2 and len(shape) == 2:
            feeds[spec.name] = _padding_mask(rng, shape).astype(spec.dtype)
        elif np.issubdtype(spec.dtype, np.integer):
            high = min(10, spec.index_bound) if spec.index_bound else 10
            feeds[spec.name] = rng.integers(0, high, size=shape).astype(spec.dtype)
        else:
            raise UsageError(f"cannot generate values of dtype {spec.dtype.name!r} for input {spec.name!r}",
                             hint="give real inputs with --inputs FEEDS.npz")
    return feeds


def _padding_mask(rng, shape) -> np.ndarray:
    """Attention masks as padded batches have them: each row ones for its first 1..n tokens, then
    zeros. (Random 0s and 1s would mask out every key of some queries, whose outputs no two
    runtimes define alike, and no tokenizer writes such a mask.)"""
    lengths = rng.integers(1, shape[1] + 1, size=shape[0])
    return (np.arange(shape[1])[None, :] < lengths[:, None]).astype(np.int64)


def describe_generated(spec: TensorSpec) -> str:
    """What :func:`generate_feeds` draws for ``spec``, and why, for the report."""
    if np.issubdtype(spec.dtype, np.floating):
        if spec.value_range is not None:
            return spec.value_range.describe()
        return ("standard normal (the model declares no input range; give --input-range LO,HI or real "
                "data with --inputs if it expects another)")
    if spec.dtype == np.bool_:
        return "random booleans"
    if spec.index_bound == 2 and spec.shape is not None and len(spec.shape) == 2:
        return "attention masks: each row 1 for its first 1..n tokens, then 0 (right padding)"
    high = min(10, spec.index_bound) if spec.index_bound else 10
    return f"random integers in [0, {high})" + (f" (it indexes a table of {spec.index_bound})" if spec.index_bound else "")


def parse_input_ranges(texts: Sequence[str] | None) -> dict[str, ValueRange]:
    """``--input-range LO,HI`` (every float input) or ``NAME:LO,HI`` (one input), repeatable ->
    {input name or "": ValueRange}."""
    ranges: dict[str, ValueRange] = {}
    for text in texts or ():
        name, _, bounds = text.rpartition(":")
        try:
            low, high = (float(v) for v in bounds.split(","))
            ranges[name] = ValueRange(low, high, "--input-range")
        except ValueError:
            raise UsageError(f"--input-range {text!r}: write LO,HI or NAME:LO,HI with LO < HI, e.g. 0,255") from None
    return ranges


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




class GivenFeeds(dict):
    """Feeds the user gave (by input name), with a line per input saying what they are."""

    def __init__(self, values, notes: dict[str, str] | None = None):
        super().__init__(values)
        self.notes = dict(notes or {})


def image_folder_feeds(folder: str | Path, specs: Sequence[TensorSpec], *, size: tuple[int, int] | None = None,
                       mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                       limit: int = 200, channel_order: str = "RGB") -> GivenFeeds:
    """A folder of images as the feeds of a model with one image input: normalized by ``mean``/``std``
    when given, else mapped from 0..255 onto the range the input declares, else by ImageNet's mean and
    std (what torchvision and timm models expect); the note says which."""
    if len(specs) != 1:
        raise UsageError(f"a folder of images feeds a model with one image input; this one has {len(specs)}",
                         hint="give an .npz of inputs by name instead")
    spec = specs[0]
    if mean is not None or std is not None:
        mean, std = mean or [0.0], std or [1.0]
        how = f"(pixels - {_values(mean)}) / {_values(std)} (--mean/--std)"
    elif spec.value_range is not None:
        low, high = spec.value_range.low, spec.value_range.high
        mean, std = [-low * 255.0 / (high - low)], [255.0 / (high - low)]
        how = f"pixels 0..255 mapped onto [{low:.4g}, {high:.4g}], the range the model expects"
    else:
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
        how = "normalized by ImageNet's mean and std (the model declares nothing else; give --mean/--std)"
    batch = load_image_folder(folder, spec, size, mean, std, limit=limit, channel_order=channel_order)
    if channel_order == "BGR":
        how += ", channels in BGR order"
    note = f"{len(batch)} image(s) from {str(folder)!r}, {batch.shape[-2] if batch.shape[1] in (1, 3) else batch.shape[2]}" \
           f" px wide, {how}"
    return GivenFeeds({spec.name: batch}, {spec.name: note})


def _values(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def load_image_folder(folder: str | Path, spec: TensorSpec, size: tuple[int, int] | None = None,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      limit: int = 200, channel_order: str = "RGB") -> np.ndarray:
    """The images of ``folder`` (sorted by name, at most ``limit``) as one batch for the image input
    ``spec``: RGB (or grayscale for one channel), resized to ``size`` (height, width; else the
    input's own), (x - mean) / std per channel when given (in the model's channel order: "BGR"
    reverses them first, as OpenCV- and Caffe-trained models take them), in the input's layout
    (channels-first when its second dim is 1 or 3, else channels-last): formats/images.py."""
    folder = Path(folder)
    if spec.shape is None or len(spec.shape) != 4:
        raise UsageError(f"a folder of images calibrates an image input; {spec.name!r} is {spec.shape_str()}",
                         hint="give an .npz of inputs instead")
    layout = images.ImageLayout.of(spec, size)
    layout.sized()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    normalization = (images.Normalization(tuple(mean), tuple(std or [1.0]), channel_order) if mean is not None
                     else images.Normalization((0.0,), (1.0,), channel_order))
    return np.stack([images.load_file(path, layout, normalization, spec.dtype) for path in files])
