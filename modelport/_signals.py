"""Interrupts that must win: a signal received during a run is remembered, not only raised.

Ctrl-C and SIGTERM arrive as exceptions at whatever line is running. Some libraries we call
(exporters with their own fallbacks, C++ bindings) catch broad exceptions and carry on, so the
exception alone may be swallowed and the run finish as if nothing happened. The CLI's handlers
therefore also record the signal, and :func:`raise_if_interrupted` re-raises it at the points
that matter: before an output is committed and before the process reports success.
"""
from __future__ import annotations

import signal
import threading

_received: type[BaseException] | None = None


class Terminated(BaseException):
    """SIGTERM (timeout, CI cancellation, docker stop), raised like Ctrl-C's KeyboardInterrupt so
    that every staged output is removed on the way out."""


_RAISES = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}


def received_interrupt() -> type[BaseException] | None:
    """The exception type of the interrupt received during this run, if any."""
    return _received


def raise_if_interrupted() -> None:
    """Raise the interrupt received earlier, even if the code it was raised in swallowed it."""
    if _received is not None:
        raise _received()


def _handler(signum, frame):
    global _received
    _received = _RAISES[signum]
    raise _received()


class remembered_interrupts:
    """Context manager installing the remembering handlers (main thread only; signals reach no other)."""

    def __enter__(self):
        global _received
        _received = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in _RAISES:
                self._previous[signum] = signal.signal(signum, _handler)
        return self

    def __exit__(self, *exc):
        global _received
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        _received = None
        return False
