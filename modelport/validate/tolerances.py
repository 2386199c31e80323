"""Parity tolerances: defaults per precision of the candidate model, as data.

A value passes when ``|candidate - reference| <= atol + rtol * R``, where R is the largest
``|reference|`` of the whole output (``relative_to="scale"``, every default) or ``|reference|`` of
that value (``relative_to="element"``, numpy's allclose rule, on request). Integer and boolean
outputs must be equal. ``--atol``/``--rtol``/``--relative-to`` override them per run.

Why fp32 is judged on the output's scale, and how much it allows
----------------------------------------------------------------
Two correct fp32 runtimes differ by rounding, and rounding error grows with the magnitudes that
flow through the network (accumulated over every dot product), not with each output value's own
size: a logit near zero beside one of 80 carries the same absolute error as its neighbour. The
element rule failed such values on correct conversions (keras.applications MobileNetV3Small: 27
of 12,000 logits at 0.0019 absolute where the output reaches ~85; timm's Inception-v3: 5e-4 on
logits near zero, cosine 0.9999999983).

How much rounding a model amplifies is a property of the model, and it is measured: the reference
is run again on its inputs moved by one ulp, and how far its outputs move (the *noise floor*, a
share of the output's scale) tracks the error of a correct conversion closely — timm Inception-v3:
floor 7.3e-5, conversion 8.9e-5 (PyTorch itself in fp32 is 9.8e-5 from its own fp64 result);
DenseNet-121 6.6e-6 vs 8.6e-6; ResNet-18 1.1e-6 vs 1.0e-6. So fp32 allows atol 1e-5 + rtol x scale
with rtol = max(2e-5, 10 x the noise floor), capped at 1e-3. The floor is the largest over every
sample checked, not the first one's: how much rounding a deep model amplifies varies with the input
(keras.applications EfficientNetV2M fed pixels: 5e-6 of the scale on one sample, 1.5e-4 on another;
its correct ONNX conversion, 2.3e-4 at worst, failed against the first sample's floor).

Measured (``make bench-zoo``, benchmarks/results/zoo.json: max |error| / output scale of every
passing cell; 62 timm and transformers models, feeds in the range each model expects, BatchNorm
calibrated, residual branches and heads live): correct conversions to ONNX median 7e-7, to
PyTorch 9e-7, to TF.js 1.2e-6, to TFLite 1.5e-6; the largest, 8e-5 (Inception-v3 to TFLite), under
its raised rtol of 6e-4. Keras EfficientNetV2B0 to ONNX fed pixels 0..255: 7e-6; fed the
standard-normal noise the check used to feed it, the same correct conversion reached 7e-3 — the
feeds, not the rule, had to change (``formats/value_ranges.py``).

One-op defects (tests/validate/test_verdict.py and the zoo's timm models, noise floors 5e-7..7e-5):
one middle convolution's weights x 1.01 give 7e-5 (MobileViT) to 1e-1 of the scale, every one at
least 30x its model's floor; every exact GELU as its tanh form 3e-5 (ConvNeXt) to 1e-4; a single
weight x 1.01 gives 1e-6..1e-3, which no fp32 rule can separate from rounding everywhere. The
floor rtol 2e-5 sits above every well-conditioned model's rounding and below each of these; the
factor 10 keeps a correct conversion (1x to 1.5x its floor) passing and a defect (30x or more)
failing. The edge targets' fp32 checks (TFLite, TF.js bundles) use atol 1e-5 + rtol 1e-4 x scale.
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
    # 4-bit weights in blocks of 32: a trained BERT's hidden states move by 1.4e-2..5.7e-2 of their
    # scale (convert/quantize.py), a regression MLP trained on a teacher by 6.4e-2; one layer's 4-bit
    # pairs swapped in their bytes (a packing bug) moves the MLP by 1.2..1.6 (tests/convert/test_quantize.py).
    "int4-weights": {"atol": 1e-2, "rtol": 1.5e-1, "relative_to": "scale"},
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
