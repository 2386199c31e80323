"""Finding the first op where two models part ways.

ONNX vs ONNX: both graphs run with every intermediate tensor exposed; tensors are matched by name
and walked in the reference's topological order. PyTorch vs the ONNX exported from it: module
outputs (forward hooks) are matched with the ONNX tensors that the dynamo exporter tags with the
same module path (``pkg.torch.onnx.name_scopes``). Other pairs cannot be matched by name yet, and
the result says so.
"""
from __future__ import annotations

import ast
from typing import Any, Mapping

import numpy as np

from ..formats.base import Session
from .layout import to_channels_first, to_channels_last
from .tolerances import Tolerance

TRACE_CONTEXT = 3  # agreeing tensors shown before the divergence


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
        metrics = _metrics(ref, arranged, tolerance)
        if best is None or metrics["beyond"] < best["beyond"]:
            best = metrics
    return best


def _metrics(ref: np.ndarray, cand: np.ndarray, tolerance: Tolerance) -> dict[str, Any]:
    ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
    finite = np.isfinite(ref64) & np.isfinite(cand64)
    diff = np.abs(ref64 - cand64)
    diff[~finite] = np.where(np.isnan(ref64[~finite]) == np.isnan(cand64[~finite]), 0.0, np.inf)
    beyond = diff > tolerance.allowed(np.abs(np.where(finite, ref64, 0)))
    return {"max_abs": float(diff.max()), "out_of_tolerance": float(beyond.mean()), "beyond": int(beyond.sum()),
            "passed": not bool(beyond.any()), "shape": list(ref.shape)}


def _walk(entries, ref_values, cand_values, tolerance: Tolerance, method: str, noun: str) -> dict[str, Any]:
    """entries: (label dict, reference tensor name, candidate tensor name) in execution order."""
    compared, trace = 0, []
    for label, ref_name, cand_name in entries:
        if ref_name not in ref_values or cand_name not in cand_values:
            continue
        metrics = _compare(ref_values[ref_name], cand_values[cand_name], tolerance)
        if metrics is None:
            continue
        compared += 1
        row = {**label, "tensor": cand_name, **metrics}
        trace.append(row)
        if not metrics["passed"]:
            where = ", ".join(f"{k} {v!r}" for k, v in label.items())
            return {"method": method, "status": "found", "compared": compared, **row,
                    "trace": trace[-(TRACE_CONTEXT + 1):],
                    "message": f"first diverging {noun}: {where} (tensor {cand_name!r}, max abs error "
                               f"{metrics['max_abs']:.3g}, {metrics['beyond']} of {ref_values[ref_name].size} "
                               f"values beyond tolerance)"}
    status = "none" if compared else "unavailable"
    message = (f"all {compared} matched intermediate tensors agree; the difference arises in ops that exist "
               f"in only one of the models" if compared else "no intermediate tensor could be matched by name")
    return {"method": method, "status": status, "compared": compared, "trace": trace[-TRACE_CONTEXT:], "message": message}


# ----------------------------------------------------------------------------------- ONNX vs ONNX
def expose_all_tensors(model):
    """A copy of an ONNX model whose every intermediate tensor is also a graph output.

    Types come from shape inference where it knows the op; outputs of ops it does not know
    (contrib ops such as ORT's FusedConv in optimized graphs) are exposed untyped, which ONNX
    Runtime accepts and resolves itself.
    """
    import onnx
    from onnx import helper, shape_inference
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort: untyped tensors are still exposed
        inferred = model
    types = {vi.name: vi.type for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    exposed = onnx.ModelProto()
    exposed.CopyFrom(inferred)
    present = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name and name not in present:
                value = helper.make_empty_tensor_value_info(name)
                if name in types and types[name].HasField("tensor_type"):
                    value.type.CopyFrom(types[name])
                exposed.graph.output.append(value)
                present.add(name)
    return exposed


def run_exposed(model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # No graph rewrites: every exposed tensor must be computed as the graph says.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    typed = {i.name: i.type for i in session.get_inputs()}
    from ..tensors import ort_type_to_numpy
    feeds = {k: np.asarray(v, dtype=ort_type_to_numpy(typed[k])) for k, v in feeds.items() if k in typed}
    return dict(zip(names, session.run(names, feeds)))


def localize_onnx_pair(reference, candidate, ref_feed, cand_feed, tolerance: Tolerance) -> dict[str, Any]:
    ref_values = run_exposed(expose_all_tensors(reference.model), ref_feed)
    cand_values = run_exposed(expose_all_tensors(candidate.model), cand_feed)
    entries = [({"node": node.name or f"#{i}", "op_type": node.op_type}, out, out)
               for i, node in enumerate(reference.model.graph.node) for out in node.output if out]
    return _walk(entries, ref_values, cand_values, tolerance, "onnx-intermediates", "op")


# -------------------------------------------------------------------------------- PyTorch vs ONNX
def onnx_module_outputs(model) -> dict[str, tuple[str, str]]:
    """Module path -> (ONNX tensor holding that module's output, node name), from dynamo metadata."""
    last: dict[str, tuple[str, str]] = {}
    for node in model.graph.node:
        props = {p.key: p.value for p in node.metadata_props}
        scopes = props.get("pkg.torch.onnx.name_scopes")
        if not scopes or not node.output:
            continue
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            continue
        for path in names[1:-1]:  # [root '', module paths..., op name]
            last[path] = (node.output[0], node.name)
    return last


def localize_torch_onnx(reference, candidate, ref_feed, cand_feed, tolerance: Tolerance) -> dict[str, Any]:
    import torch
    module_outputs = onnx_module_outputs(candidate.model)
    if not module_outputs:
        return {"method": "torch-modules", "status": "unavailable", "compared": 0, "trace": [],
                "message": "the ONNX model carries no PyTorch module names (only the dynamo exporter writes "
                           "them), so its tensors cannot be matched to modules"}
    captured: dict[str, np.ndarray] = {}
    order: list[tuple[str, str]] = []
    handles = []
    for name, module in reference.module.named_modules():
        if not name or name not in module_outputs:
            continue

        def hook(mod, args, output, name=name):
            if isinstance(output, torch.Tensor) and name not in captured:
                captured[name] = output.detach().cpu().numpy()
                order.append((name, type(mod).__name__))
        handles.append(module.register_forward_hook(hook))
    try:
        reference.run(ref_feed)
    finally:
        for handle in handles:
            handle.remove()
    tensors = {name: tensor for name, (tensor, _) in module_outputs.items()}
    exposed = expose_all_tensors(candidate.model)
    cand_values = run_exposed(exposed, cand_feed)
    entries = [({"module": name, "class": cls, "node": module_outputs[name][1]}, name, tensors[name])
               for name, cls in order]
    return _walk(entries, captured, cand_values, tolerance, "torch-modules", "module")


# ---------------------------------------------------------------------------------- Keras vs ONNX
def localize_keras_onnx(reference, candidate, ref_feed, cand_feed, tolerance: Tolerance) -> dict[str, Any]:
    import json
    import keras
    from ..convert.tf_onnx import KERAS_LAYER_OUTPUTS
    props = {p.key: p.value for p in candidate.model.metadata_props}
    recorded = json.loads(props.get(KERAS_LAYER_OUTPUTS, "{}"))
    model = reference.model
    layers = [layer for layer in model.layers if layer.name in recorded]
    if not layers:
        return {"method": "keras-layers", "status": "unavailable", "compared": 0, "trace": [],
                "message": "the ONNX model does not record which tensors hold Keras layer outputs (modelport "
                           "convert writes that map), so layer outputs cannot be matched"}
    view = keras.Model(model.inputs, [layer.output for layer in layers])
    args = [np.asarray(ref_feed[s.name], dtype=s.dtype) for s in reference.inputs]
    values = view(args if len(args) > 1 else args[0], training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    captured = {layer.name: np.asarray(v) for layer, v in zip(layers, values)}
    cand_values = run_exposed(expose_all_tensors(candidate.model), cand_feed)
    producers = {out: node.name for node in candidate.model.graph.node for out in node.output}
    entries = [({"layer": layer.name, "class": type(layer).__name__, "node": producers.get(recorded[layer.name], "")},
                layer.name, recorded[layer.name]) for layer in layers]
    return _walk(entries, captured, cand_values, tolerance, "keras-layers", "layer")


def localize(reference: Session, candidate: Session, ref_feed, cand_feed, tolerance: Tolerance) -> dict[str, Any]:
    """Name the first op (or module) whose output diverges, where the pair of formats allows it."""
    pair = (reference.format_name, candidate.format_name)
    if pair == ("onnx", "onnx"):
        return localize_onnx_pair(reference, candidate, ref_feed, cand_feed, tolerance)
    if pair == ("pytorch", "onnx") and hasattr(reference.module, "named_modules"):
        return localize_torch_onnx(reference, candidate, ref_feed, cand_feed, tolerance)
    if pair == ("keras", "onnx"):
        return localize_keras_onnx(reference, candidate, ref_feed, cand_feed, tolerance)
    return {"method": None, "status": "unavailable", "compared": 0, "trace": [],
            "message": f"intermediate tensors of a {reference.format_name} model cannot be matched to those of a "
                       f"{candidate.format_name} model by name; localization works for ONNX vs ONNX and for "
                       "PyTorch or Keras vs the ONNX converted from it"}
