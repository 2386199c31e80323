"""``main``: the one place where errors become exit codes and messages.

The demo command lives here rather than in commands.py: it runs the other commands through
``main``, and keeping it beside ``main`` keeps the modules free of import cycles.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import typer
from rich.markup import escape

from .._console import console, debug_enabled, set_debug
from .._signals import Terminated, raise_if_interrupted, received_interrupt, remembered_interrupts
from ..errors import InternalError, ModelportError, ParityError
from . import commands  # noqa: F401  (registers the commands on app)
from .app import app, print_json


@app.command()
def demo(workdir: Path = typer.Option(Path("modelport-demo"), "--workdir", help="Where the demo writes its models.")):
    """Build small models, then run info, convert and the parity check on them, end to end."""
    from ..demo import run_demo
    run_demo(workdir, run_command=main)


def _click_classes():
    """(ClickException, Exit, Abort) classes of typer's vendored click and of click itself: typer
    0.29 raises its own copies, earlier versions click's."""
    exceptions, exits, aborts = [], [typer.Exit], [typer.Abort]
    try:
        from typer._click import exceptions as vendored
        exceptions.append(vendored.ClickException)
    except ImportError:
        pass
    try:
        import click
        exceptions.append(click.ClickException)
        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(exceptions), tuple(exits), tuple(aborts)


def _report_usage_error(error, as_json: bool) -> int:
    """A command-line mistake: the usage line and what is wrong on stderr (and as JSON), exit 2."""
    import io
    buffer = io.StringIO()
    error.show(file=buffer)
    text = buffer.getvalue().rstrip()
    if as_json:
        message = getattr(error, "format_message", lambda: str(error))()
        print_json({"error": {"type": "UsageError", "message": message.strip().splitlines()[-1] if message.strip()
                              else "usage error", "hint": "modelport --help", "exit_code": 2}})
    console.print(escape(text), highlight=False)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    with remembered_interrupts():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    click_errors, exits, aborts = _click_classes()
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    set_debug("--debug" in args)
    debug = debug_enabled()
    as_json = "--json" in args
    try:
        # Typer turns Ctrl-C into an exit code (130) that main() returns when not standalone.
        code = command.main(args=args, prog_name="modelport", standalone_mode=False)
        raise_if_interrupted()  # a library that swallowed the interrupt does not turn it into success
        if code == 130:
            console.print("interrupted; nothing was written")
        return code if isinstance(code, int) else 0
    except exits as done:
        return done.exit_code
    except click_errors as error:
        return _report_usage_error(error, as_json)
    except aborts:
        console.print("aborted")
        return 130
    except (KeyboardInterrupt, Terminated) as interrupt:
        return _report_interrupt(type(interrupt))
    except Exception as error:
        if received_interrupt() is not None:  # the error is the interrupt's fallout, swallowed on the way
            return _report_interrupt(received_interrupt())
        return _report_error(error, debug, as_json)


def _report_interrupt(kind: type[BaseException]) -> int:
    if kind is Terminated:
        console.print("terminated; nothing was written")
        return 143
    console.print("interrupted; nothing was written")
    return 130


def _report_error(error: Exception, debug: bool, as_json: bool) -> int:
    if isinstance(error, ModelportError):
        if debug:
            traceback.print_exc()
        if as_json and not isinstance(error, ParityError):  # a parity failure printed its result
            print_json({"error": {"type": type(error).__name__, "message": error.message, "hint": error.hint,
                                  "exit_code": error.exit_code}})
        label = "parity check failed" if isinstance(error, ParityError) else "error"
        console.print(f"[red]{label}:[/] {escape(error.message)}")
        if error.hint:
            console.print(f"[dim]hint:[/] {escape(error.hint)}")
        return error.exit_code
    # anything else is a bug of modelport itself
    if debug:
        traceback.print_exc()
    bug = InternalError(f"{type(error).__name__}: {error}")
    if as_json:
        print_json({"error": {"type": "InternalError", "message": bug.message, "hint": "rerun with --debug",
                              "exit_code": bug.exit_code}})
    console.print(f"[red]internal error:[/] {escape(bug.message)}\n"
                  "this is a bug of modelport; rerun with --debug and report the traceback")
    return bug.exit_code
