"""Finding the first op where two models part ways.

Both models run once with their intermediate tensors exposed (``Session.run_with_intermediates``);
tensors are paired by name, directly when both sessions name them the same way (ONNX vs ONNX), or
through the map a model records from the other's names to its own (an ONNX model made by torch's
dynamo exporter tags tensors with module paths; one made by ``modelport convert`` from Keras
records layer outputs). They are walked in the reference's execution order and the first pair
beyond tolerance is named.

Localizers register per (reference format, candidate format) pair with :func:`register_localizer`;
a converter that makes a new pair matchable registers its own. Nothing here imports a framework.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..formats.base import Intermediate, Session
from .compare import measure
from .layout import to_channels_first, to_channels_last
from .tolerances import Tolerance

TRACE_CONTEXT = 3  # agreeing tensors shown before the divergence

LocalizeFunction = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Localizer:
    method: str      # reported as localization.method
    noun: str        # what is named: "op", "module", "layer"
    unmatched: str   # said when no tensor of the pair can be matched
    run: LocalizeFunction


LOCALIZERS: dict[tuple[str, str], Localizer] = {}


def register_localizer(reference_format: str, candidate_format: str, *, method: str, noun: str,
                       unmatched: str = "no intermediate tensor could be matched by name",
                       run: LocalizeFunction | None = None) -> Localizer:
    """Make (reference, candidate) localizable; ``run`` defaults to pairing intermediates by name."""
    entry = Localizer(method, noun, unmatched, run or localize_by_names)
    LOCALIZERS[(reference_format, candidate_format)] = entry
    return entry


def _layouts(ref: np.ndarray, cand: np.ndarray) -> list[np.ndarray]:
    """``cand`` in every arrangement that could hold ``ref``'s values: as is, reshaped, or transposed
    between channels-first and channels-last (converters keep inner tensors in either layout, and a
    square tensor such as 8x8x8 does not tell which)."""
    options = []
    if cand.shape == ref.shape:
        options.append(cand)
    elif ref.size == cand.size and np.squeeze(ref).shape == np.squeeze(cand).shape:
        options.append(cand.reshape(ref.shape))
    if ref.ndim >= 3 and cand.ndim == ref.ndim:
        for perm in (to_channels_last(ref.ndim), to_channels_first(ref.ndim)):
            if tuple(cand.shape[i] for i in perm) == ref.shape:
                options.append(np.transpose(cand, perm))
    return options


def _compare(ref: np.ndarray, cand: np.ndarray, tolerance: Tolerance) -> dict[str, Any] | None:
    ref = np.asarray(ref)
    cand = np.asarray(cand)
    if not (np.issubdtype(ref.dtype, np.number) and np.issubdtype(cand.dtype, np.number)) or ref.size == 0:
        return None
    best = None
    for arranged in _layouts(ref, cand):
        m = measure(ref, arranged, tolerance)
        row = {"max_abs": m.max_abs if m.max_abs is not None else 0.0, "out_of_tolerance": m.beyond / m.size,
               "beyond": m.beyond, "passed": m.beyond == 0, "shape": list(ref.shape)}
        if best is None or row["beyond"] < best["beyond"]:
            best = row
    return best


def _walk(entries, tolerance: Tolerance, localizer: Localizer) -> dict[str, Any]:
    """entries: (label, reference value, candidate tensor name, candidate value) in execution order."""
    compared, trace = 0, []
    for label, ref_value, cand_name, cand_value in entries:
        metrics = _compare(ref_value, cand_value, tolerance)
        if metrics is None:
            continue
        compared += 1
        row = {**label, "tensor": cand_name, **metrics}
        trace.append(row)
        if not metrics["passed"]:
            where = ", ".join(f"{k} {v!r}" for k, v in label.items())
            return {"method": localizer.method, "status": "found", "compared": compared, **row,
                    "trace": trace[-(TRACE_CONTEXT + 1):],
                    "message": f"first diverging {localizer.noun}: {where} (tensor {cand_name!r}, max abs error "
                               f"{metrics['max_abs']:.3g}, {metrics['beyond']} of {np.size(ref_value)} "
                               f"values beyond tolerance)"}
    status = "none" if compared else "unavailable"
    message = (f"all {compared} matched intermediate tensors agree; the difference arises in ops that exist "
               f"in only one of the models" if compared else localizer.unmatched)
    return {"method": localizer.method, "status": status, "compared": compared, "trace": trace[-TRACE_CONTEXT:],
            "message": message}


def localize_by_names(reference: Session, candidate: Session, ref_feed: Mapping[str, np.ndarray],
                      cand_feed: Mapping[str, np.ndarray], tolerance: Tolerance, localizer: Localizer) -> dict[str, Any]:
    """Pair intermediates by shared name, or through the candidate's record of the reference's names."""
    if reference.intermediate_scheme is None or candidate.intermediate_scheme is None:
        return _unavailable(reference, candidate, localizer.method)
    if reference.intermediate_scheme == candidate.intermediate_scheme:
        mapping = None
    else:
        mapping = candidate.intermediate_names(reference.intermediate_scheme)
        if not mapping:
            return {"method": localizer.method, "status": "unavailable", "compared": 0, "trace": [],
                    "message": localizer.unmatched}
    ref_values = reference.run_with_intermediates(ref_feed, names=None if mapping is None else list(mapping))
    cand_values: dict[str, Intermediate] = {
        i.name: i for i in candidate.run_with_intermediates(cand_feed, names=None if mapping is None
                                                            else list(mapping.values()))}
    entries = []
    for item in ref_values:
        cand_name = item.name if mapping is None else mapping.get(item.name)
        match = cand_values.get(cand_name) if cand_name is not None else None
        if match is None:
            continue
        label = dict(item.label)
        if "node" in match.label:  # the candidate op that computes it, for the report
            label.setdefault("node", match.label["node"])
        entries.append((label, item.value, cand_name, match.value))
    return _walk(entries, tolerance, localizer)


def _unavailable(reference: Session, candidate: Session, method: str | None) -> dict[str, Any]:
    pairs = ", ".join(f"{a} vs {b}" for a, b in sorted(LOCALIZERS))
    return {"method": method, "status": "unavailable", "compared": 0, "trace": [],
            "message": f"intermediate tensors of a {reference.format_name} model cannot be matched to those of a "
                       f"{candidate.format_name} model by name; localization works for {pairs}"}


def localize(reference: Session, candidate: Session, ref_feed, cand_feed, tolerance: Tolerance) -> dict[str, Any]:
    """Name the first op (or module, or layer) whose output diverges, where the pair of formats allows it."""
    entry = LOCALIZERS.get((reference.format_name, candidate.format_name))
    if entry is None:
        return _unavailable(reference, candidate, None)
    return entry.run(reference, candidate, ref_feed, cand_feed, tolerance, entry)


def error_entry_points(reference: Session, candidate: Session, feeds: Mapping[str, np.ndarray],
                       among: set[str] | None = None) -> list[dict[str, Any]]:
    """Where error enters a candidate that computes the reference's graph approximately (a quantized
    copy of the same ONNX graph, tensors of the same names): for each reference node, the error of its
    output (max |difference| as a share of the output's scale) less the largest error already on its
    inputs; the nodes that add most first. ``among``: only these node names (e.g. the quantized ones);
    each entry names its ``node`` and, where the candidate fused several into one, all of ``nodes``.

    Unlike :func:`localize`, which names the first tensor beyond a tolerance, this ranks every node by
    what it contributes: in an int8 model every quantized op is a little off, and the ones to keep in
    float are those where most of the final error comes from."""
    ref_values = {i.name: i for i in reference.run_with_intermediates(feeds)}
    cand_values = {i.name: i.value for i in candidate.run_with_intermediates(feeds, names=list(ref_values))}
    error: dict[str, float] = {}
    for name, item in ref_values.items():
        if name in cand_values and np.issubdtype(np.asarray(item.value).dtype, np.floating):
            ref = np.asarray(item.value, dtype=np.float64)
            cand = np.asarray(cand_values[name], dtype=np.float64)
            if ref.shape == cand.shape and ref.size:
                scale = float(np.abs(ref).max()) or 1.0
                error[name] = float(np.abs(cand - ref).max()) / scale
    # A tensor only the reference has (a quantizer fuses Conv and Relu into one node writing the Relu's
    # output) joins its producer to the node it feeds: their error is measured together.
    graph = getattr(reference, "model").graph
    producers = {out: node for node in graph.node for out in node.output}
    ranked = []
    for node in graph.node:
        outputs = [o for o in node.output if o in error]
        if not outputs:
            continue
        members, before, pending, seen = [node], 0.0, list(node.input), set()
        while pending:
            tensor = pending.pop()
            if not tensor or tensor in seen:
                continue
            seen.add(tensor)
            if tensor in error:
                before = max(before, error[tensor])
            elif tensor in producers:
                members.append(producers[tensor])
                pending.extend(producers[tensor].input)
        chosen = [m.name for m in reversed(members) if among is None or m.name in among]
        if not chosen:
            continue
        after = max(error[o] for o in outputs)
        ranked.append({"node": chosen[0], "nodes": chosen, "op_type": next(m.op_type for m in members
                                                                          if m.name == chosen[0]),
                       "tensor": outputs[0], "error": after, "added": after - before})
    return sorted((r for r in ranked if r["added"] > 0), key=lambda r: -r["added"])


register_localizer("onnx", "onnx", method="onnx-intermediates", noun="op")
register_localizer("pytorch", "onnx", method="torch-modules", noun="module",
                   unmatched="the ONNX model carries no PyTorch module names (only the dynamo exporter writes "
                             "them), so its tensors cannot be matched to modules")
register_localizer("keras", "onnx", method="keras-layers", noun="layer",
                   unmatched="the ONNX model does not record which tensors hold Keras layer outputs (modelport "
                             "convert writes that map), so layer outputs cannot be matched")
register_localizer("onnx", "savedmodel", method="onnx-scopes", noun="op",
                   unmatched="the SavedModel does not record which TF tensor computes each ONNX value (modelport's "
                             "onnx -> savedmodel writes that record), so its tensors cannot be matched")
