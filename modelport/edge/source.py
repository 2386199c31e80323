"""What every edge target does with its source model: open it, plan it to the format the target
starts from, read the data its files are checked on (and calibrated with), labels, input layouts,
and the agreement rule that judges files which cannot match the source value for value."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._console import Steps
from ..errors import UsageError
from .bundle import EdgeResult, check_feeds

# Files that cannot match the source value for value (integer quantization) pass when every
# output keeps this cosine similarity to the source's, and the top-1 class of classifier outputs
# agrees this often.
MIN_COSINE = 0.99
MIN_TOP1 = 0.98
AGREEMENT_RULE = f"cosine >= {MIN_COSINE} per output, top-1 agreement >= {MIN_TOP1:.0%} for classifier outputs"


def parse_modes(text: str | Sequence[str], modes: Mapping, runtime: str = "", example: str = "fp32,int8") -> list[str]:
    """``fp32,int8`` (or a list) as known mode names, in order, without repeats; UsageError otherwise."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in modes]
    if unknown or not names:
        raise UsageError(f"--quantize {','.join(unknown) or text!r}: unknown {runtime + ' ' if runtime else ''}mode",
                         hint=f"choose among {', '.join(modes)} (several: {example})")
    return list(dict.fromkeys(names))


def calibrated_modes(names: list[str], modes: Mapping, calibration) -> list[str]:
    """The chosen modes that calibrate on data; UsageError when they are given none."""
    needing = [n for n in names if modes[n].calibrated]
    if needing and calibration is None:
        raise UsageError(f"--quantize {','.join(needing)} needs calibration data",
                         hint="give --calibration inputs.npz (arrays by input name, batch first; ~100 typical "
                              "inputs) or a folder of images")
    return needing


def bundle_folder(out_dir: str | Path, mean, std) -> Path:
    """The destination as a Path, refused when it is a file or when --mean comes without --std."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{str(out_dir)!r} exists and is a file; a bundle is a folder")
    if (mean is None) != (std is None):
        raise UsageError("--mean and --std go together", hint="e.g. --mean 127.5 --std 127.5 for pixels 0..255 to -1..1")
    return out_dir


def check_data(reference, data, *, image_size, mean, std, limit: int, labels: list[str] | None, seed: int,
               dims: Mapping[str, int] | None = None):
    """The data a bundle's files are checked (and calibrated) on, read and matched to the model:
    (the data as arrays or None, the feeds of the check, the output the labels annotate or None).
    Generated feeds size dynamic dims by ``dims`` (--dim), else by the size the source was traced at."""
    if isinstance(data, (str, Path)):
        data = load_inputs(Path(data), reference, image_size, mean, std, limit=limit)
    if data is not None:
        check_inputs(reference, data)
    feeds = check_feeds(reference, data, seed, {**getattr(reference, "trace_dims", {}), **dict(dims or {})})
    labelled = labelled_output(reference, labels, feeds) if labels is not None else None
    return data, feeds, labelled


def read_labels(path: str | Path) -> list[str]:
    """The labels file's lines (UTF-8, blank trailing lines dropped); UsageError when unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the labels {str(path)!r}: {getattr(exc, 'strerror', None) or exc}",
                         hint="give a UTF-8 text file with one label per line") from None
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    if not lines:
        raise UsageError(f"the labels file {str(path)!r} is empty", hint="one label per line, in class order")
    return [line.rstrip("\r") for line in lines]


def labelled_output(reference, labels: list[str], feeds: Mapping[str, np.ndarray]) -> str:
    """The output the labels annotate: the one whose last axis has one entry per label (run once
    on a sample when the signature does not say, as for Caffe)."""
    sizes = {spec.name: spec.shape[-1] if spec.shape else None for spec in reference.outputs}
    if None in sizes.values():
        sizes = {name: value.shape[-1] if value.ndim else None
                 for name, value in reference.run({k: v[:1] for k, v in feeds.items()}).items()}
    for name, size in sizes.items():
        if size == len(labels):
            return name
    raise UsageError(f"{len(labels)} labels, but no output has {len(labels)} classes on its last axis ({sizes})",
                     hint="one label per class, in class order")


def is_image(spec) -> bool:
    return spec.shape is not None and len(spec.shape) == 4 and np.dtype(spec.dtype).kind in "fu"


def in_candidate_layout(reference, candidate, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Source-layout feeds as the bundle's model takes them (by its names, images channels-last)."""
    from ..validate.parity import pair_inputs
    pairings, _ = pair_inputs(reference, candidate, input_layout(reference, candidate))
    return {p.candidate.name: p.to_candidate(feeds[p.reference.name]) for p in pairings}


def input_layout(reference, candidate) -> str | None:
    """NCHW:NHWC when the source's images are channels-first and the bundle model's channels-last."""
    by_name = {spec.name: spec for spec in candidate.inputs}
    pairs = [(ref, by_name[ref.name]) for ref in reference.inputs if ref.name in by_name] \
        if len(by_name) == len(reference.inputs) and all(r.name in by_name for r in reference.inputs) \
        else list(zip(reference.inputs, candidate.inputs))  # names differ: the same order
    for ref, cand in pairs:
        if is_image(ref) and cand.shape is not None and len(cand.shape) == 4 and ref.shape[1] != cand.shape[1] \
                and ref.shape[1] == cand.shape[3]:
            return "NCHW:NHWC"
    return None


def load_inputs(path: Path, reference, image_size, mean, std, limit: int | None = None) -> dict[str, np.ndarray]:
    """An .npz of arrays by input name, or a folder of images (or of class folders, as ``validate
    --data`` takes them; the labels unused) for a one-image-input model."""
    from ..validate.inputs import load_feeds, load_image_folder
    if not path.is_dir():
        return load_feeds(path)
    if any(p.is_dir() for p in path.iterdir()):
        from ..validate.dataset import load_labelled
        data = load_labelled(path, reference.inputs, size=image_size, mean=mean, std=std)
        count = len(next(iter(data.inputs.values())))
        # Samples spread over the classes (they come class by class), not the first classes only.
        chosen = np.unique(np.linspace(0, count - 1, min(count, limit or count)).astype(int))
        return {name: values[chosen] for name, values in data.inputs.items()}
    if len(reference.inputs) != 1:
        raise UsageError(f"a folder of images calibrates a model with one image input; this one has "
                         f"{len(reference.inputs)} inputs", hint="give an .npz of inputs by name instead")
    spec = reference.inputs[0]
    return {spec.name: load_image_folder(path, spec, image_size, mean, std, limit=limit)}


def check_inputs(reference, data: Mapping[str, np.ndarray]) -> None:
    """UsageError unless ``data`` holds one batch-first array per input, of the input's shape."""
    expected = [spec.name for spec in reference.inputs]
    if sorted(data) != sorted(expected):
        raise UsageError(f"the data holds {sorted(data)}; the model's inputs are {expected}",
                         hint="save the arrays under the input names: np.savez('calib.npz', **{name: batch})")
    sizes = {len(np.asarray(v)) for v in data.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise UsageError("the data's arrays must hold the same number of samples (batch first), at least one")
    for spec in reference.inputs:
        shape = np.shape(data[spec.name])
        if spec.shape is not None and (len(shape) != len(spec.shape) or any(
                want is not None and have != want for have, want in zip(shape[1:], spec.shape[1:]))):
            raise UsageError(f"the data's {spec.name!r} is {list(shape)}; the model takes {spec.shape_str()} "
                             "(batch first, in the source model's layout)")


def tensorflow_source(source, reference, scratch: Path, result: EdgeResult, weights, input_specs, trust_pickle,
                       steps: Steps, dims: Mapping[str, int] | None = None):
    """What the TensorFlow targets (TFLite, TF.js) start from: the Keras model or SavedModel itself,
    else a SavedModel planned from the source (PyTorch and Caffe through ONNX, channels-last image
    inputs), every hop checked."""
    if reference.format_name in ("keras", "savedmodel"):
        return reference
    from ..convert import convert as run_convert
    from ..formats import open_model
    converted = run_convert(source, scratch / "savedmodel", to="savedmodel", weights=weights, input_specs=input_specs,
                            trust_pickle=trust_pickle, steps=steps, edge_options={"io_layout": "nhwc"}, dims=dims)
    result.conversion = [hop.to_dict() for hop in converted.hops]
    return open_model(scratch / "savedmodel")


def agrees(report) -> bool:
    for output in report.outputs:
        if output.cosine is None or output.cosine < MIN_COSINE:
            return False
        if output.top1_agreement is not None and output.top1_agreement < MIN_TOP1:
            return False
    return bool(report.outputs)


def onnx_source(source, reference, scratch: Path, result: EdgeResult, weights, input_specs, trust_pickle,
                steps: Steps, dims: Mapping[str, int] | None = None) -> Path:
    """What the ONNX-based targets (OpenVINO, ORT Web) start from: the source's own ONNX file, else
    the ONNX model the planner reaches from it, every hop checked."""
    if reference.format_name == "onnx":
        return Path(reference.path)
    from ..convert import convert as run_convert
    converted = run_convert(source, scratch / "model.onnx", to="onnx", weights=weights, input_specs=input_specs,
                            trust_pickle=trust_pickle, steps=steps, dims=dims)
    result.conversion = [hop.to_dict() for hop in converted.hops]
    return scratch / "model.onnx"


def input_entry(spec, mean, std) -> dict:
    """The manifest's layout and normalization for one input, as a page feeds it."""
    if not is_image(spec):
        return {"layout": None}
    entry: dict = {"layout": "NCHW" if spec.shape[1] in (1, 3) and spec.shape[-1] not in (1, 3) else "NHWC"}
    if mean is not None:
        entry["normalization"] = {"mean": list(mean), "std": list(std), "formula": "(x - mean) / std"}
    return entry


def output_entry(spec, classes: int | None) -> dict:
    """The manifest's labels file for the output with one score per label."""
    if classes and spec.shape and spec.shape[-1] == classes:
        return {"labels": "labels.txt"}
    return {}

