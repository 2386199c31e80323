"""The ``modelport`` command line: info, convert, demo.

Nothing here imports a framework at start-up; each command imports what it needs when it runs.
Exit codes: 0 success, 1 parity check failed (artifact kept), 2 bad input (nothing written),
3 a bug of modelport.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from . import __version__
from ._console import Steps, console, debug_enabled, quiet_tensorflow, set_debug
from .errors import InternalError, ModelportError, ParityError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Convert models between PyTorch, TensorFlow/Keras, TFLite and ONNX, and prove the numbers match.")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    # --debug is read by main() before parsing; it is declared here so that --help lists it.
    if version:
        typer.echo(f"modelport {__version__}")
        raise typer.Exit(0)


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------------------------- info
@app.command()
def info(model: str = typer.Argument(..., help="Model file or folder, or package.module:factory."),
         weights: Optional[Path] = typer.Option(None, help="state_dict for a PyTorch factory."),
         input_shape: Optional[List[str]] = typer.Option(None, "--input-shape", help="NAME:1,3,224,224[:dtype], for PyTorch models."),
         trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow loading a pickled nn.Module (runs its code)."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")):
    """Print a model's format, inputs, outputs, opset or producer, and size."""
    from ._render import render_info
    from .formats.info import describe_model
    data = describe_model(model, weights=weights, input_shapes=input_shape, trust_pickle=trust_pickle)
    if as_json:
        _print_json(data)
    else:
        render_info(data)


# ------------------------------------------------------------------------------------------ convert
@app.command()
def convert(src: str = typer.Argument(..., help="Source model file/folder, or package.module:factory."),
            dst: Path = typer.Argument(..., help="Destination; its suffix tells the format unless --to is given."),
            to: Optional[str] = typer.Option(None, "--to", help="Target format (onnx, ...)."),
            via: Optional[str] = typer.Option(None, "--via", help="Formats to pass through, comma separated."),
            weights: Optional[Path] = typer.Option(None, help="state_dict (.pt) for a PyTorch factory; loaded with weights_only=True."),
            input_shape: Optional[List[str]] = typer.Option(None, "--input-shape", help="NAME:1,3,224,224[:dtype]; repeat per input."),
            inputs: Optional[Path] = typer.Option(None, "--inputs", help=".npz of feeds for the parity check."),
            opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset to target."),
            fixed_batch: bool = typer.Option(False, "--fixed-batch", help="Keep the batch dimension static."),
            no_check: bool = typer.Option(False, "--no-check", help="Skip the parity check."),
            atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default 1e-4)."),
            rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default 1e-3)."),
            samples: int = typer.Option(3, "--samples", min=1, help="Generated samples per batch size."),
            seed: int = typer.Option(0, "--seed", help="Seed of the generated feeds."),
            report: Optional[Path] = typer.Option(None, "--report", help="Write the parity report (.json)."),
            trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow loading a pickled nn.Module (runs its code)."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON result on stdout.")):
    """Convert SRC to DST, then check numerical parity between them."""
    from .convert import convert as run_convert
    from .formats.pytorch import parse_input_specs
    from .validate.inputs import load_feeds
    quiet_tensorflow()
    if report is not None and report.suffix.lower() not in (".json",):
        raise _usage(f"--report {str(report)!r}: only .json reports are written so far")
    feeds = load_feeds(inputs) if inputs else None
    steps = Steps(enabled=True)
    try:
        result = run_convert(src, dst, to=to, via=via.split(",") if via else None, weights=weights,
                             input_specs=parse_input_specs(input_shape), trust_pickle=trust_pickle, opset=opset,
                             dynamic_batch=not fixed_batch, check=not no_check, atol=atol, rtol=rtol,
                             feeds=feeds, samples=samples, seed=seed, steps=steps)
    except ParityError as error:
        if error.result is not None:
            _finish_convert(error.result, report, as_json)
        raise
    _finish_convert(result, report, as_json)


def _finish_convert(result, report: Optional[Path], as_json: bool) -> None:
    from ._atomic import atomic_output
    from ._render import render_conversion
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if report is not None:
        with atomic_output(report) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
    if as_json:
        _print_json(result.to_dict())
    else:
        render_conversion(result)


# --------------------------------------------------------------------------------------------- demo
@app.command()
def demo(workdir: Path = typer.Option(Path("modelport-demo"), "--workdir", help="Where the demo writes its models.")):
    """Build small models, then run info, convert and the parity check on them, end to end."""
    from .demo import run_demo
    run_demo(workdir)


def _usage(message: str):
    from .errors import UsageError
    return UsageError(message)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    import click
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    set_debug("--debug" in args)
    debug = debug_enabled()
    try:
        # Typer turns Ctrl-C into an exit code (130) that main() returns when not standalone.
        code = command.main(args=args, prog_name="modelport", standalone_mode=False)
        if code == 130:
            console.print("interrupted; no output was written")
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return 2
    except click.exceptions.Abort:
        console.print("aborted")
        return 130
    except KeyboardInterrupt:
        console.print("interrupted; nothing was written")
        return 130
    except ModelportError as error:
        if debug:
            traceback.print_exc()
        label = "parity check failed" if isinstance(error, ParityError) else "error"
        console.print(f"[red]{label}:[/] {escape(error.message)}")
        if error.hint:
            console.print(f"[dim]hint:[/] {escape(error.hint)}")
        return error.exit_code
    except Exception as error:  # a bug of modelport itself
        traceback.print_exc() if debug else None
        bug = InternalError(f"{type(error).__name__}: {error}")
        console.print(f"[red]internal error:[/] {escape(bug.message)}\n"
                      "this is a bug of modelport; rerun with --debug and report the traceback")
        return bug.exit_code


if __name__ == "__main__":
    sys.exit(main())
