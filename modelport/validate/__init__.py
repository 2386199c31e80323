"""Numerical parity between two models: feeds, metrics, localization, reports.

``modelport.validate(reference, candidate)`` is this package called as a function.
"""
from __future__ import annotations

from .._callable_module import make_callable
from .api import validate
from .compare import OutputParity, ParityReport
from .tolerances import DEFAULT_TOLERANCES, tolerances_for

__all__ = ["DEFAULT_TOLERANCES", "OutputParity", "ParityReport", "check_parity", "tolerances_for", "validate"]


def __getattr__(name):
    if name == "check_parity":
        from .parity import check_parity
        return check_parity
    raise AttributeError(name)


make_callable(__name__, "validate")
