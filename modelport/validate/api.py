"""``modelport.validate(reference, candidate)``: open two models, compare them, optionally localize."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._console import Steps
from ..formats import Session, open_model
from .compare import ParityReport
from .inputs import load_feeds
from .precision import detect_precision
from .tolerances import tolerances_for


def validate(reference: str | Path | Session, candidate: str | Path | Session, *,
             inputs: str | Path | Mapping[str, np.ndarray] | None = None, samples: int = 3, seed: int = 0,
             atol: float | None = None, rtol: float | None = None, relative_to: str | None = None,
             precision: str | None = None,
             dims: Mapping[str, int] | None = None, input_layout: str | None = None,
             output_map: Mapping[str, str] | None = None, localize: bool = False,
             open_options: Mapping[str, Any] | None = None, steps: Steps | None = None) -> ParityReport:
    """Prove (or disprove) numerical parity between two models of any supported formats.

    Args:
        reference: the model trusted to be right (a path, a factory spec, or an open Session).
        candidate: the model under test.
        inputs: an .npz path or a dict of arrays; otherwise ``samples`` seeded feeds per batch size.
        atol, rtol, relative_to: override the tolerances of ``precision`` (detected from the candidate
            when None); ``relative_to`` is "element" (rtol times each value) or "scale" (rtol times
            the output's largest magnitude).
        dims: sizes for dynamic dims other than the batch, by input name.
        input_layout: "NCHW:NHWC" when the reference is channels-first and the candidate channels-last.
        output_map: reference output name -> candidate output name.
        localize: also name the first op whose output diverges (where the formats allow it).
        open_options: options for opening PyTorch models (weights, input_specs, trust_pickle).

    Returns:
        A ParityReport; ``bool(report)`` tells whether it passed.
    """
    from .localize import localize as find_divergence
    from .parity import check_parity, pair_inputs
    steps = steps or Steps(enabled=False)
    seconds: dict[str, float] = {}
    sessions = []
    for role, model in (("reference", reference), ("candidate", candidate)):
        if isinstance(model, Session):
            sessions.append(model)
            continue
        start = time.perf_counter()
        with steps.step(f"Opening the {role} {model}"):
            sessions.append(open_model(model, **dict(open_options or {})))
        seconds[f"open_{role}"] = time.perf_counter() - start
    ref_session, cand_session = sessions
    try:
        precision = precision or detect_precision(cand_session)
        tolerance = tolerances_for(precision, atol, rtol, relative_to)
        feeds = load_feeds(inputs) if isinstance(inputs, (str, Path)) else inputs
        start = time.perf_counter()
        with steps.step(f"Comparing outputs ({precision} tolerances: {tolerance.describe()})"):
            report = check_parity(ref_session, cand_session, tolerance=tolerance, feeds=feeds, samples=samples,
                                  seed=seed, dims=dims, input_layout=input_layout, output_map=output_map)
        seconds["compare"] = time.perf_counter() - start
        report.reference_format, report.candidate_format = ref_session.format_name, cand_session.format_name
        report.precision = precision
        _dtype_notes(report, ref_session, cand_session)
        if localize:
            start = time.perf_counter()
            with steps.step("Localizing the first diverging op"):
                pairings, _ = pair_inputs(ref_session, cand_session, input_layout)
                ref_feed = report.first_feed
                cand_feed = {p.candidate.name: p.to_candidate(ref_feed[p.reference.name]) for p in pairings}
                found = find_divergence(ref_session, cand_session, ref_feed, cand_feed, tolerance)
                if found["status"] == "none" and report.passed:
                    found["message"] = f"no divergence: all {found['compared']} matched intermediate tensors agree"
                elif found["status"] == "found" and report.passed:
                    found["message"] = "the outputs pass, but an intermediate tensor does not: " + found["message"]
                report.localization = found
            seconds["localize"] = time.perf_counter() - start
        report.seconds = {k: round(v, 4) for k, v in seconds.items()}
        return report
    finally:
        for session, model in zip(sessions, (reference, candidate)):
            if not isinstance(model, Session):
                session.close()


def _dtype_notes(report: ParityReport, reference: Session, candidate: Session) -> None:
    """Differing output dtypes are expected (fp16 candidates) and compared in float64: say so."""
    ref_types = {s.name: s.dtype for s in reference.outputs}
    cand_types = {s.name: s.dtype for s in candidate.outputs}
    for out in report.outputs:
        a, b = ref_types.get(out.reference_name), cand_types.get(out.candidate_name)
        if a is not None and b is not None and a != b:
            report.warnings.append(f"output {out.candidate_name!r} is {b.name} in the candidate and {a.name} in the "
                                   "reference; compared in float64")


def parse_pairs(texts: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``a=b,c=d`` (possibly repeated) -> {"a": "b", "c": "d"}."""
    from ..errors import UsageError
    pairs: dict[str, str] = {}
    for text in texts or ():
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key or not value:
                raise UsageError(f"{flag} {text!r}: write NAME=VALUE[,NAME=VALUE]")
            pairs[key.strip()] = value.strip()
    return pairs
