"""ONNX clean-up after export (``convert --optimize``): onnxslim's constant folding, dead-node
removal and pattern fusions. It runs as one more hop, onnx -> onnx, so its output is checked
against the unoptimized model like every other hop."""
from __future__ import annotations

from pathlib import Path

from .._console import captured_output
from ..errors import ConversionError, UsageError, first_line
from .registry import ConvertOptions, Edge, EdgeOutput


def optimize_onnx(session, dst: Path, options: ConvertOptions) -> EdgeOutput:
    """ONNX -> a leaner ONNX, through onnxslim."""
    try:
        import onnxslim
    except ImportError as exc:
        raise UsageError("--optimize needs onnxslim, which is not installed", hint="pip install onnxslim") from exc
    before = len(session.handle.graph.node)
    try:
        with captured_output():
            slimmed = onnxslim.slim(session.handle)
    except Exception as exc:
        raise ConversionError(f"onnxslim failed: {first_line(exc)}", hop="onnx->onnx (optimize)",
                              hint="convert without --optimize") from exc
    dst.write_bytes(slimmed.SerializeToString())
    return EdgeOutput(exporter=f"onnxslim {onnxslim.__version__}", note=f"{before} -> {len(slimmed.graph.node)} nodes")


OPTIMIZE_EDGE = Edge("onnx", "onnx", optimize_onnx, "onnxslim: constant folding, dead code, fusions")
