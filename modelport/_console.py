"""Progress and messages on stderr, so that stdout stays clean for ``--json``.

On a terminal each step shows a spinner; otherwise (CI, pipes) it prints plain lines.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from typing import Callable, Iterator

from rich.console import Console

console = Console(stderr=True, highlight=False, soft_wrap=True)


class _Elapsed:
    """A status line that shows the seconds since it started each time the spinner redraws it."""

    def __init__(self, message: str):
        self.message = message
        self.start = time.perf_counter()

    def __rich__(self) -> str:
        return f"{self.message} [dim]{time.perf_counter() - self.start:.0f}s[/]"


class Steps:
    """Reports the steps of a long command: a spinner with the elapsed time on a terminal, or one
    line per step otherwise; each step ends with its duration."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        start = time.perf_counter()
        if console.is_terminal:
            with console.status(_Elapsed(message)):
                try:
                    yield
                except BaseException:
                    console.print(f"[red]✗[/] {message}")
                    raise
        else:
            console.print(f"… {message}")
            try:
                yield
            except BaseException:
                console.print(f"✗ {message}")
                raise
        console.print(f"[green]✓[/] {message} [dim]({time.perf_counter() - start:.1f}s)[/]")

    @contextlib.contextmanager
    def counted(self, message: str, total: int) -> Iterator[Callable[[int, int], None]]:
        """A step over ``total`` items: yields ``advance(done, total)``; a progress bar on a terminal,
        else a line at each quarter."""
        if not self.enabled:
            yield lambda done, total: None
            return
        start = time.perf_counter()
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            with Progress(TextColumn(message), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task(message, total=total)
                yield lambda done, _total: bar.update(task, completed=done)
        else:
            console.print(f"… {message}")
            marks = {max(1, total * quarter // 4) for quarter in (1, 2, 3)}
            yield lambda done, _total: console.print(f"  {done}/{_total}") if done in marks else None
        console.print(f"[green]✓[/] {message} [dim]({time.perf_counter() - start:.1f}s)[/]")




def quiet_tensorflow() -> None:
    """TensorFlow logs at C++ level on import; silence it before the first import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Collect what an exporter prints, from Python and from C++ (torch.onnx and tf2onnx are chatty).

    File descriptors 1 and 2 are pointed at a temp file for the duration, so native code's output
    is caught too; the text is available afterwards for --debug and error messages.
    """
    buffer = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved = []
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
        except OSError:  # no real descriptors (embedded interpreters): Python-level capture only
            pass
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", errors="replace"))
        if debug_enabled() and buffer.getvalue().strip():
            print(buffer.getvalue(), file=sys.stderr)


_debug = False


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def debug_enabled() -> bool:
    """--debug on the command line, or MODELPORT_DEBUG=1 in the environment."""
    return _debug or os.environ.get("MODELPORT_DEBUG") == "1"

