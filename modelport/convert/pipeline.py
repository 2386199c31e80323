"""Running a conversion: detect, plan, run each edge into a staged output, check parity per hop.

Every hop is checked against the artifact before it unless ``check=False``. The final artifact is
moved into place in one rename, also when parity fails (the user may want to inspect it); any other
failure leaves the destination exactly as it was.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._atomic import commit, staging_path
from .._console import Steps
from ..errors import (ConversionError, ModelportError, ParityError, UnsupportedFormatError, UnsupportedOpError,
                      UsageError, first_line)
from ..formats import FORMATS, Session, detect, format_for_suffix, get_format, is_factory_spec
from ..formats.value_ranges import attach_ranges, carried, carried_ranges, ranges_of, stamp_onnx_ranges
from ..tensors import TensorSpec, ValueRange
from ..validate.compare import ParityReport
from ..validate.tolerances import tolerances_for
from .registry import ConvertOptions, Edge, EdgeOutput, check_opset, plan

# Edges that ran in this process, for the test suite's guard that every edge is exercised.
EDGES_RUN: set[str] = set()


@dataclass
class HopResult:
    edge: str
    artifact: str | None  # None for an intermediate artifact, which is not kept
    seconds: float
    report: ParityReport | None = None
    exporter: str | None = None
    note: str | None = None  # what the edge reports about its work (e.g. nodes removed)
    unchecked: str | None = None  # why parity was not checked, when it was not

    def to_dict(self) -> dict[str, Any]:
        return {"edge": self.edge, "artifact": self.artifact, "seconds": round(self.seconds, 3),
                "exporter": self.exporter, "note": self.note, "unchecked": self.unchecked,
                "parity": self.report.to_dict() if self.report is not None else None}


@dataclass
class ConversionResult:
    source: str
    destination: str
    source_format: str
    target_format: str
    hops: list[HopResult] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def checked(self) -> bool:
        return bool(self.hops) and all(h.report is not None for h in self.hops)

    @property
    def passed(self) -> bool:
        return all(h.report is None or h.report.passed for h in self.hops)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "source_format": self.source_format,
                "target_format": self.target_format, "seconds": round(self.seconds, 3), "checked": self.checked,
                "passed": self.passed, "warnings": self.warnings, "hops": [h.to_dict() for h in self.hops]}


def target_format_for(destination: str | Path, to: str | None) -> str:
    if to:
        return get_format(to).name
    fmt = format_for_suffix(destination)
    if fmt is None:
        raise UnsupportedFormatError(
            f"cannot tell the target format from {str(destination)!r}",
            hint="give a known suffix (" + ", ".join(s for f in FORMATS.values() for s in f.suffixes)
                 + ") or --to FORMAT")
    return fmt.name


def convert(source: str | Path, destination: str | Path, *, to: str | None = None,
            via: Sequence[str] | None = None, weights: str | Path | None = None,
            input_specs: Sequence[TensorSpec] | None = None, trust_pickle: bool = False,
            opset: int | None = None, dynamic_batch: bool = True, check: bool = True,
            atol: float | None = None, rtol: float | None = None, relative_to: str | None = None,
            feeds: Mapping[str, np.ndarray] | str | Path | None = None, samples: int = 3, seed: int = 0,
            dims: Mapping[str, int] | None = None, source_options: Mapping[str, Any] | None = None, edge_options: Mapping[str, Any] | None = None,
            optimize: bool = False, input_ranges: Mapping[str, ValueRange] | None = None,
            steps: Steps | None = None) -> ConversionResult:
    """Convert ``source`` to ``destination`` and check every hop for numerical parity.

    Generated feeds follow the values the source model's inputs expect (its ``value_range``s, or
    ``input_ranges``: {input name, or "" for every float input: ValueRange}) on every hop, and an
    ONNX artifact records them in its metadata for later checks. ``feeds`` may be a folder of images
    for a model with one image input (normalized to the range it expects, else ImageNet's).
    ``source_options`` go to the source format's Session (e.g. Caffe ``preprocessing``);
    ``edge_options`` to the converter edges (ConvertOptions' edge fields, e.g. ``bake_preprocessing``). ``optimize`` adds an
    onnx -> onnx hop (onnxslim) at the end, checked against the unoptimized model.

    Raises:
        ParityError: the artifact was written but differs from its source beyond tolerance;
            ``error.result`` holds the ConversionResult.
        ModelportError: bad input or an unconvertible model; nothing was written.
    """
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    source_fmt = detect(source)  # an MLflow folder's is its flavor's format, opening the file inside
    source_format = source_fmt.name
    target_format = target_format_for(destination, to)
    chain = plan(source_format, target_format, via)
    check_opset(chain, opset)
    if optimize:
        from .optimize import OPTIMIZE_EDGE
        if target_format != OPTIMIZE_EDGE.dst:
            raise UsageError(f"--optimize cleans up ONNX models; the target here is {target_format}")
        chain = chain + [OPTIMIZE_EDGE]
    destination = Path(destination)
    if destination.exists() and destination.is_dir() != FORMATS[target_format].is_directory:
        raise UsageError(f"{str(destination)!r} exists and is a {'folder' if destination.is_dir() else 'file'}; "
                         f"a {FORMATS[target_format].title} model is a {'folder' if FORMATS[target_format].is_directory else 'file'}")
    if check:  # refuse bad tolerance flags before any work
        tolerances_for("fp32", atol, rtol, relative_to)
    unknown = sorted(set(edge_options or ()) - ConvertOptions.edge_fields())
    if unknown:
        raise UsageError(f"unknown edge option(s) {', '.join(map(repr, unknown))}",
                         hint=f"known: {', '.join(sorted(ConvertOptions.edge_fields()))}")
    options = ConvertOptions(opset=opset, input_specs=input_specs, dynamic_batch=dynamic_batch, dims=dims,
                             **dict(edge_options or {}))
    result = ConversionResult(str(source), str(destination), source_format, target_format)
    open_options, ignored = source_fmt.accepted_options(
        {"weights": weights, "input_specs": input_specs, "trust_pickle": trust_pickle, "dims": dims,
         **dict(source_options or {})})
    if "input_specs" in ignored:
        result.warnings.append(f"--input-shape is not used for {source_fmt.title} sources; "
                               "the model's own signature was used")
    if "task" in ignored:
        raise UsageError(f"--task picks the head of a Hugging Face model folder; {str(source)!r} is a "
                         f"{source_fmt.title} model")
    if "factory" in ignored:
        result.warnings.append(f"--factory is not used for {source_fmt.title} sources (it names the class of a "
                               "Lightning checkpoint)")

    label = str(source) if is_factory_spec(source) else Path(source).name
    with steps.step(f"Loading {label} ({source_fmt.title})"):
        session = source_fmt.open(source, **open_options, **chain[0].source_options)
    source_names = [spec.name for spec in session.inputs]
    ranges = _source_ranges(session, input_ranges)
    # Dynamic dims the source had to be traced at a size of its own are checked at that size too.
    dims = {**getattr(session, "trace_dims", {}), **dict(dims or {})} or None
    options.dims = dims
    input_dims = _dims_by_input(session.inputs, dims)  # for later hops, whose formats may not name dims
    if isinstance(feeds, (str, Path)):  # a folder of images, read for the source's one image input
        from ..validate.inputs import image_folder_feeds
        feeds = image_folder_feeds(feeds, attach_ranges(session.inputs, ranges, source_names))
    with contextlib.ExitStack() as stack:
        stack.callback(session.close)
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modelport-")))
        for index, edge in enumerate(chain):
            last = index == len(chain) - 1
            if index and edge.source_options:  # this edge reads the previous artifact its own way
                session = FORMATS[edge.src].open(session.path, **edge.source_options)
                stack.callback(session.close)
            hop_dst = destination if last else scratch / f"hop{index}{(FORMATS[edge.dst].suffixes or ('',))[0]}"
            staged = Path(stack.enter_context(staging_path(hop_dst, directory=FORMATS[edge.dst].is_directory)))
            hop, produced = _run_edge(edge, session, staged, options, steps)
            if edge.dst == "onnx" and ranges:
                stamp_onnx_ranges(staged, ranges, source_names)
            result.warnings += produced.warnings
            hop.exporter, hop.note = produced.exporter, produced.note
            input_layout = produced.input_layout  # e.g. "NCHW:NHWC" when the edge moved the axes
            result.warnings += session.warnings
            candidate = None
            if check or not last:  # the artifact is opened to check it, or as the next hop's source
                opened = time.perf_counter()
                candidate = FORMATS[edge.dst].open(staged)
                stack.callback(candidate.close)
                opened = time.perf_counter() - opened
            if check:
                try:
                    hop_ranges = carried_ranges(session.inputs, ranges, source_names)
                    hop_dims = {**carried(input_dims, [s.name for s in session.inputs], source_names),
                                **dict(dims or {})} or None
                    hop.report = _check_hop(session, candidate, feeds, samples, seed, hop_dims, steps, input_layout,
                                            hop_ranges, atol=atol, rtol=rtol, relative_to=relative_to)
                    hop.report.seconds = {"convert": round(hop.seconds, 4), "open_candidate": round(opened, 4),
                                          **hop.report.seconds}
                    result.warnings += [f"{edge.name}: {note}" for note in hop.report.blind_spots]
                except UnsupportedOpError as missing:  # the reference runtime cannot run this model
                    hop.unchecked = f"the reference runtime cannot run the source: {missing.message}"
                    result.warnings.append(f"parity NOT checked: {missing}")

            else:
                hop.unchecked = "--no-check"
            companions = produced.companions  # files an edge wrote beside its artifact
            if last:
                final = _final_path(destination, hop.report)
                commit(staged, final)
                # Companions named after the artifact follow its final name (an IR's .xml reads the
                # .bin of its own name, also when a failed check kept it as NAME.parity-failed.xml).
                placed = [final.with_suffix(extra.suffix) if extra.stem == staged.stem else final.parent / extra.name
                          for extra in companions]
                for extra, target in zip(companions, placed):
                    commit(extra, target)
                hop.artifact = str(final)
                if companions:
                    hop.note = ", ".join([*filter(None, [hop.note]), *map(str, placed)])
                if hop.report is not None:
                    hop.report.candidate = str(final)
            else:
                hop.artifact = None  # an intermediate in the scratch folder, removed at the end
            result.hops.append(hop)
            session = candidate
    result.seconds = time.perf_counter() - start
    if not result.passed:
        failing = next(h.report for h in result.hops if h.report is not None and not h.report.passed)
        kept = result.hops[-1].artifact
        note = f"the artifact was kept: {kept!r}"
        if kept != str(destination):
            note += f" ({str(destination)!r}, which existed, was left as it was)"
        raise ParityError(failing, failing.summary() + f"\n  {note}", result=result)
    return result


def _final_path(destination: Path, report: ParityReport | None) -> Path:
    """Where the last hop's artifact goes: the destination, unless parity failed and a file is
    already there; a good model is then not replaced by one that failed its check."""
    if report is None or report.passed or not destination.exists():
        return destination
    return destination.with_name(f"{destination.stem}.parity-failed{destination.suffix}")


def _run_edge(edge: Edge, session: Session, staged: Path, options: ConvertOptions,
              steps: Steps) -> tuple[HopResult, EdgeOutput]:
    EDGES_RUN.add(edge.name)
    start = time.perf_counter()
    with steps.step(f"Converting {edge.src} -> {edge.dst} ({edge.description})"):
        try:
            produced = edge.func(session, staged, options)
        except ModelportError:
            raise
        except ModuleNotFoundError as exc:  # the target's runtime is an extra that is not installed
            target = FORMATS[edge.dst]
            if target.extra and (exc.name or "").split(".")[0] in target.runtime_modules:
                raise UsageError(f"writing {target.title} models needs {exc.name!r}, which is not installed",
                                 hint=f"pip install 'modelport[{target.extra}]'") from exc
            raise ConversionError(f"{type(exc).__name__}: {first_line(exc)}",
                                  hop=edge.name, hint="run with --debug for the full traceback") from exc
        except Exception as exc:
            raise ConversionError(f"{type(exc).__name__}: {first_line(exc)}",
                                  hop=edge.name, hint="run with --debug for the full traceback") from exc
    produced = produced if isinstance(produced, EdgeOutput) else EdgeOutput()
    return HopResult(edge.name, str(staged), time.perf_counter() - start), produced


def _dims_by_input(specs, dims: Mapping[str, int] | None) -> dict[str, int]:
    """--dim sizes given by dim name, as sizes by input name (which apply to that input's dynamic
    dims other than the batch): a SavedModel or TFLite signature does not name its dims."""
    by_input = {}
    for spec in specs:
        names = spec.dim_names or ()
        sizes = [dims[n] for n in names[1:] if n and dims and n in dims]
        if sizes:
            by_input[spec.name] = sizes[0]
    return by_input


def _source_ranges(session: Session, given: Mapping[str, ValueRange] | None) -> dict[str, ValueRange]:
    """The ranges the source's inputs are fed in on every hop: the user's, else the model's own."""
    from ..validate.parity import InputPairing, feed_specs
    pairings = [InputPairing(spec, spec, None) for spec in session.inputs]
    return ranges_of(feed_specs(pairings, given))


def _check_hop(reference: Session, candidate: Session, feeds: Mapping[str, np.ndarray] | None, samples: int,
               seed: int, dims: Mapping[str, int] | None, steps: Steps, input_layout: str | None = None,
               input_ranges: Mapping[str, ValueRange] | None = None, **overrides) -> ParityReport:
    """The same comparison as ``modelport validate``: tolerances from the candidate's precision."""
    from ..validate.parity import check_artifact, choose_tolerance
    precision, tolerance = choose_tolerance(candidate, **overrides)
    with steps.step(f"Checking parity {reference.format_name} vs {candidate.format_name} "
                    f"({precision}: {tolerance.describe()})"):
        return check_artifact(reference, candidate, tolerance=tolerance, precision=precision, feeds=feeds,
                                samples=samples, seed=seed, dims=dims, input_layout=input_layout,
                                input_ranges=input_ranges)
