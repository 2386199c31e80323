"""Run ONNX's node test cases through the ONNX -> TensorFlow converter and write down the result:
``docs/onnx-tf-coverage.md`` (the table users read: supported ops with their opset range, every
failing case with why) and ``tests/convert/onnx_tf/known_failures.json`` (what the test suite
expects to fail; a case that starts passing must leave that list).

    python -m modelport.convert.onnx_tf.coverage
"""
from __future__ import annotations

from pathlib import Path

from ..node_suite import node_cases, run_case as _run_case, write_coverage

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "onnx-tf-coverage.md"
KNOWN = REPO / "tests" / "convert" / "onnx_tf" / "known_failures.json"
NO_DTYPE = "a dtype TensorFlow cannot hold (float8, float4, int4, int2, e8m0, optional, sequence)"

__all__ = ["node_cases", "run_case", "main"]


def run_case(case) -> None:
    from .backend import TensorFlowBackend
    _run_case(case, TensorFlowBackend.prepare)


def main() -> None:
    from . import OPS
    from .backend import TensorFlowBackend
    write_coverage(title="ONNX -> TensorFlow", command="python -m modelport.convert.onnx_tf.coverage", registry=OPS,
                   prepare=TensorFlowBackend.prepare, doc=DOC, known=KNOWN, repo=REPO, no_dtype=NO_DTYPE)


if __name__ == "__main__":
    main()
