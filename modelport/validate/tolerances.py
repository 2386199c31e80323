"""Default parity tolerances per precision of the candidate model.

A value passes when ``|candidate - reference| <= atol + rtol * |reference|`` (numpy's allclose
rule). These are data: ``--atol``/``--rtol`` override them per run.
"""
from __future__ import annotations

from ..errors import UsageError

DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"atol": 1e-4, "rtol": 1e-3},
    "fp16": {"atol": 1e-2, "rtol": 1e-2},
    "uint8-weights": {"atol": 5e-2, "rtol": 5e-2},
    "int8": {"atol": 1e-1, "rtol": 1e-1},
}


def tolerances_for(precision: str = "fp32", atol: float | None = None, rtol: float | None = None) -> tuple[float, float]:
    try:
        default = DEFAULT_TOLERANCES[precision]
    except KeyError:
        raise UsageError(f"unknown precision {precision!r}", hint=f"known: {', '.join(DEFAULT_TOLERANCES)}") from None
    return (default["atol"] if atol is None else atol, default["rtol"] if rtol is None else rtol)
