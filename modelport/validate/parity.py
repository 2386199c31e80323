"""The one parity engine: run two Sessions on the same feeds and compare what they return.

``convert`` (every hop) and ``validate`` both call :func:`compare_sessions`, so the tolerance
choice (from the candidate's precision), the metrics and the report are the same everywhere.

Inputs pair by name, else by position (with a warning); a channels-first/last difference is
bridged when the shapes leave no doubt, or when ``input_layout`` says so. Outputs pair by name,
by position, or by an explicit ``output_map``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import CandidateRunError, InternalError, InvalidModelError, UsageError
from ..formats.base import Session
from ..tensors import TensorSpec, ValueRange
from .compare import ParityAccumulator, ParityReport, match_names
from .inputs import DYNAMIC_DIM_SIZES, describe_generated, generate_feeds
from .layout import layout_permutation, output_permutation
from .generation import DEFAULT_NEW_TOKENS, can_generate, compare_generation, generate_all, prompts_for, summarize
from .tolerances import NOISE_PERTURBATION, Tolerance, tolerances_for

PLOT_POINTS = 4000  # values per output kept for the HTML report's plots


@dataclass
class InputPairing:
    reference: TensorSpec
    candidate: TensorSpec
    permutation: tuple[int, ...] | None  # reference layout -> candidate layout

    def feed_spec(self) -> TensorSpec:
        """The spec to generate a reference-layout feed from; dims fixed in either model are kept."""
        shape = self.reference.shape
        cand = self.candidate.shape
        if cand is not None and self.permutation is not None:
            inverse = np.argsort(self.permutation)
            cand = tuple(cand[i] for i in inverse)
        if shape is None:
            shape = cand
        elif cand is not None and len(cand) == len(shape):
            shape = tuple(r if r is not None else c for r, c in zip(shape, cand))
        return TensorSpec(self.reference.name, shape, self.reference.dtype,
                          dim_names=self.reference.dim_names or self.candidate.dim_names,
                          index_bound=self.reference.index_bound or self.candidate.index_bound,
                          value_range=self.reference.value_range or self.candidate.value_range)

    def to_candidate(self, value: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(value, self.permutation)) if self.permutation else value


def pair_inputs(reference: Session, candidate: Session, input_layout: str | None = None
                ) -> tuple[list[InputPairing], list[str]]:
    ref_specs, cand_specs = reference.inputs, candidate.inputs
    if len(ref_specs) != len(cand_specs):
        raise UsageError(f"the models take {len(ref_specs)} and {len(cand_specs)} inputs "
                         f"({', '.join(s.name for s in ref_specs)} vs {', '.join(s.name for s in cand_specs)})")
    pairs, warnings = match_names([s.name for s in ref_specs], [s.name for s in cand_specs])
    warnings = [w.replace("output", "input") for w in warnings]
    by_name = {s.name: s for s in cand_specs}
    result = []
    for ref_spec, (_, cand_name) in zip(ref_specs, pairs):
        cand_spec = by_name[cand_name]
        permutation = layout_permutation(ref_spec.shape, cand_spec.shape, input_layout)
        if permutation is not None:
            warnings.append(f"input {ref_spec.name!r} {ref_spec.shape_str()} is fed to {cand_name!r} "
                            f"{cand_spec.shape_str()} transposed by {list(permutation)}")
        pairing = InputPairing(ref_spec, cand_spec, permutation)
        _check_compatible(pairing)
        result.append(pairing)
    return result, warnings


def _check_compatible(pairing: InputPairing) -> None:
    """Fixed dims that disagree (after any layout change) mean the models cannot share a feed."""
    ref, cand = pairing.reference.shape, pairing.candidate.shape
    if ref is None or cand is None:
        return
    if pairing.permutation is not None:
        ref = tuple(ref[i] for i in pairing.permutation)
    if len(ref) != len(cand) or any(a is not None and b is not None and a != b for a, b in zip(ref, cand)):
        raise UsageError(
            f"input {pairing.reference.name!r} {pairing.reference.shape_str()} of the reference cannot feed "
            f"{pairing.candidate.name!r} {pairing.candidate.shape_str()} of the candidate",
            hint="check that both models are the same network; for a layout change pass --input-layout NCHW:NHWC")


def batch_sizes_for(reference: Session, candidate: Session) -> list[int]:
    """Batches 1 and 3 when both models take any batch, else the one batch they fix."""
    if reference.inputs and reference.flexible_batch and candidate.flexible_batch:
        return [1, 3]
    for spec in list(candidate.inputs) + list(reference.inputs):
        if spec.shape and spec.shape[0] is not None:
            return [spec.shape[0]]
    return [1]


def feed_specs(pairings: Sequence[InputPairing],
               input_ranges: Mapping[str, ValueRange] | None = None) -> list[TensorSpec]:
    """The specs feeds are generated from: each input's range is the user's (``input_ranges`` by
    input name, or under "" for every float input), else what either model declares."""
    specs = []
    for pairing in pairings:
        spec = pairing.feed_spec()
        chosen = (input_ranges or {}).get(spec.name) or (input_ranges or {}).get("")
        if chosen is not None and spec.dtype.kind == "f":
            spec = dataclasses.replace(spec, value_range=chosen)
        specs.append(spec)
    unknown = sorted(set(input_ranges or ()) - {"", *(s.name for s in specs)})
    if unknown:
        raise UsageError(f"--input-range names no input of the model: {', '.join(map(repr, unknown))}",
                         hint=f"its inputs: {', '.join(repr(s.name) for s in specs)}")
    return specs


def plan_feeds(pairings: Sequence[InputPairing], reference: Session, candidate: Session, *,
               feeds: Mapping[str, np.ndarray] | None, samples: int, seed: int,
               dims: Mapping[str, int] | None, batch_sizes: Sequence[int] | None,
               input_ranges: Mapping[str, ValueRange] | None = None) -> tuple[list[dict], list[int], list[str]]:
    """Reference-layout feeds to run (the user's, or seeded generated ones per batch size), the
    batch sizes, and one line per input saying what it was fed and why."""
    if feeds is not None:
        names = [p.reference.name for p in pairings]
        missing = [n for n in names if n not in feeds]
        if missing:
            raise UsageError(f"--inputs lacks {', '.join(map(repr, missing))}; it has {', '.join(map(repr, feeds))}")
        notes = getattr(feeds, "notes", {})
        described = [f"{n!r}: " + notes.get(n, f"given (--inputs), {np.shape(feeds[n])[0] if np.ndim(feeds[n]) else 1} "
                                               "sample(s)") for n in names]
        return ([{n: np.asarray(feeds[n]) for n in names}],
                sorted({np.shape(feeds[n])[0] for n in names if np.ndim(feeds[n])}), described)
    batches = list(batch_sizes or batch_sizes_for(reference, candidate))
    specs = feed_specs(pairings, input_ranges)
    described = [f"{s.name!r}: {describe_generated(s)}" for s in specs]
    # Dynamic dims other than the batch (and not pinned by --dim) take a second size with the
    # second batch size, so that both are checked.
    return [generate_feeds(specs, seed=seed + 7919 * b + s, batch=b, dims=dims,
                           default_dim=DYNAMIC_DIM_SIZES[min(i, len(DYNAMIC_DIM_SIZES) - 1)])
            for i, b in enumerate(batches) for s in range(samples)], batches, described


def choose_tolerance(candidate: Session, precision: str | None = None, atol: float | None = None,
                     rtol: float | None = None, relative_to: str | None = None) -> tuple[str, Tolerance]:
    """The precision to judge by (given, else the candidate's own) and its tolerance, with the
    user's overrides."""
    precision = precision or candidate.precision
    return precision, tolerances_for(precision, atol, rtol, relative_to)


def compare_sessions(reference: Session, candidate: Session, *, feeds: Mapping[str, np.ndarray] | None = None,
                     tolerance: Tolerance | None = None, precision: str | None = None, atol: float | None = None,
                     rtol: float | None = None, relative_to: str | None = None, samples: int = 3, seed: int = 0,
                     dims: Mapping[str, int] | None = None, batch_sizes: Sequence[int] | None = None,
                     input_layout: str | None = None, output_map: Mapping[str, str] | None = None,
                     input_ranges: Mapping[str, ValueRange] | None = None) -> ParityReport:
    """Compare ``candidate`` against ``reference`` on given or generated feeds.

    The tolerance is ``tolerance`` when given, else the default of ``precision`` (detected from the
    candidate when None) with ``atol``/``rtol``/``relative_to`` overriding it. Every output is
    compared on every sample; all failures are collected in the report. Generated feeds follow
    each input's declared range unless ``input_ranges`` ({input name, or "" for all: ValueRange})
    says otherwise; the report's ``feeds`` says what each input was fed.
    """
    start = time.perf_counter()
    if tolerance is None:
        precision, tolerance = choose_tolerance(candidate, precision, atol, rtol, relative_to)
    pairings, warnings = pair_inputs(reference, candidate, input_layout)
    plan, batches, described = plan_feeds(pairings, reference, candidate, feeds=feeds, samples=samples, seed=seed,
                                          dims=dims, batch_sizes=batch_sizes, input_ranges=input_ranges)
    report = ParityReport(reference=str(reference.path), candidate=str(candidate.path), atol=tolerance.atol,
                          rtol=tolerance.rtol, relative_to=tolerance.relative_to, samples=len(plan),
                          batch_sizes=batches, warnings=warnings, reference_format=reference.format_name,
                          candidate_format=candidate.format_name, precision=precision or "fp32",
                          feeds=described)
    accumulator = None
    transposed: dict[str, tuple[int, ...]] = {}
    for index, feed in enumerate(plan):
        ref_out = reference.run(feed)
        try:
            cand_out = candidate.run({p.candidate.name: p.to_candidate(feed[p.reference.name]) for p in pairings})
        except InvalidModelError as failed:  # the reference ran these feeds: the candidate is at fault
            raise CandidateRunError(failed.message, hint=failed.hint) from failed
        if accumulator is None:
            accumulator = _start(report, ref_out, cand_out, output_map, tolerance)
        if index == 0:  # layout of outputs: decided once, from the first sample's shapes
            for ref_name, cand_name in accumulator.pairs:
                perm = output_permutation(ref_out[ref_name], cand_out[cand_name])
                if perm is not None:
                    transposed[cand_name] = perm
                    report.warnings.append(f"output {cand_name!r} is compared transposed by {list(perm)}")
        for cand_name, perm in transposed.items():
            cand_out[cand_name] = np.transpose(cand_out[cand_name], perm)
        accumulator.add(ref_out, cand_out)
        if tolerance.adaptive:  # every sample: how much rounding a deep model amplifies varies with the input
            perturbed = _one_ulp_away(feed, seed + index)
            if perturbed is not None:  # the reference's own fp32 noise floor on this feed
                accumulator.add_noise(ref_out, reference.run(perturbed))
    report.outputs = accumulator.finish() if accumulator else []
    report.blind_spots = accumulator.blind_spots() if accumulator else []
    report.warnings += report.blind_spots
    report.plot_data = accumulator.plot_samples(PLOT_POINTS) if accumulator else {}
    report.first_feed = plan[0] if plan else {}
    report.pairings = pairings
    _dtype_notes(report, reference, candidate)
    if can_generate(reference) and can_generate(candidate):
        _check_generation(report, reference, candidate, tolerance, seed)
    report.seconds["compare"] = round(time.perf_counter() - start, 4)
    return report


def _check_generation(report: ParityReport, reference: Session, candidate: Session, tolerance: Tolerance,
                      seed: int) -> None:
    """Decoders: greedy tokens from several prompts, judged by the rule the logits output was."""
    logits = next((o for o in report.outputs if o.rtol is not None), None)
    if logits is not None:
        tolerance = Tolerance(tolerance.atol, logits.rtol, tolerance.relative_to)
    vocabulary = next((s.index_bound for s in reference.inputs if s.name == "input_ids" and s.index_bound), None)
    vocabulary = vocabulary or getattr(candidate, "vocabulary_size", None) or 2
    started = time.perf_counter()
    prompts = prompts_for(vocabulary, seed)
    reference_runs, runs, skipped = generate_all(reference, candidate, prompts)
    report.generation = {"max_new_tokens": DEFAULT_NEW_TOKENS, "prompts": prompts,
                         "reference": getattr(reference, "runtime_name", reference.format_name),
                         "runtimes": {}, "not_run": skipped}
    report.warnings += [f"greedy generation NOT checked in {name}: {reason}" for name, reason in skipped.items()]
    for runtime, candidate_runs in runs.items():
        if isinstance(candidate_runs, str):  # it could not run at all
            report.generation["runtimes"][runtime] = {"error": candidate_runs, "passed": False}
            report.failures.append(f"greedy generation in {runtime}: {candidate_runs}")
            continue
        results = compare_generation(prompts, reference_runs, candidate_runs, tolerance)
        report.generation["runtimes"][runtime] = summarize(results)
        for index, result in enumerate(results):
            report.failures += [f"greedy generation in {runtime} from prompt {index} {result.prompt}: {p}"
                                for p in result.problems]
            if result.tie:
                report.warnings.append(f"greedy generation in {runtime} from prompt {index}: the tokens part at step "
                                       f"{result.first_divergence} on a tie in the reference's logits (rounding "
                                       "may pick either); the steps before agree")
    report.seconds["generation"] = round(time.perf_counter() - started, 4)


check_parity = compare_sessions  # the name of the first releases


def check_artifact(reference: Session, candidate: Session, **options) -> ParityReport:
    """:func:`compare_sessions` for a candidate modelport itself wrote (a conversion hop, an edge
    file): when it fails to run on feeds its reference ran, the fault is modelport's converter, not
    the user's model (InternalError, exit 3), and the message says so."""
    try:
        return compare_sessions(reference, candidate, **options)
    except CandidateRunError as broken:
        raise InternalError(
            f"modelport wrote a {candidate.format_name} model that fails when run on inputs its source "
            f"({reference.format_name}) ran: {broken.message}",
            hint="this is a bug of modelport's converter, not of your model; nothing was written. Rerun with "
                 "--debug and report it") from broken


def _one_ulp_away(feed: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray] | None:
    """``feed`` with every float value moved by about one unit in its last place (None when no input
    is float). How far that moves the reference's outputs is the rounding noise the model itself
    amplifies: a correct fp32 conversion differs from its source by about as much."""
    rng = np.random.default_rng(seed)
    moved, any_float = {}, False
    for name, value in feed.items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            any_float = True
            step = rng.standard_normal(value.shape) * NOISE_PERTURBATION
            value = (value * (1.0 + step)).astype(value.dtype)
        moved[name] = value
    return moved if any_float else None


def _dtype_notes(report: ParityReport, reference: Session, candidate: Session) -> None:
    """Differing output dtypes are expected (fp16 candidates) and compared in float64: say so."""
    ref_types = {s.name: s.dtype for s in reference.outputs}
    cand_types = {s.name: s.dtype for s in candidate.outputs}
    for out in report.outputs:
        a, b = ref_types.get(out.reference_name), cand_types.get(out.candidate_name)
        if a is not None and b is not None and a != b:
            report.warnings.append(f"output {out.candidate_name!r} is {b.name} in the candidate and {a.name} in the "
                                   "reference; compared in float64")


def _start(report: ParityReport, ref_out, cand_out, output_map, tolerance: Tolerance) -> ParityAccumulator:
    if output_map:
        unknown = [f"{r}={c}" for r, c in output_map.items() if r not in ref_out or c not in cand_out]
        if unknown:
            raise UsageError(f"--output-map names outputs that do not exist: {', '.join(unknown)}",
                             hint=f"reference outputs: {', '.join(ref_out)}; candidate outputs: {', '.join(cand_out)}")
        pairs = list(output_map.items())
    else:
        pairs, warnings = match_names(list(ref_out), list(cand_out))
        report.warnings += warnings
    unmatched = [n for n in ref_out if n not in {r for r, _ in pairs}]
    if unmatched:
        report.failures.append(f"reference output(s) {', '.join(map(repr, unmatched))} have no counterpart in the candidate")
    return ParityAccumulator(pairs, tolerance)
