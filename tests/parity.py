"""The one parity assertion of the conversion tests.

Tolerances come from modelport's table (``validate/tolerances.py``: data, the same numbers the
product uses); the comparison itself is plain numpy on the outputs of two independent runtimes,
so the verdict never depends on the code under test.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from modelport.validate.tolerances import tolerances_for


def noise_floors(run: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]],
                 feeds: Mapping[str, np.ndarray]) -> dict[str, float]:
    """How far ``run``'s outputs move, as a share of their scale, when its float feeds move by about
    one ulp: the rounding noise the model itself amplifies, on which the fp32 rule raises its rtol."""
    rng = np.random.default_rng(1)
    moved = {n: (v * (1 + rng.standard_normal(v.shape) * 2.0 ** -23)).astype(v.dtype) if v.dtype.kind == "f" else v
             for n, v in ((n, np.asarray(v)) for n, v in feeds.items())}
    first, second = run(feeds), run(moved)
    return {n: float(np.abs(np.asarray(first[n], np.float64) - second[n]).max() / max(np.abs(first[n]).max(), 1e-30))
            for n in first}


def assert_outputs_match(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], *,
                         precision: str = "fp32", atol: float | None = None, rtol: float | None = None,
                         relative_to: str | None = None, noise: Mapping[str, float] | None = None) -> float:
    """Every expected output is in ``got`` and within tolerance: ``|got - expected| <= atol + rtol * R``
    with R = |expected| (element) or max |expected| of the output (scale).

    ``noise`` (from :func:`noise_floors`) raises an adaptive (fp32 default) rtol per output as the
    product's rule does. Also refuses an all-zero reference: a comparison with it would prove nothing.
    Returns the worst error relative to the outputs' scale.
    """
    base = tolerance = tolerances_for(precision, atol, rtol, relative_to)
    missing = sorted(set(expected) - set(got))
    assert not missing, f"outputs {missing} are missing; got {sorted(got)}"
    worst = 0.0
    for name, reference in expected.items():
        reference = np.asarray(reference, dtype=np.float64)
        value = np.asarray(got[name], dtype=np.float64)
        if value.shape != reference.shape and value.size == reference.size:
            value = value.reshape(reference.shape)
        assert value.shape == reference.shape, f"{name}: shape {value.shape} vs expected {reference.shape}"
        scale = float(np.abs(reference).max()) if reference.size else 0.0
        assert scale > 0, f"{name}: the reference output is all zeros; the comparison would prove nothing"
        error = np.abs(value - reference)
        tolerance = base.raised_to((noise or {}).get(name))
        relative = np.abs(reference) if tolerance.relative_to == "element" else scale
        allowed = tolerance.atol + tolerance.rtol * relative
        beyond = error > allowed
        if beyond.any():
            index = np.unravel_index(int(np.argmax(error - allowed)), error.shape)
            raise AssertionError(
                f"{name}: {int(beyond.sum())} of {beyond.size} values beyond {tolerance.describe()}; "
                f"max abs error {error.max():.3g}, e.g. {value[index]:.6g} vs expected {reference[index]:.6g}")
        worst = max(worst, float(error.max()) / scale)
    return worst
