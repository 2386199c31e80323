"""Parity tolerances: defaults per precision of the candidate model, as data.

A value passes when ``|candidate - reference| <= atol + rtol * R``, where R is ``|reference|`` of
that value (``relative_to="element"``, numpy's allclose rule) or the largest ``|reference|`` of
the whole output (``relative_to="scale"``). The element rule suits fp32; reduced precision errs
in proportion to the output's magnitude, not each value's, so its defaults use the scale rule.
``--atol``/``--rtol``/``--relative-to`` override them per run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

DEFAULT_TOLERANCES: dict[str, dict] = {
    "fp32": {"atol": 1e-4, "rtol": 1e-3, "relative_to": "element"},
    "fp16": {"atol": 1e-3, "rtol": 1e-2, "relative_to": "scale"},
    "uint8-weights": {"atol": 1e-2, "rtol": 5e-2, "relative_to": "scale"},
    "int8": {"atol": 1e-2, "rtol": 1e-1, "relative_to": "scale"},
}
RELATIVE_TO = ("element", "scale")


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    relative_to: str = "element"

    def allowed(self, reference_abs: np.ndarray):
        """The largest absolute error allowed for each value of ``|reference|``."""
        if self.relative_to == "scale":
            return self.atol + self.rtol * (float(reference_abs.max()) if reference_abs.size else 0.0)
        return self.atol + self.rtol * reference_abs

    def describe(self) -> str:
        where = "|reference|" if self.relative_to == "element" else "max |reference| of the output"
        return f"atol {self.atol:g}, rtol {self.rtol:g} x {where}"


def tolerances_for(precision: str = "fp32", atol: float | None = None, rtol: float | None = None,
                   relative_to: str | None = None) -> Tolerance:
    try:
        default = DEFAULT_TOLERANCES[precision]
    except KeyError:
        raise UsageError(f"unknown precision {precision!r}", hint=f"known: {', '.join(DEFAULT_TOLERANCES)}") from None
    mode = relative_to or default["relative_to"]
    if mode not in RELATIVE_TO:
        raise UsageError(f"--relative-to {mode!r}: element or scale")
    return Tolerance(default["atol"] if atol is None else atol, default["rtol"] if rtol is None else rtol, mode)
