"""Numerical parity between two models: feeds, metrics, localization, reports.

``modelport.validate(reference, candidate)`` is this package called as a function.
"""
from __future__ import annotations

from .._callable_module import make_callable
from .api import validate
from .compare import OutputParity, ParityReport
from .tolerances import DEFAULT_TOLERANCES, tolerances_for

from .parity import check_parity, choose_tolerance, compare_sessions

__all__ = ["DEFAULT_TOLERANCES", "OutputParity", "ParityReport", "check_parity", "choose_tolerance",
           "compare_sessions", "tolerances_for", "validate"]


make_callable(__name__, "validate")
