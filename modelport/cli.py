"""The ``modelport`` command line: info, convert, validate, demo.

Nothing here imports a framework at start-up; each command imports what it needs when it runs.
Exit codes: 0 success, 1 parity check failed (artifact kept), 2 bad input (nothing written),
3 a bug of modelport.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from . import __version__
from ._console import Steps, console, debug_enabled, quiet_tensorflow, set_debug
from .errors import InternalError, ModelportError, ParityError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Convert models between PyTorch, TensorFlow/Keras, TFLite, Caffe and ONNX, and prove the numbers match.")


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
         weights: Optional[Path] = typer.Option(None, help="state_dict for a PyTorch factory, or the .caffemodel of a prototxt."),
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
            weights: Optional[Path] = typer.Option(None, help="state_dict (.pt) for a PyTorch factory (loaded with weights_only=True), or the .caffemodel of a prototxt."),
            input_shape: Optional[List[str]] = typer.Option(None, "--input-shape", help="NAME:1,3,224,224[:dtype]; repeat per input."),
            inputs: Optional[Path] = typer.Option(None, "--inputs", help=".npz of feeds for the parity check."),
            opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset to target."),
            fixed_batch: bool = typer.Option(False, "--fixed-batch", help="Keep the batch dimension static."),
            no_check: bool = typer.Option(False, "--no-check", help="Skip the parity check."),
            atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default 1e-4)."),
            rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default 1e-3)."),
            relative_to: Optional[str] = typer.Option(None, "--relative-to", help="rtol multiplies each |value| (element, default) or the output's max |value| (scale)."),
            samples: int = typer.Option(3, "--samples", min=1, help="Generated samples per batch size."),
            seed: int = typer.Option(0, "--seed", help="Seed of the generated feeds."),
            dim: Optional[List[str]] = typer.Option(None, "--dim", help="NAME=VALUE for a dynamic dim of input NAME (not the batch)."),
            report: Optional[Path] = typer.Option(None, "--report", help="Write the parity report (.json or .html)."),
            trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow loading a pickled nn.Module (runs its code)."),
            mean: Optional[str] = typer.Option(None, "--mean", help="Caffe: mean.binaryproto or B,G,R values subtracted from the input."),
            scale: Optional[float] = typer.Option(None, "--scale", help="Caffe: factor applied after the mean subtraction."),
            channel_order: Optional[str] = typer.Option(None, "--channel-order", help="Caffe: BGR (Caffe's) or RGB: the order of the pixels you will feed."),
            bake_preprocessing: bool = typer.Option(False, "--bake-preprocessing", help="Caffe: put mean/scale/channel order in front of the graph as ops."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON result on stdout.")):
    """Convert SRC to DST, then check numerical parity between them."""
    from .convert import convert as run_convert
    from .formats.pytorch import parse_input_specs
    from .validate.inputs import load_feeds
    quiet_tensorflow()
    from .validate.report import check_report_path
    check_report_path(report)
    feeds = load_feeds(inputs) if inputs else None
    source_options, edge_options = _preprocessing_options(src, mean, scale, channel_order, bake_preprocessing)
    steps = Steps(enabled=True)
    try:
        result = run_convert(src, dst, to=to, via=via.split(",") if via else None, weights=weights,
                             input_specs=parse_input_specs(input_shape), trust_pickle=trust_pickle, opset=opset,
                             dynamic_batch=not fixed_batch, check=not no_check, atol=atol, rtol=rtol,
                             relative_to=relative_to,
                             feeds=feeds, samples=samples, seed=seed, dims=_dims(dim), source_options=source_options,
                             edge_options=edge_options, steps=steps)
    except ParityError as error:
        if error.result is not None:
            _finish_convert(error.result, report, as_json)
        raise
    _finish_convert(result, report, as_json)


def _preprocessing_options(src, mean, scale, channel_order, bake) -> tuple[dict, dict]:
    """Caffe's input preprocessing: recorded in the ONNX metadata, and baked in as ops on request.

    When it is baked, the reference session applies the same preprocessing to its feeds, so that
    both models are fed the same raw pixels in the parity check.
    """
    if mean is None and scale is None and channel_order is None and not bake:
        return {}, {}
    from .formats import detect
    from .convert.caffe.preprocessing import make_preprocessing
    if detect(src).name != "caffe":
        raise UsageError("--mean/--scale/--channel-order/--bake-preprocessing apply to Caffe models")
    preprocessing = make_preprocessing(mean, scale, channel_order)
    if bake and preprocessing is None:
        raise UsageError("--bake-preprocessing needs --mean, --scale or --channel-order")
    return ({"preprocessing": preprocessing} if bake else {},
            {"preprocessing": preprocessing, "bake_preprocessing": bake})


def _finish_convert(result, report: Optional[Path], as_json: bool) -> None:
    from ._render import render_conversion
    from .validate.report import write_report
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    checked = [h.report for h in result.hops if h.report is not None]
    if report is not None and checked:
        write_report(report, checked[-1], json_data=result.to_dict(),
                     title=f"modelport conversion {result.source} -> {result.destination}")
        console.print(f"report written to {escape(str(report))}")
    elif report is not None:
        console.print("[yellow]warning:[/] no report written: the parity check was skipped (--no-check)")
    if as_json:
        _print_json(result.to_dict())
    else:
        render_conversion(result)


# ----------------------------------------------------------------------------------------- validate
@app.command()
def validate(reference: str = typer.Argument(..., help="The model trusted to be right (file, folder or package.module:factory)."),
             candidate: str = typer.Argument(..., help="The model under test."),
             inputs: Optional[Path] = typer.Option(None, "--inputs", help=".npz of feeds, by input name."),
             samples: int = typer.Option(3, "--samples", min=1, help="Generated samples per batch size."),
             seed: int = typer.Option(0, "--seed", help="Seed of the generated feeds."),
             atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default: by precision)."),
             rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default: by precision)."),
             relative_to: Optional[str] = typer.Option(None, "--relative-to", help="rtol multiplies each |value| (element) or the output's max |value| (scale); default by precision."),
             precision: Optional[str] = typer.Option(None, "--precision", help="fp32, fp16, int8 or uint8-weights (default: detected from the candidate)."),
             dim: Optional[List[str]] = typer.Option(None, "--dim", help="NAME=VALUE for a dynamic dim of input NAME (not the batch)."),
             input_layout: Optional[str] = typer.Option(None, "--input-layout", help="REFERENCE:CANDIDATE layouts, e.g. NCHW:NHWC."),
             output_map: Optional[List[str]] = typer.Option(None, "--output-map", help="REF_NAME=CAND_NAME[,...] to pair outputs."),
             localize: bool = typer.Option(False, "--localize", help="Name the first op whose output diverges."),
             report: Optional[Path] = typer.Option(None, "--report", help="Write the report (.json or .html)."),
             weights: Optional[Path] = typer.Option(None, help="state_dict for a PyTorch factory, or the .caffemodel of a prototxt."),
             input_shape: Optional[List[str]] = typer.Option(None, "--input-shape", help="NAME:1,3,224,224[:dtype] for PyTorch models."),
             trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow loading a pickled nn.Module (runs its code)."),
             as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout.")):
    """Prove numerical parity between two models of any supported formats."""
    from ._render import render_validation
    from .formats.pytorch import parse_input_specs
    from .validate.api import parse_pairs
    from .validate.api import validate as run_validate
    from .validate.report import check_report_path, write_report
    quiet_tensorflow()
    check_report_path(report)
    result = run_validate(reference, candidate, inputs=inputs, samples=samples, seed=seed, atol=atol, rtol=rtol,
                          relative_to=relative_to, precision=precision, dims=_dims(dim), input_layout=input_layout,
                          output_map=parse_pairs(output_map, "--output-map") or None, localize=localize,
                          open_options={"weights": weights, "input_specs": parse_input_specs(input_shape),
                                        "trust_pickle": trust_pickle}, steps=Steps(enabled=True))
    if report is not None:
        write_report(report, result)
        console.print(f"report written to {escape(str(report))}")
    if as_json:
        _print_json(result.to_dict())
    else:
        render_validation(result)
    if not result.passed:
        raise ParityError(result)


def _dims(texts: Optional[List[str]]) -> dict[str, int]:
    """--dim NAME=SIZE (repeatable, or comma separated) -> {NAME: SIZE}."""
    from .validate.api import parse_pairs
    dims = {}
    for name, value in parse_pairs(texts, "--dim").items():
        try:
            dims[name] = int(value)
        except ValueError:
            raise UsageError(f"--dim {name}={value}: the size must be an integer") from None
    return dims


# --------------------------------------------------------------------------------------------- demo
@app.command()
def demo(workdir: Path = typer.Option(Path("modelport-demo"), "--workdir", help="Where the demo writes its models.")):
    """Build small models, then run info, convert and the parity check on them, end to end."""
    from .demo import run_demo
    run_demo(workdir)


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
            console.print("interrupted; nothing was written")
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
        if "--json" in args and not isinstance(error, ParityError):  # a parity failure printed its result
            _print_json({"error": {"type": type(error).__name__, "message": error.message, "hint": error.hint,
                                   "exit_code": error.exit_code}})
        label = "parity check failed" if isinstance(error, ParityError) else "error"
        console.print(f"[red]{label}:[/] {escape(error.message)}")
        if error.hint:
            console.print(f"[dim]hint:[/] {escape(error.hint)}")
        return error.exit_code
    except Exception as error:  # a bug of modelport itself
        if debug:
            traceback.print_exc()
        bug = InternalError(f"{type(error).__name__}: {error}")
        console.print(f"[red]internal error:[/] {escape(bug.message)}\n"
                      "this is a bug of modelport; rerun with --debug and report the traceback")
        return bug.exit_code


if __name__ == "__main__":
    sys.exit(main())
