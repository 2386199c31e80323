"""JAX / Flax -> ONNX: our own converter from the model's jaxpr, one handler per lax primitive.

Chosen over the two existing routes after measuring them on the test models (MLP, Flax CNN with
BatchNorm, Flax transformer block), see docs/architecture.md: jax2onnx 0.17 fails on the linen
CNN (its max_pool patch rejects positional arguments; through a jaxpr, its reduce_window_max
lowering is a MaxPool that ONNX Runtime refuses), and jax2tf now emits XlaCallModule only, which
tf2onnx cannot convert, so jax2tf -> SavedModel -> tf2onnx fails on every model.
"""
from __future__ import annotations

from pathlib import Path

from ..onnx_builder import opsets_from
from ..registry import ConvertOptions, converter
from . import primitives as _primitives  # noqa: F401  (registers the built-in primitive handlers)
from .graph import JAX_PRIMITIVES, ONNX_OPSET, jax_primitive

ONNX_OPSET_MIN = 18  # reductions with axes as an input

__all__ = ["JAX_PRIMITIVES", "jax_primitive", "jax_to_onnx"]


@converter("jax", "onnx", "modelport's jaxpr converter", opsets=opsets_from(ONNX_OPSET_MIN))
def jax_to_onnx(session, dst: Path, options: ConvertOptions) -> Path:
    """A JAX function or Flax module, traced to a jaxpr -> ONNX."""
    from .graph import build_model
    session.require_shapes()
    opset = options.opset or ONNX_OPSET
    doc = f"converted from JAX {session.source} ({session.model.kind})"
    props = {"source_format": "jax", "jax_source": session.source}
    if session.exported is not None:  # an artifact holds StableHLO, not a jaxpr
        from .stablehlo import build_from_exported
        model = build_from_exported(session.exported, session.inputs, opset=opset,
                                    name=session.exported.fun_name or "jax_export", doc=doc, props=props)
    else:
        model = build_model(session.model, session.inputs, dynamic_batch=options.dynamic_batch, opset=opset,
                            name=session.source.split(":")[-1], doc=doc, props=props)
    dst.write_bytes(model.SerializeToString())
    return dst
