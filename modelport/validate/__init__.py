"""Numerical parity between two models: feeds, metrics, reports."""
from __future__ import annotations

from .compare import OutputParity, ParityReport
from .tolerances import DEFAULT_TOLERANCES, tolerances_for

__all__ = ["DEFAULT_TOLERANCES", "OutputParity", "ParityReport", "check_parity", "tolerances_for"]


def __getattr__(name):
    if name == "check_parity":
        from .parity import check_parity
        return check_parity
    raise AttributeError(name)
