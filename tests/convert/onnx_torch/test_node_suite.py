"""ONNX's node test cases through the ONNX -> PyTorch converter. Every case not listed in
known_failures.json must pass; every listed one must still fail (strict), so the list (and the
coverage doc generated with it) is the measured truth. Regenerate both with
``python -m modelport.convert.onnx_torch.coverage``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.convert.node_suite import is_random
from modelport.convert.onnx_torch.coverage import DOC, node_cases, run_case

KNOWN = json.loads((Path(__file__).parent / "known_failures.json").read_text())
CASES = node_cases()


# A case of random draws may match by chance: it is expected to fail, but not strictly.
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=pytest.mark.xfail(
    strict=not is_random(c), reason=KNOWN[c.name]["why"]) if c.name in KNOWN else ()) for c in CASES])
def test_onnx_node_case(case):
    run_case(case)


def test_pass_rate(capsys):
    passed = len(CASES) - len(KNOWN)
    with capsys.disabled():
        print(f"\nONNX -> PyTorch: {passed} of {len(CASES)} ONNX node test cases pass ({passed / len(CASES):.1%})")
    assert set(KNOWN) <= {c.name for c in CASES}, "known_failures.json names cases onnx no longer has: regenerate it"
    assert passed / len(CASES) >= 0.97  # the goal of #13


def test_coverage_doc_matches_the_known_failures():
    text = DOC.read_text()
    passed = len(CASES) - len(KNOWN)
    assert f"**{passed} of {len(CASES)} cases pass" in text, "docs/onnx-torch-coverage.md is stale: regenerate it"
    assert all(f"| {name} |" in text for name in KNOWN)
