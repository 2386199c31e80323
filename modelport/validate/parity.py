"""Running two Sessions on the same feeds and comparing what they return."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import UsageError
from ..formats.base import Session
from ..tensors import TensorSpec
from .compare import ParityAccumulator, ParityReport, match_names
from .inputs import generate_feeds


def _feed_specs(reference: Session, candidate: Session) -> tuple[list[TensorSpec], dict[str, str], list[str]]:
    """Specs to generate feeds from, the reference->candidate input-name map, and warnings."""
    ref_specs, cand_specs = reference.inputs, candidate.inputs
    warnings: list[str] = []
    ref_names = [s.name for s in ref_specs]
    cand_names = [s.name for s in cand_specs]
    if len(ref_specs) != len(cand_specs):
        raise UsageError(f"the models take {len(ref_specs)} and {len(cand_specs)} inputs "
                         f"({', '.join(ref_names)} vs {', '.join(cand_names)})")
    pairs, name_warnings = match_names(ref_names, cand_names)
    warnings += [w.replace("output", "input") for w in name_warnings]
    by_name = {s.name: s for s in cand_specs}
    specs = []
    for ref_spec, (_, cand_name) in zip(ref_specs, pairs):
        cand_spec = by_name[cand_name]
        shape = ref_spec.shape if ref_spec.shape is not None else cand_spec.shape
        if shape is not None and cand_spec.shape is not None and len(shape) == len(cand_spec.shape):
            # A dim fixed in either model must be fed at that size.
            shape = tuple(r if r is not None else c for r, c in zip(shape, cand_spec.shape))
        specs.append(TensorSpec(ref_spec.name, shape, ref_spec.dtype))
    return specs, dict(pairs), warnings


def batch_sizes_for(reference: Session, candidate: Session) -> list[int]:
    """Batches 1 and 3 when both models take any batch, else the one batch they fix."""
    def flexible(session: Session) -> bool:
        return getattr(session, "flexible_batch", None) or all(s.dynamic_batch for s in session.inputs)
    if reference.inputs and flexible(reference) and flexible(candidate):
        return [1, 3]
    for spec in list(candidate.inputs) + list(reference.inputs):
        if spec.shape and spec.shape[0] is not None:
            return [spec.shape[0]]
    return [1]


def check_parity(reference: Session, candidate: Session, *, atol: float, rtol: float,
                 feeds: Mapping[str, np.ndarray] | None = None, samples: int = 3, seed: int = 0,
                 dims: Mapping[str, int] | None = None, batch_sizes: Sequence[int] | None = None,
                 on_sample: Callable[[int, int], None] | None = None) -> ParityReport:
    """Compare ``candidate`` against ``reference`` on given or generated feeds.

    Every output is compared on every sample; all failures are collected in the report.
    """
    specs, input_map, warnings = _feed_specs(reference, candidate)
    if feeds is not None:
        plan = [dict(feeds)]
        batches = sorted({np.asarray(v).shape[0] for v in feeds.values() if np.ndim(v)})
    else:
        batches = list(batch_sizes or batch_sizes_for(reference, candidate))
        plan = [generate_feeds(specs, seed=seed + 7919 * b + s, batch=b, dims=dims)
                for b in batches for s in range(samples)]
    report = ParityReport(reference=str(reference.path), candidate=str(candidate.path), atol=atol, rtol=rtol,
                          samples=len(plan), batch_sizes=batches, warnings=warnings)
    accumulator = None
    for index, feed in enumerate(plan):
        ref_out = reference.run(feed)
        cand_out = candidate.run({input_map[k]: v for k, v in feed.items()})
        if accumulator is None:
            pairs, output_warnings = match_names(list(ref_out), list(cand_out))
            report.warnings += output_warnings
            missing = len(ref_out) - len(pairs)
            if missing:
                report.failures.append(f"{missing} reference output(s) have no counterpart in the candidate")
            accumulator = ParityAccumulator(pairs, atol, rtol)
        accumulator.add(ref_out, cand_out)
        if on_sample:
            on_sample(index + 1, len(plan))
    report.outputs = accumulator.finish() if accumulator else []
    return report
