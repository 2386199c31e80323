"""ONNX's node test cases (``onnx.backend.test``) as the measure of an ONNX converter: run every case
through a converter's ``onnx.backend.base.Backend``, compare as ONNX's own backend test runner does,
and write down the result: a coverage document users read (the supported ops with their opset
range, every failing case with why) and the known-failures list the test suite holds the converter
to (a case that starts passing must leave it). Each ONNX converter's ``coverage.py`` calls
:func:`write_coverage` with its backend and paths.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np


def node_cases():
    from onnx.backend.test.case.node import collect_testcases
    return [case for case in collect_testcases(None) if case.model is not None]


def run_case(case, prepare: Callable) -> None:
    """Convert the case's model with ``prepare`` (a Backend's) and compare with ONNX's expected
    outputs as ONNX's backend test runner does: same shape, same dtype, values within the case's
    tolerances."""
    from onnx import TensorProto, numpy_helper
    rep = prepare(case.model)
    for inputs, expected in case.data_sets:
        got = rep.run(inputs)
        expected = [numpy_helper.to_array(e) if isinstance(e, TensorProto) else e for e in expected]
        assert len(got) == len(expected), f"{len(got)} outputs, expected {len(expected)}"
        for index, (value, reference) in enumerate(zip(got, expected)):
            assert_similar(value, reference, case.rtol, case.atol, f"output {index}")


def _numpy_cannot_compare(dtype) -> bool:
    """bfloat16 and the narrow types (ml_dtypes') have no numpy arithmetic to compare with."""
    return dtype.name == "bfloat16" or dtype.name.startswith(("float8", "float4", "float6", "int4", "uint4", "int2",
                                                              "uint2"))


def assert_similar(value, reference, rtol: float, atol: float, where: str) -> None:
    if reference is None:  # an empty optional
        assert value is None, f"{where}: a value, expected an empty optional"
        return
    if isinstance(reference, (list, tuple)):  # a sequence
        assert isinstance(value, (list, tuple)), f"{where}: {type(value).__name__}, expected a sequence"
        assert len(value) == len(reference), f"{where}: {len(value)} elements, expected {len(reference)}"
        for i, (item, ref) in enumerate(zip(value, reference)):
            assert_similar(item, ref, rtol, atol, f"{where}[{i}]")
        return
    value, reference = np.asarray(value), np.asarray(reference)
    assert value.shape == reference.shape, f"{where}: shape {value.shape}, expected {reference.shape}"
    if reference.dtype == object:  # strings
        np.testing.assert_array_equal(value, reference)
        return
    assert value.dtype == reference.dtype, f"{where}: dtype {value.dtype}, expected {reference.dtype}"
    if value.dtype.name == "bfloat16":  # the runner's allowance: two bfloat16 ULPs
        rtol = max(rtol, 2 ** -6)
    if _numpy_cannot_compare(value.dtype):
        value, reference = value.astype(np.float32), reference.astype(np.float32)
    np.testing.assert_allclose(value, reference, rtol=rtol, atol=atol)


def why(exc: BaseException, no_dtype: str) -> str:
    """A failure in a few words for the report; ``no_dtype`` says which dtypes the target lacks."""
    text = " ".join(str(exc).split())
    if "cannot be converted" in text:
        return "not implemented yet"
    if "element type" in text:
        return no_dtype
    if isinstance(exc, AssertionError):
        return "wrong values: " + text[:120]
    return f"{type(exc).__name__}: {text[-160:]}"


def _main_op(graph) -> str:
    ops = [node.op_type for node in graph.node if node.op_type not in ("Constant", "Identity", "Cast", "Shape")]
    return ops[0] if ops else (graph.node[0].op_type if graph.node else "?")


# Ops whose outputs are random draws: a converter's can match the reference's only by chance.
RANDOM_OPS = {"Bernoulli", "RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal", "Multinomial"}


def is_random(case) -> bool:
    """Whether the case's expected values are random draws (Dropout in training mode included)."""
    nodes = list(case.model.graph.node)
    return any(n.op_type in RANDOM_OPS for n in nodes) or (
        any(n.op_type == "Dropout" for n in nodes) and "training" in case.name)


def failures_of(cases, prepare: Callable, no_dtype: str) -> dict[str, dict[str, str]]:
    failures: dict[str, dict[str, str]] = {}
    for case in cases:
        try:
            run_case(case, prepare)
        except Exception as exc:  # noqa: BLE001  (every failure is a row of the report)
            # The op the converter stopped at, else the case's main op (expanded cases start with Constants).
            op = getattr(exc, "op_type", None) or _main_op(case.model.graph)
            reason = why(exc, no_dtype)
            if isinstance(exc, AssertionError) and is_random(case):
                reason = "random draws: the converted model's generator is not numpy's (the reference's)"
            failures[case.name] = {"op": op, "why": reason}
    return failures


def write_coverage(*, title: str, command: str, registry, prepare: Callable, doc: Path, known: Path, repo: Path,
                   no_dtype: str, reasons: dict[str, str] | None = None) -> None:
    """Run every node case through ``prepare`` and write ``doc`` (markdown) and ``known`` (JSON);
    ``reasons`` says, per op, why one the converter does not implement is left out."""
    start = time.perf_counter()
    cases = node_cases()
    failures = failures_of(cases, prepare, no_dtype)
    for row in failures.values():
        if row["why"] == "not implemented yet" and row["op"] in (reasons or {}):
            row["why"] = reasons[row["op"]]
    passed = len(cases) - len(failures)
    known.parent.mkdir(parents=True, exist_ok=True)
    known.write_text(json.dumps(dict(sorted(failures.items())), indent=1) + "\n")
    ops: dict[tuple[str, str], list[int]] = {}
    for key in registry.keys():
        ops.setdefault((key.domain or "ai.onnx", key.op_type), []).append(key.since)
    lines = [
        f"# {title}: what converts",
        "",
        f"Generated by `{command}` from ONNX's own node test cases "
        f"(onnx {__import__('onnx').__version__}); the test suite checks every line of it.",
        "",
        f"**{passed} of {len(cases)} cases pass ({passed / len(cases):.1%})** in {time.perf_counter() - start:.0f} s.",
        "",
        "## Supported ops (domain, op, from opset)",
        "",
        "| op | from opset |",
        "|---|---|",
        *[f"| {op}{'' if domain == 'ai.onnx' else f' ({domain})'} | {', '.join(map(str, sorted(since)))} |"
          for (domain, op), since in sorted(ops.items(), key=lambda item: item[0][1])],
        "",
        "## Cases that do not pass, and why",
        "",
        "| case | op | why |",
        "|---|---|---|",
        *[f"| {name} | {row['op']} | {row['why'].replace('|', '/')} |" for name, row in sorted(failures.items())],
        "",
    ]
    doc.write_text("\n".join(lines))
    print(f"{passed} of {len(cases)} pass ({passed / len(cases):.1%}); wrote {doc.relative_to(repo)} and "
          f"{known.relative_to(repo)}")
