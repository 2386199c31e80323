"""The Typer application and its root options; commands register on ``app`` (commands.py)."""
from __future__ import annotations

import json
import sys

import typer
from .. import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Convert models between PyTorch, TensorFlow/Keras, TFLite, Caffe and ONNX, and prove the numbers match.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"modelport {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
          version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                       callback=_print_version)):
    # --debug is read by main() before parsing; it is declared here so that --help lists it.
    pass


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
