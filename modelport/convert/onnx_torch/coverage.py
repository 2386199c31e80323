"""Run ONNX's node test cases through the ONNX -> PyTorch converter and write down the result:
``docs/onnx-torch-coverage.md`` (supported ops with their opset range, every failing case with why)
and ``tests/convert/onnx_torch/known_failures.json`` (what the test suite expects to fail).

    python -m modelport.convert.onnx_torch.coverage
"""
from __future__ import annotations

from pathlib import Path

from ..node_suite import node_cases, run_case as _run_case, write_coverage

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "onnx-torch-coverage.md"
KNOWN = REPO / "tests" / "convert" / "onnx_torch" / "known_failures.json"
NO_DTYPE = "a dtype PyTorch tensors cannot hold (string, int4/uint4, float4, int2)"
_STRINGS = "strings, which PyTorch tensors cannot hold"
# Ops left out on purpose, and why.
REASONS = {"StringSplit": _STRINGS, "StringNormalizer": _STRINGS, "StringConcat": _STRINGS, "RegexFullMatch": _STRINGS,
           "ImageDecoder": "decoding image files (JPEG, PNG, ...) is not a tensor op in PyTorch; decode before the model",
           "TreeEnsemble": "not implemented: ONNX-ML tree ensembles (a PyTorch port would be a gather loop per tree)"}

__all__ = ["node_cases", "run_case", "main"]


def run_case(case) -> None:
    from .backend import TorchBackend
    _run_case(case, TorchBackend.prepare)


def main() -> None:
    from . import OPS
    from .backend import TorchBackend
    write_coverage(title="ONNX -> PyTorch", command="python -m modelport.convert.onnx_torch.coverage", registry=OPS,
                   prepare=TorchBackend.prepare, doc=DOC, known=KNOWN, repo=REPO, no_dtype=NO_DTYPE, reasons=REASONS)


if __name__ == "__main__":
    main()
