"""``modelport.validate(reference, candidate)``: open two models, compare them, optionally localize."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._console import Steps
from ..tensors import ValueRange
from ..formats import Session, open_model
from .compare import ParityReport
from .inputs import image_folder_feeds, load_feeds
from .tolerances import tolerances_for


def validate(reference: str | Path | Session, candidate: str | Path | Session, *,
             inputs: str | Path | Mapping[str, np.ndarray] | None = None, samples: int = 3, seed: int = 0,
             atol: float | None = None, rtol: float | None = None, relative_to: str | None = None,
             precision: str | None = None,
             dims: Mapping[str, int] | None = None, input_layout: str | None = None,
             output_map: Mapping[str, str] | None = None, localize: bool = False,
             input_ranges: Mapping[str, ValueRange] | None = None, mean=None, std=None, open_options: Mapping[str, Any] | None = None, steps: Steps | None = None,
             data: str | Path | None = None, data_output: str | None = None,
             image_size: tuple[int, int] | None = None, channel_order: str = "RGB") -> ParityReport:
    """Prove (or disprove) numerical parity between two models of any supported formats.

    Args:
        reference: the model trusted to be right (a path, a factory spec, or an open Session).
        candidate: the model under test.
        inputs: an .npz path, a folder of images (one image input: normalized by ``mean``/``std``,
            else to the range the reference expects, else by ImageNet's) or a dict of arrays;
            otherwise ``samples`` seeded feeds per batch size.
        atol, rtol, relative_to: override the tolerances of ``precision`` (detected from the candidate
            when None); ``relative_to`` is "element" (rtol times each value) or "scale" (rtol times
            the output's largest magnitude).
        dims: sizes for dynamic dims other than the batch, by input name.
        input_ranges: the values generated feeds are drawn from, by input name ("" for every float
            input), where the models declare none or the user knows better.
        input_layout: "NCHW:NHWC" when the reference is channels-first and the candidate channels-last.
        output_map: reference output name -> candidate output name.
        localize: also name the first op whose output diverges (where the formats allow it).
        open_options: options for opening PyTorch models (weights, input_specs, trust_pickle).
        data: a labelled dataset (DIR/<class_name>/*.png|jpg, or an .npz with ``labels`` and the
            inputs): parity is judged on its first batch, and both models run over all of it for
            their accuracy, agreement and flips (``report.dataset``; validate/dataset.py).
        data_output: the classifier output to score (default: the first with a class per label).
        image_size: (height, width) images are resized to (default: the input's own).
        channel_order: "RGB", or "BGR" for a model that takes its image channels reversed.

    Returns:
        A ParityReport; ``bool(report)`` tells whether it passed.
    """
    from .localize import localize as find_divergence
    from .parity import compare_sessions
    steps = steps or Steps(enabled=False)
    seconds: dict[str, float] = {}
    sessions = []
    for role, model in (("reference", reference), ("candidate", candidate)):
        if isinstance(model, Session):
            sessions.append(model)
            continue
        start = time.perf_counter()
        with steps.step(f"Opening the {role} {model}"):
            sessions.append(open_model(model, **{"dims": dims, **dict(open_options or {})}))
        seconds[f"open_{role}"] = time.perf_counter() - start
    ref_session, cand_session = sessions
    # A dynamic dim the reference had to be traced at a size of its own is compared at that size.
    dims = {**getattr(ref_session, "trace_dims", {}), **dict(dims or {})} or None
    try:
        precision = precision or cand_session.precision
        labelled = None
        if data is not None or isinstance(inputs, (str, Path)) and Path(inputs).is_dir():
            from .parity import InputPairing, feed_specs
            specs = feed_specs([InputPairing(s, s, None) for s in ref_session.inputs], input_ranges)
        if data is not None:
            from .dataset import BATCH, load_labelled
            from .inputs import GivenFeeds
            with steps.step(f"Reading the labelled data {data}"):
                labelled = load_labelled(data, specs, size=image_size, mean=mean, std=std, channel_order=channel_order)
            feeds = GivenFeeds({name: value[:BATCH] for name, value in labelled.inputs.items()},
                               {name: f"the first {min(BATCH, len(labelled))} of {labelled.source}"
                                for name in labelled.inputs})
        elif isinstance(inputs, (str, Path)) and Path(inputs).is_dir():
            feeds = image_folder_feeds(inputs, specs, size=image_size, mean=mean, std=std, channel_order=channel_order)
        else:
            feeds = load_feeds(inputs) if isinstance(inputs, (str, Path)) else inputs
        with steps.step(f"Comparing outputs ({precision} tolerances: "
                        f"{tolerances_for(precision, atol, rtol, relative_to).describe()})"):
            report = compare_sessions(ref_session, cand_session, feeds=feeds, precision=precision, atol=atol,
                                      rtol=rtol, relative_to=relative_to, samples=samples, seed=seed, dims=dims,
                                      input_layout=input_layout, output_map=output_map, input_ranges=input_ranges)
        if labelled is not None:
            from .dataset import evaluate
            start = time.perf_counter()
            with steps.counted(f"Running both models over {len(labelled)} labelled samples", len(labelled)) as advance:
                pairings = report.pairings
                report.dataset = evaluate(
                    ref_session, cand_session, labelled,
                    lambda feed: {p.candidate.name: p.to_candidate(feed[p.reference.name]) for p in pairings},
                    output=data_output, progress=advance).to_dict()
            seconds["dataset"] = time.perf_counter() - start
        if localize:
            start = time.perf_counter()
            with steps.step("Localizing the first diverging op"):
                ref_feed = report.first_feed
                cand_feed = {p.candidate.name: p.to_candidate(ref_feed[p.reference.name]) for p in report.pairings}
                found = find_divergence(ref_session, cand_session, ref_feed, cand_feed, report.tolerance)
                if found["status"] == "none" and report.passed:
                    found["message"] = f"no divergence: all {found['compared']} matched intermediate tensors agree"
                elif found["status"] == "found" and report.passed:
                    found["message"] = "the outputs pass, but an intermediate tensor does not: " + found["message"]
                report.localization = found
            seconds["localize"] = time.perf_counter() - start
        report.seconds.update({k: round(v, 4) for k, v in seconds.items()})
        return report
    finally:
        for session, model in zip(sessions, (reference, candidate)):
            if not isinstance(model, Session):
                session.close()
