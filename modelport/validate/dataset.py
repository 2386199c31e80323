"""``validate --data``: both models over a labelled dataset, what a change costs on real data.

The data is an image folder in the ``class_name/*.png|jpg`` layout (class names sorted, as
torchvision's ImageFolder numbers them), or an .npz with ``labels`` (one integer per sample) and
the inputs (``inputs`` for a model with one input, else one array per input name). Both models run
over every sample, in batches; for the classifier output (the first output whose last dim is at
least the number of classes, or the output named by ``output``) the report gives each model's
accuracy against the labels (top-1, top-5), their agreement with each other, per-class accuracy,
and the flips: samples whose top-1 class differs between the models, counted by (reference class,
candidate class). The parity verdict stays the numerical one, on the first batch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UsageError
from ..tensors import TensorSpec

BATCH = 32
MAX_SAMPLES = 100_000
LISTED_FLIPS = 10


@dataclass
class LabelledData:
    inputs: dict[str, np.ndarray]  # by the reference's input names, samples first
    labels: np.ndarray
    classes: list[str]
    source: str  # what it was read from, and how

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DatasetResult:
    samples: int
    classes: list[str]
    output: str
    source: str
    reference_top1: float
    candidate_top1: float
    reference_top5: float | None
    candidate_top5: float | None
    agreement_top1: float
    flips: int
    flip_pairs: list[dict[str, Any]] = field(default_factory=list)  # the most frequent, most first
    per_class: list[dict[str, Any]] = field(default_factory=list)   # class, samples, both accuracies

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_labelled(path: str | Path, specs: Sequence[TensorSpec], *, size: tuple[int, int] | None = None,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  channel_order: str = "RGB") -> LabelledData:
    path = Path(path)
    if path.is_dir():
        return _image_classes(path, specs, size, mean, std, channel_order)
    if path.suffix == ".npz":
        return _npz(path, specs)
    raise UsageError(f"--data {str(path)!r} is neither a folder of class folders nor an .npz",
                     hint="give DIR/<class_name>/*.png|jpg, or an .npz with 'labels' and the inputs")


def _image_classes(folder: Path, specs, size, mean, std, channel_order: str) -> LabelledData:
    from .inputs import IMAGE_SUFFIXES, image_folder_feeds
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise UsageError(f"{str(folder)!r} holds {len(classes)} class folder(s); labelled data needs at least two "
                         "(DIR/<class_name>/*.png|jpg)")
    batches, labels, note = [], [], ""
    for index, name in enumerate(classes):
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in (folder / name).iterdir()):
            raise UsageError(f"the class folder {str(folder / name)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        feeds = image_folder_feeds(folder / name, specs, size=size, mean=mean, std=std, limit=MAX_SAMPLES,
                                   channel_order=channel_order)
        (batch,) = feeds.values()
        batches.append(batch)
        labels += [index] * len(batch)
        note = next(iter(feeds.notes.values())).split(", ", 1)[1]  # how the pixels were normalized
    return LabelledData({specs[0].name: np.concatenate(batches)}, np.asarray(labels), classes,
                        f"{len(labels)} images in {len(classes)} class folders of {str(folder)!r}, {note}")


def _npz(path: Path, specs) -> LabelledData:
    from .inputs import load_feeds
    arrays = load_feeds(path)
    if "labels" not in arrays:
        raise UsageError(f"{str(path)!r} has no 'labels' array", hint="numpy.savez(path, inputs=x, labels=y)")
    labels = np.asarray(arrays.pop("labels"))
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise UsageError(f"'labels' in {str(path)!r} is {labels.dtype} of shape {list(labels.shape)}; one integer "
                         "class per sample")
    if len(specs) == 1 and "inputs" in arrays:
        arrays = {specs[0].name: arrays.pop("inputs")}
    missing = [s.name for s in specs if s.name not in arrays]
    if missing:
        raise UsageError(f"{str(path)!r} lacks the input(s) {missing}", hint="name the arrays after the model's inputs")
    wrong = [f"{s.name} ({len(arrays[s.name])})" for s in specs if len(arrays[s.name]) != len(labels)]
    if wrong:
        raise UsageError(f"{str(path)!r}: {len(labels)} labels, but the samples of {', '.join(wrong)} differ")
    classes = [str(i) for i in range(int(labels.max()) + 1)]
    if len(set(labels.tolist())) < 2:
        raise UsageError(f"{str(path)!r}: every label is {int(labels[0])}; labelled data needs at least two classes")
    return LabelledData({s.name: arrays[s.name] for s in specs}, labels, classes,
                        f"{len(labels)} samples from {str(path)!r}")


def evaluate(reference, candidate, data: LabelledData, to_candidate: Callable[[dict], dict],
             output: str | None = None, progress: Callable[[int, int], None] | None = None,
             batch: int = BATCH) -> DatasetResult:
    """Run both sessions over ``data`` and compare their classes with the labels and each other;
    ``to_candidate`` maps a reference feed to the candidate's (names, layout)."""
    classes = len(data.classes)
    name = output or _classifier_output(reference, classes)
    ref_scores, cand_scores = [], []
    for start in range(0, len(data), batch):
        feed = {key: value[start:start + batch] for key, value in data.inputs.items()}
        ref_out, cand_out = reference.run(feed), candidate.run(to_candidate(feed))
        cand_name = name if name in cand_out else list(cand_out)[list(ref_out).index(name)]
        ref_scores.append(ref_out[name].reshape(len(feed[next(iter(feed))]), -1))
        cand_scores.append(cand_out[cand_name].reshape(len(feed[next(iter(feed))]), -1))
        if progress:
            progress(min(start + batch, len(data)), len(data))
    ref_scores, cand_scores = np.concatenate(ref_scores), np.concatenate(cand_scores)
    ref_top, cand_top = _ranked(ref_scores), _ranked(cand_scores)
    labels = data.labels
    top5 = ref_scores.shape[1] >= 5
    flips: dict[tuple[int, int], int] = {}
    for label_ref, label_cand in zip(ref_top[:, 0], cand_top[:, 0]):
        if label_ref != label_cand:
            flips[(int(label_ref), int(label_cand))] = flips.get((int(label_ref), int(label_cand)), 0) + 1
    class_name = lambda index: data.classes[index] if index < classes else str(index)  # noqa: E731
    per_class = []
    for index, title in enumerate(data.classes):
        chosen = labels == index
        per_class.append({"class": title, "samples": int(chosen.sum()),
                          "reference": _share(ref_top[chosen, 0] == index), "candidate": _share(cand_top[chosen, 0] == index)})
    return DatasetResult(
        samples=len(data), classes=data.classes, output=name, source=data.source,
        reference_top1=_share(ref_top[:, 0] == labels), candidate_top1=_share(cand_top[:, 0] == labels),
        reference_top5=_share((ref_top[:, :5] == labels[:, None]).any(axis=1)) if top5 else None,
        candidate_top5=_share((cand_top[:, :5] == labels[:, None]).any(axis=1)) if top5 else None,
        agreement_top1=_share(ref_top[:, 0] == cand_top[:, 0]), flips=sum(flips.values()),
        flip_pairs=[{"reference": class_name(a), "candidate": class_name(b), "count": n}
                    for (a, b), n in sorted(flips.items(), key=lambda item: -item[1])[:LISTED_FLIPS]],
        per_class=per_class)


def _classifier_output(session, classes: int) -> str:
    for spec in session.outputs:
        if spec.shape and spec.shape[-1] is not None and spec.shape[-1] >= classes:
            return spec.name
    raise UsageError(f"no output of {session.path.name!r} scores {classes} classes",
                     hint="modelport validate --data compares classifiers; name the output with --data-output")


def _ranked(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :5]


def _share(hits: np.ndarray) -> float:
    return round(float(np.mean(hits)), 6) if hits.size else 0.0
