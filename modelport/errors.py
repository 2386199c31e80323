"""One exception tree for the whole tool.

The CLI maps every :class:`ModelportError` to its ``exit_code`` and prints its message; anything
else escaping a command is a bug of modelport and is reported as :class:`InternalError`.
"""
from __future__ import annotations

from typing import Iterable, Sequence


class ModelportError(Exception):
    """Root of every error modelport raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(ModelportError):
    """An option or argument the user gave cannot be used as given."""


class UnsupportedFormatError(ModelportError):
    """The format is known to no registry entry (or cannot be a target of this command)."""


class InvalidModelError(ModelportError):
    """The model file is missing, unreadable, truncated, or not what its name claims."""


class CandidateRunError(InvalidModelError):
    """The candidate of a parity check failed when run on feeds its reference ran: the user's model
    to ``validate`` (exit 2), a converter's bug within ``convert`` (which raises InternalError)."""


class UntrustedPickleError(InvalidModelError):
    """Loading the file would run arbitrary pickled code; refused unless the user opts in."""


class UnsupportedOpError(ModelportError):
    """An operator that the converter (or the exporter it drives) cannot translate."""

    def __init__(self, op_type: str, opset: int | None = None, supported: Iterable[str] = (),
                 *, where: str | None = None, framework: str | None = None, hint: str | None = None,
                 cannot: str = "be converted"):
        self.op_type = op_type
        self.opset = opset
        self.supported = sorted(supported)
        self.where = where
        parts = [f"unsupported op {op_type!r}"]
        if framework:
            parts[0] = f"{framework} op {op_type!r} cannot {cannot}"
        if opset is not None:
            parts.append(f"at opset {opset}")
        if where:
            parts.append(f"(at {where})")
        message = " ".join(parts)
        if self.supported:
            message += "; supported: " + ", ".join(self.supported)
        super().__init__(message, hint=hint)


class NoConversionPathError(ModelportError):
    """No chain of registered converter edges leads from the source format to the target."""


class ConversionError(ModelportError):
    """A converter edge failed for a reason that is not one of the more specific errors."""

    def __init__(self, message: str, *, hop: str | None = None, hint: str | None = None):
        self.hop = hop
        super().__init__(f"{hop}: {message}" if hop else message, hint=hint)


class ParityError(ModelportError):
    """Source and converted model disagree beyond tolerance; the artifact is kept."""

    exit_code = 1

    def __init__(self, report, message: str | None = None, *, result=None):
        self.report = report
        self.result = result
        super().__init__(message or report.summary())


class ServeError(ModelportError):
    """A request the server refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


class InternalError(ModelportError):
    """A bug of modelport itself, never a user error."""

    exit_code = 3


def first_line(error: BaseException | None, limit: int = 300) -> str:
    """The first line of an exception's message (frameworks' messages run to pages), or its type."""
    if error is None:
        return ""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


def quote_list(names: Sequence[str]) -> str:
    """Render names for messages the same way everywhere: quoted with repr, comma separated."""
    return ", ".join(repr(n) for n in names)
