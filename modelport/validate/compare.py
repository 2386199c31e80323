"""Comparing the outputs of two Sessions: staged checks, per-output metrics, ParityReport."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .tolerances import Tolerance

REPORT_SCHEMA_VERSION = 1


@dataclass
class OutputParity:
    """Metrics of one output over every sample; ``problems`` lists why it failed, if it did."""

    reference_name: str
    candidate_name: str
    reference_shape: list[int] | None = None
    candidate_shape: list[int] | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    mean_abs: float | None = None
    rmse: float | None = None
    cosine: float | None = None
    out_of_tolerance: float | None = None  # share of elements beyond the tolerance
    nonfinite_agree: bool | None = None    # NaN/Inf at the same positions in both
    top1_agreement: float | None = None    # class-score outputs only
    top5_agreement: float | None = None
    # The rtol this output was judged by (an adaptive fp32 default raised by the noise floor) and the
    # reference's noise floor: how far its outputs move, as a share of their scale, when its float
    # inputs move by one ulp (None when not measured).
    rtol: float | None = None
    noise_floor: float | None = None
    scale: float | None = None  # max |reference|: what the fp32 rule's rtol multiplies
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class ParityReport:
    """The outcome of comparing a candidate model against a reference on the same feeds.

    ``bool(report)`` is ``report.passed``; in a test, ``assert report, report.summary()`` shows
    every failing output.
    """

    reference: str
    candidate: str
    atol: float
    rtol: float
    samples: int
    batch_sizes: list[int]
    outputs: list[OutputParity] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # stage problems not tied to one output
    warnings: list[str] = field(default_factory=list)
    # Outputs on which the comparison proves nothing (also in warnings): see blind_spots().
    blind_spots: list[str] = field(default_factory=list)
    relative_to: str = "scale"
    reference_format: str | None = None
    candidate_format: str | None = None
    precision: str = "fp32"
    localization: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    feeds: list[str] = field(default_factory=list)  # per input: what it was fed, and why
    # Decoders: greedy decoding compared prompt by prompt (validate/generation.py), else None.
    generation: dict[str, Any] | None = None
    # validate --data: both models over a labelled dataset (validate/dataset.py), else None.
    dataset: dict[str, Any] | None = None

    def __post_init__(self):
        # Subsampled (reference, candidate) values per output for the HTML plots; not serialised.
        self.plot_data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.first_feed: dict[str, np.ndarray] = {}  # what localization runs on
        self.pairings: list = []  # how reference inputs feed the candidate (parity.InputPairing)

    @property
    def passed(self) -> bool:
        return not self.failures and all(o.passed for o in self.outputs)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.atol, self.rtol, self.relative_to)

    def __repr__(self) -> str:
        # pytest prints repr() on a failing ``assert report``: make it the list of failures.
        return f"<ParityReport {self.summary()}>"

    def all_failures(self) -> list[str]:
        return self.failures + [f"{o.candidate_name!r}: {p}" for o in self.outputs for p in o.problems]

    def summary(self) -> str:
        if self.passed:
            worst = max((o.max_abs or 0.0 for o in self.outputs), default=0.0)
            return (f"parity passed: {len(self.outputs)} output(s), max abs error {worst:.3g} "
                    f"({self.tolerance.describe()})")
        lines = [f"parity FAILED between {self.reference!r} and {self.candidate!r} "
                 f"({self.tolerance.describe()}):"]
        lines += [f"  - {f}" for f in self.all_failures()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema_version"] = REPORT_SCHEMA_VERSION
        data["passed"] = self.passed
        for out, obj in zip(data["outputs"], self.outputs):
            out["passed"] = obj.passed
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _identifier(name: str) -> str:
    """A tensor name as runtimes that need identifiers spell it (TensorFlow signatures turn
    ``gpu_0/data_0`` into ``gpu_0_data_0``)."""
    return re.sub(r"\W", "_", name)


def match_names(reference: Sequence[str], candidate: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Pair outputs by name (exactly, or spelled as identifiers); when the name sets differ, pair by
    position and warn."""
    if set(reference) == set(candidate):
        return [(n, n) for n in reference], []
    spelled = {_identifier(n): n for n in candidate}
    if len(spelled) == len(candidate) and {_identifier(n) for n in reference} == set(spelled):
        return [(n, spelled[_identifier(n)]) for n in reference], []
    warnings = []
    if len(reference) != len(candidate):
        warnings.append(f"the models have {len(reference)} and {len(candidate)} outputs")
    warnings.append("output names differ, matched by position: "
                    + ", ".join(f"{r!r}->{c!r}" for r, c in zip(reference, candidate)))
    return list(zip(reference, candidate)), warnings


class ParityAccumulator:
    """Collects reference/candidate output pairs over samples, then computes the metrics once."""

    def __init__(self, pairs: Iterable[tuple[str, str]], tolerance: Tolerance):
        self.pairs = list(pairs)
        self.tolerance = tolerance
        self._ref: dict[str, list[np.ndarray]] = {r: [] for r, _ in self.pairs}
        self._cand: dict[str, list[np.ndarray]] = {c: [] for _, c in self.pairs}
        self._shape_problems: dict[str, list[str]] = {c: [] for _, c in self.pairs}
        self._shapes: dict[str, tuple[list[int], list[int]]] = {}
        self._noise: dict[str, float] = {}  # reference output -> largest change under a one-ulp input change

    def add_noise(self, reference: Mapping[str, np.ndarray], perturbed: Mapping[str, np.ndarray]) -> None:
        """Record how far the reference moved when run again on its inputs moved by one ulp."""
        for ref_name, _ in self.pairs:
            a, b = np.asarray(reference[ref_name]), np.asarray(perturbed[ref_name])
            if a.shape != b.shape or a.dtype.kind != "f":
                continue
            finite = np.isfinite(a) & np.isfinite(b)
            if finite.any():
                change = float(np.abs(a[finite].astype(np.float64) - b[finite]).max())
                self._noise[ref_name] = max(self._noise.get(ref_name, 0.0), change)

    def add(self, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> None:
        for ref_name, cand_name in self.pairs:
            ref = np.asarray(reference[ref_name])
            cand = np.asarray(candidate[cand_name])
            self._shapes[cand_name] = (list(ref.shape), list(cand.shape))
            if ref.shape != cand.shape:
                if ref.size == cand.size and np.squeeze(ref).shape == np.squeeze(cand).shape:
                    cand = cand.reshape(ref.shape)  # a squeezed unit dim is no numerical difference
                else:
                    message = f"shape {list(cand.shape)} differs from the reference's {list(ref.shape)}"
                    if message not in self._shape_problems[cand_name]:
                        self._shape_problems[cand_name].append(message)
                    continue
            self._ref[ref_name].append(ref)
            self._cand[cand_name].append(cand)

    def plot_samples(self, points: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """An evenly spaced subsample of (reference, candidate) values per output, for plots."""
        samples = {}
        for ref_name, cand_name in self.pairs:
            if not self._ref[ref_name]:
                continue
            ref = np.concatenate([r.ravel() for r in self._ref[ref_name]]).astype(np.float64)
            cand = np.concatenate([c.ravel() for c in self._cand[cand_name]]).astype(np.float64)
            step = max(1, ref.size // points)
            samples[cand_name] = (ref[::step], cand[::step])
        return samples

    def blind_spots(self) -> list[str]:
        """Outputs on which this comparison cannot tell two models apart: the reference's values
        all lie within the tolerance of zero, or barely change from one input to the next (random
        weights that saturate, dead activations). A candidate that returned a constant would pass."""
        notes = []
        hint = "this check cannot tell the models apart: give real inputs (--inputs) or trained weights"
        for ref_name, cand_name in self.pairs:
            values = self._ref[ref_name]
            if not values or not np.issubdtype(values[0].dtype, np.number) or values[0].dtype == np.bool_:
                continue
            flat = np.concatenate([v.astype(np.float64).ravel() for v in values])
            finite = flat[np.isfinite(flat)]
            if finite.size == 0:
                continue
            largest = float(np.abs(finite).max())
            if largest <= self.tolerance.atol:
                notes.append(f"output {cand_name!r}: every reference value is within atol of zero "
                             f"(largest |value| {largest:.3g}); {hint}")
                continue
            rows = _rows_per_input(values)
            if rows is not None and rows.shape[0] > 1:
                spread = float(np.nanmax(rows.max(axis=0) - rows.min(axis=0)))
                if spread <= self.tolerance.atol:
                    notes.append(f"output {cand_name!r} is the same for all {rows.shape[0]} inputs (largest "
                                 f"difference {spread:.3g}, within atol); {hint}")
        return notes

    def finish(self) -> list[OutputParity]:
        results = []
        for ref_name, cand_name in self.pairs:
            shapes = self._shapes.get(cand_name, (None, None))
            out = OutputParity(ref_name, cand_name, shapes[0], shapes[1])
            out.problems.extend(self._shape_problems[cand_name])
            tolerance = self.tolerance
            if self._ref[ref_name]:
                scale = max(float(np.nanmax(np.abs(r), initial=0.0)) if r.size and r.dtype.kind == "f" else 0.0
                            for r in self._ref[ref_name])
                out.scale = scale
                if ref_name in self._noise and scale > 0:
                    out.noise_floor = self._noise[ref_name] / scale
                tolerance = self.tolerance.raised_to(out.noise_floor)
                _fill_metrics(out, self._ref[ref_name], self._cand[cand_name], tolerance)
            out.rtol = tolerance.rtol
            results.append(out)
        return results


@dataclass
class Measurement:
    """How far a candidate tensor is from its reference: the one set of rules for every comparison
    (conversion hops, ``validate``, localization).

    Positions where either side is NaN/Inf agree only when both hold the same non-finite value; a
    disagreement counts as beyond tolerance. The error statistics cover the finite positions.
    """

    size: int
    nonfinite_reference: int = 0
    nonfinite_candidate: int = 0
    nonfinite_mismatch: int = 0
    finite: int = 0
    beyond_finite: int = 0
    max_abs: float | None = None
    max_rel: float | None = None
    mean_abs: float | None = None
    rmse: float | None = None
    cosine: float | None = None
    worst: tuple[float, float] | None = None  # (candidate, reference) where the excess is largest

    @property
    def beyond(self) -> int:
        return self.beyond_finite + self.nonfinite_mismatch


def measure(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> Measurement:
    """Compare two arrays of the same size value by value (flattened, in float64). Integer and
    boolean tensors (indices, token ids, masks) must be equal: an id off by one is another id."""
    if _exact(reference) and _exact(candidate):
        tolerance = Tolerance(0.0, 0.0, tolerance.relative_to)
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cand = np.asarray(candidate, dtype=np.float64).ravel()
    ref_bad, cand_bad = ~np.isfinite(ref), ~np.isfinite(cand)
    either = ref_bad | cand_bad
    same_nonfinite = ref_bad & cand_bad & ((ref == cand) | (np.isnan(ref) & np.isnan(cand)))
    result = Measurement(size=ref.size, nonfinite_reference=int(ref_bad.sum()), nonfinite_candidate=int(cand_bad.sum()),
                         nonfinite_mismatch=int((either & ~same_nonfinite).sum()))
    finite = ~either
    ref, cand = ref[finite], cand[finite]
    result.finite = int(ref.size)
    if ref.size == 0:
        return result
    diff = np.abs(cand - ref)
    # Relative error floors |ref| at atol so that near-zero references do not explode it.
    rel = diff / np.maximum(np.abs(ref), max(tolerance.atol, 1e-30))
    allowed = tolerance.allowed(np.abs(ref))
    beyond = diff > allowed
    result.beyond_finite = int(beyond.sum())
    result.max_abs = float(diff.max())
    result.max_rel = float(rel.max())
    result.mean_abs = float(diff.mean())
    result.rmse = float(np.sqrt(np.mean(diff ** 2)))
    norms = np.linalg.norm(ref) * np.linalg.norm(cand)
    result.cosine = float(np.dot(ref, cand) / norms) if norms > 0 else float(np.array_equal(ref, cand))
    if result.beyond_finite:
        worst = int(np.argmax(diff - allowed))
        result.worst = (float(cand[worst]), float(ref[worst]))
    return result


def _exact(values) -> bool:
    return np.asarray(values).dtype.kind in "biu"


def _fill_metrics(out: OutputParity, refs: list[np.ndarray], cands: list[np.ndarray], tolerance: Tolerance) -> None:
    m = measure(np.concatenate([r.ravel() for r in refs]), np.concatenate([c.ravel() for c in cands]), tolerance)
    out.nonfinite_agree = m.nonfinite_mismatch == 0
    if not out.nonfinite_agree:
        out.problems.append(f"NaN/Inf at different positions ({m.nonfinite_reference} in reference, "
                            f"{m.nonfinite_candidate} in candidate)")
    if m.finite == 0:
        return
    out.max_abs, out.max_rel, out.mean_abs, out.rmse, out.cosine = m.max_abs, m.max_rel, m.mean_abs, m.rmse, m.cosine
    out.out_of_tolerance = m.beyond_finite / m.finite
    if m.worst is not None:
        out.problems.append(
            f"{m.beyond_finite} of {m.finite} values ({out.out_of_tolerance:.2%}) beyond tolerance; "
            f"max abs error {out.max_abs:.3g}, e.g. {m.worst[0]:.6g} vs reference {m.worst[1]:.6g}")
    _class_agreement(out, refs, cands)


def _rows_per_input(values: list[np.ndarray]) -> np.ndarray | None:
    """The reference values as one row per input (batch entries of every sample), when the output
    has a batch dimension of the same trailing shape in every sample."""
    if any(v.ndim == 0 for v in values) or len({v.shape[1:] for v in values}) != 1:
        return None
    return np.concatenate([v.reshape(v.shape[0], -1).astype(np.float64) for v in values])


def _class_agreement(out: OutputParity, refs: list[np.ndarray], cands: list[np.ndarray]) -> None:
    """Top-1/top-5 agreement for outputs shaped (batch, classes): information, not a pass rule."""
    if refs[0].ndim != 2 or refs[0].shape[1] < 2 or not np.issubdtype(refs[0].dtype, np.floating):
        return
    if len({r.shape[1] for r in refs}) != 1:  # class counts that differ between samples: not class scores
        return
    ref = np.concatenate(refs)
    cand = np.concatenate(cands)
    out.top1_agreement = float(np.mean(ref.argmax(1) == cand.argmax(1)))
    if ref.shape[1] > 5:
        top_ref = np.sort(np.argsort(-ref, axis=1)[:, :5], axis=1)
        top_cand = np.sort(np.argsort(-cand, axis=1)[:, :5], axis=1)
        out.top5_agreement = float(np.mean(np.all(top_ref == top_cand, axis=1)))
