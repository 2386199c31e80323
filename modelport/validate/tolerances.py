"""Parity tolerances: defaults per precision of the candidate model, as data.

A value passes when ``|candidate - reference| <= atol + rtol * R``, where R is the largest
``|reference|`` of the whole output (``relative_to="scale"``, every default) or ``|reference|`` of
that value (``relative_to="element"``, numpy's allclose rule, on request). Integer and boolean
outputs must be equal. ``--atol``/``--rtol``/``--relative-to`` override them per run.

Why fp32 is judged on the output's scale, and why 1e-4 of it
-----------------------------------------------------------
Two correct fp32 runtimes differ by rounding, and rounding error grows with the magnitudes that
flow through the network (accumulated over every dot product), not with each output value's own
size: a logit near zero beside one of 80 carries the same absolute error as its neighbour. The
element rule failed such values on correct conversions (a keras.applications MobileNetV3Small: 27
of 12,000 logits at 0.0019 absolute where the output reaches ~85; timm's Inception-v3: 5e-4 on
logits near zero, cosine 0.9999999983).

Measured (``benchmarks/zoo_bench.py``; max |error| / max |reference| per output, feeds in the
range each model expects, BatchNorm calibrated, residual branches and heads live):

- correct conversions, torch -> ONNX (timm, 50 families): 1e-6 to 6e-6; Keras -> ONNX
  (keras.applications at 96 px, pixels 0..255): ~1e-5 (EfficientNetV2B0 7e-6). Fed standard-normal
  noise instead of the pixels it rescales itself, the same correct EfficientNetV2B0 reaches 7e-3:
  the feeds, not the rule, must fix that (see ``formats/value_ranges.py``).
- one-op defects: the weights of one middle convolution scaled by 1.01 give 2e-4 to 1e-1 of the
  output scale on every timm family measured; a single weight (the largest of that kernel)
  scaled by 1.01 gives 1e-6 to 1e-3, which no fp32 rule can separate from rounding everywhere.

rtol 1e-4 of the scale sits 15x or more above every correct conversion measured and below every
one-layer defect; atol 1e-5 only matters for outputs whose scale is below 0.1. The edge targets'
fp32 checks (TFLite, TF.js) use the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import UsageError

DEFAULT_TOLERANCES: dict[str, dict] = {
    "fp32": {"atol": 1e-5, "rtol": 2e-5, "relative_to": "scale", "adaptive": True},
    "fp16": {"atol": 1e-3, "rtol": 1e-2, "relative_to": "scale"},
    "uint8-weights": {"atol": 1e-2, "rtol": 5e-2, "relative_to": "scale"},
    "int8": {"atol": 1e-2, "rtol": 1e-1, "relative_to": "scale"},
}
RELATIVE_TO = ("element", "scale")
# An adaptive (fp32) rtol is raised to NOISE_FACTOR times the reference's own noise floor, never
# beyond NOISE_CEILING: see the module docstring.
NOISE_FACTOR = 10.0
NOISE_CEILING = 1e-3
# The noise floor is measured with the float inputs moved by about one unit in the last place.
NOISE_PERTURBATION = 2.0 ** -23


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    relative_to: str = "scale"
    # True: rtol is a floor, raised per output to NOISE_FACTOR x the reference's measured noise floor
    adaptive: bool = False

    def raised_to(self, noise_floor: float | None) -> Tolerance:
        """The tolerance for an output whose reference moves by ``noise_floor`` (a share of its
        scale) when its inputs move by one ulp: rtol at least NOISE_FACTOR times that, at most
        NOISE_CEILING (or the floor rtol, if larger)."""
        if not self.adaptive or not noise_floor or not np.isfinite(noise_floor):
            return replace(self, adaptive=False)
        rtol = min(max(self.rtol, NOISE_FACTOR * noise_floor), max(self.rtol, NOISE_CEILING))
        return replace(self, rtol=rtol, adaptive=False)

    def allowed(self, reference_abs: np.ndarray):
        """The largest absolute error allowed for each value of ``|reference|``."""
        if self.relative_to == "scale":
            return self.atol + self.rtol * (float(reference_abs.max()) if reference_abs.size else 0.0)
        return self.atol + self.rtol * reference_abs

    def describe(self) -> str:
        where = "|reference|" if self.relative_to == "element" else "max |reference| of the output"
        raised = f" (raised to {NOISE_FACTOR:g}x the reference's noise floor where higher)" if self.adaptive else ""
        return f"atol {self.atol:g}, rtol {self.rtol:g}{raised} x {where}"


def tolerances_for(precision: str = "fp32", atol: float | None = None, rtol: float | None = None,
                   relative_to: str | None = None) -> Tolerance:
    try:
        default = DEFAULT_TOLERANCES[precision]
    except KeyError:
        raise UsageError(f"unknown precision {precision!r}", hint=f"known: {', '.join(DEFAULT_TOLERANCES)}") from None
    mode = relative_to or default["relative_to"]
    if mode not in RELATIVE_TO:
        raise UsageError(f"--relative-to {mode!r}: element or scale")
    # A tolerance the user sets is kept as given; only the default adapts to the model's noise.
    adaptive = bool(default.get("adaptive")) and rtol is None and relative_to is None
    return Tolerance(default["atol"] if atol is None else atol, default["rtol"] if rtol is None else rtol, mode,
                     adaptive)
