"""The commands info, convert and validate (demo: main.py). Later parts (edge, serve) add theirs beside them."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from .._console import Steps, console, quiet_tensorflow
from ..errors import ParityError, UsageError
from .app import app, print_json
from .options import (Atol, Dim, Factory, Imports, InputRange, InputShape, Inputs, Json, MlflowOut, RelativeTo, Report, Rtol, Samples,
                      Seed, Task, TrustPickle, Weights, open_options, parse_dims, parse_pairs)


# --------------------------------------------------------------------------------------------- info
@app.command()
def info(model: str = typer.Argument(..., help="Model file or folder, or package.module:factory."),
         weights: Weights = None, input_shape: InputShape = None, trust_pickle: TrustPickle = False,
         factory: Factory = None, task: Task = None, imports: Imports = None, as_json: Json = False):
    """Print a model's format, inputs, outputs, opset or producer, and size."""
    from .._render import render_info
    from ..formats.info import describe_model
    data = describe_model(model, **open_options(weights, input_shape, trust_pickle, imports, factory, task))
    if as_json:
        print_json(data)
    else:
        render_info(data)


# ------------------------------------------------------------------------------------------ convert
@app.command()
def convert(src: str = typer.Argument(..., help="Source model file/folder, or package.module:factory."),
            dst: Path = typer.Argument(..., help="Destination; its suffix tells the format unless --to is given."),
            to: Optional[str] = typer.Option(None, "--to", help="Target format (onnx, ...)."),
            via: Optional[str] = typer.Option(None, "--via", help="Formats to pass through, comma separated."),
            weights: Weights = None, input_shape: InputShape = None, inputs: Inputs = None,
            input_range: InputRange = None,
            opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset to target."),
            fixed_batch: bool = typer.Option(False, "--fixed-batch", help="Keep the batch dimension static."),
            no_check: bool = typer.Option(False, "--no-check", help="Skip the parity check."),
            optimize: bool = typer.Option(False, "--optimize", help="Clean up the ONNX model with onnxslim (one more hop, checked against the unoptimized model)."),
            keep_io_layout: Optional[str] = typer.Option(None, "--keep-io-layout", help="ONNX -> TensorFlow: nchw (ONNX's signature, the default) or nhwc (channels-last image inputs and outputs, no Transpose at all)."),
            as_code: bool = typer.Option(False, "--as-code", help="ONNX -> PyTorch: also write NAME.py (the model as editable torch.nn source) and NAME.pth (its state_dict) beside NAME.pt2."),
            dtype: Optional[str] = typer.Option(None, "--dtype", help="hf-onnx and OpenVINO targets: fp16 writes half precision weights (checked by the fp16 rule; hf-onnx also by generation); fp32 is the default."),
            atol: Atol = None, rtol: Rtol = None, relative_to: RelativeTo = None, samples: Samples = 3,
            seed: Seed = 0, dim: Dim = None, report: Report = None, trust_pickle: TrustPickle = False,
            mean: Optional[str] = typer.Option(None, "--mean", help="Caffe: mean.binaryproto or B,G,R values subtracted from the input."),
            scale: Optional[float] = typer.Option(None, "--scale", help="Caffe: factor applied after the mean subtraction."),
            channel_order: Optional[str] = typer.Option(None, "--channel-order", help="Caffe: BGR (Caffe's) or RGB: the order of the pixels you will feed."),
            bake_preprocessing: bool = typer.Option(False, "--bake-preprocessing", help="Caffe: put mean/scale/channel order in front of the graph as ops."),
            factory: Factory = None, task: Task = None, imports: Imports = None, mlflow: MlflowOut = None,
            as_json: Json = False):
    """Convert SRC to DST, then check numerical parity between them."""
    from ..convert import convert as run_convert
    from ..validate.inputs import load_feeds, parse_input_ranges
    from ..validate.report import check_report_path
    quiet_tensorflow()
    check_report_path(report)
    if mlflow is not None:
        from ..convert.pipeline import target_format_for
        if target_format_for(dst, to) != "onnx":
            raise UsageError("--mlflow writes the onnx flavor: it goes with an ONNX destination (--to onnx)",
                             hint="convert to ONNX with --mlflow; the other formats have no MLflow flavor modelport writes")
        _check_mlflow_destination(mlflow)
    feeds = (inputs if inputs.is_dir() else load_feeds(inputs)) if inputs else None
    ranges = parse_input_ranges(input_range)
    options = open_options(weights, input_shape, trust_pickle, imports, factory, task)
    source_options, edge_options = _preprocessing_options(src, mean, scale, channel_order, bake_preprocessing)
    recorded = edge_options.get("preprocessing")
    if recorded is not None and not edge_options.get("bake_preprocessing") and "" not in ranges:
        ranges[""] = recorded.model_range()  # the app feeds (pixels - mean) * scale: check on such values
    for name in ("factory", "task"):  # options only some formats take, passed to the source's
        if name in options:
            source_options[name] = options[name]
    if keep_io_layout is not None:
        from ..convert.onnx_tf.convert import check_io_layout
        edge_options["io_layout"] = check_io_layout(keep_io_layout)  # refused before any work
    if as_code:
        from ..convert.pipeline import target_format_for
        if target_format_for(dst, to) != "pytorch":
            raise UsageError("--as-code writes PyTorch source: it goes with a .pt2 destination (ONNX -> PyTorch)")
        edge_options["as_code"] = True
    if dtype is not None:
        from ..convert.pipeline import target_format_for
        from ..convert.registry import check_dtype
        edge_options["dtype"] = check_dtype(dtype, target_format_for(dst, to))
    _finish_even_when_parity_fails(lambda: run_convert(src, dst, to=to, via=via.split(",") if via else None, weights=options["weights"],
                             input_specs=options["input_specs"], trust_pickle=trust_pickle, opset=opset,
                             dynamic_batch=not fixed_batch, check=not no_check, atol=atol, rtol=rtol,
                             relative_to=relative_to, feeds=feeds, samples=samples, seed=seed, dims=parse_dims(dim),
                             source_options=source_options, edge_options=edge_options, optimize=optimize,
                             input_ranges=ranges, steps=Steps(enabled=True)),
                                  lambda result: _finish_convert(result, report, as_json, mlflow))


def _finish_even_when_parity_fails(run, finish) -> None:
    """Run a command that writes an artifact and checks it; its report and table are shown also when
    the check fails (the artifact was kept), before the failure's exit code."""
    try:
        result = run()
    except ParityError as error:
        if error.result is not None:
            finish(error.result)
        raise
    finish(result)


def _preprocessing_options(src, mean, scale, channel_order, bake) -> tuple[dict, dict]:
    """Input preprocessing (Caffe's): recorded in the ONNX metadata, and baked in as ops on request.

    When it is baked, the reference session applies the same preprocessing to its feeds, so that
    both models are fed the same raw pixels in the parity check.
    """
    if mean is None and scale is None and channel_order is None and not bake:
        return {}, {}
    from ..formats import detect
    from ..formats.caffe.preprocessing import make_preprocessing
    if "preprocessing" not in detect(src).open_options:
        raise UsageError("--mean/--scale/--channel-order/--bake-preprocessing apply to Caffe models")
    preprocessing = make_preprocessing(mean, scale, channel_order)
    if bake and preprocessing is None:
        raise UsageError("--bake-preprocessing needs --mean, --scale or --channel-order")
    return ({"preprocessing": preprocessing} if bake else {},
            {"preprocessing": preprocessing, "bake_preprocessing": bake})


def _check_mlflow_destination(folder: Path) -> None:
    """--mlflow DIR replaces an MLflow model folder whole: refuse any other existing path (exit 2)."""
    from ..formats.mlflow import is_mlflow_folder
    if folder.exists() and not is_mlflow_folder(folder) and not (folder.is_dir() and not any(folder.iterdir())):
        raise UsageError(f"--mlflow {str(folder)!r} exists and is not an MLflow model folder; it would be replaced",
                         hint="give a new folder (or an earlier MLflow model folder to replace)")


def _write_mlflow(folder: Optional[Path], onnx_path, passed: bool) -> Optional[str]:
    """The MLflow model folder around a written ONNX model, when asked for and it passed its check."""
    if folder is None or not passed:
        return None
    from ..formats import open_model
    from ..formats.mlflow import write_onnx_model
    with open_model(onnx_path, format="onnx") as session:
        write_onnx_model(Path(onnx_path), folder, session.inputs, session.outputs)
    console.print(f"MLflow model written to {escape(str(folder))} (onnx flavor; mlflow.pyfunc.load_model loads it)")
    return str(folder)


def _finish_convert(result, report: Optional[Path], as_json: bool, mlflow: Optional[Path] = None) -> None:
    from .._render import render_conversion
    from ..validate.report import write_report
    written = _write_mlflow(mlflow, result.destination, result.passed)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    checked = [(h.edge, h.report) for h in result.hops if h.report is not None]
    if report is not None and checked:
        write_report(report, checked, json_data=result.to_dict(),
                     title=f"modelport conversion {result.source} -> {result.destination}")
        console.print(f"report written to {escape(str(report))}")
    elif report is not None:
        console.print("[yellow]warning:[/] no report written: the parity check was skipped (--no-check)")
    if as_json:
        print_json(result.to_dict() | ({"mlflow": written} if written else {}))
    else:
        render_conversion(result)


# ----------------------------------------------------------------------------------------- validate
@app.command()
def validate(reference: str = typer.Argument(..., help="The model trusted to be right (file, folder or package.module:factory)."),
             candidate: str = typer.Argument(..., help="The model under test."),
             inputs: Inputs = None, input_range: InputRange = None, samples: Samples = 3, seed: Seed = 0,
             atol: Atol = None, rtol: Rtol = None, relative_to: RelativeTo = None,
             mean: Optional[str] = typer.Option(None, "--mean", help="With --inputs DIR: (pixels - mean) / std, one value or one per channel (default: the range the model expects, else ImageNet's)."),
             std: Optional[str] = typer.Option(None, "--std", help="See --mean."),
             precision: Optional[str] = typer.Option(None, "--precision", help="fp32, fp16, int8, uint8-weights or int4-weights (default: detected from the candidate)."),
             dim: Dim = None,
             input_layout: Optional[str] = typer.Option(None, "--input-layout", help="REFERENCE:CANDIDATE layouts, e.g. NCHW:NHWC."),
             output_map: Optional[List[str]] = typer.Option(None, "--output-map", help="REF_NAME=CAND_NAME[,...] to pair outputs."),
             localize: bool = typer.Option(False, "--localize", help="Name the first op whose output diverges."),
             report: Report = None, weights: Weights = None, input_shape: InputShape = None,
             trust_pickle: TrustPickle = False, factory: Factory = None, task: Task = None, imports: Imports = None,
             data: Optional[Path] = typer.Option(None, "--data", help="A labelled dataset: DIR/<class_name>/*.png|jpg, or an .npz with 'labels' and the inputs. Both models run over all of it: accuracy of each, agreement, per-class accuracy, the classes that flip."),
             data_output: Optional[str] = typer.Option(None, "--data-output", help="With --data: the classifier output to score (default: the first with a score per class)."),
             image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) --data/--inputs images are resized to; default: the input's own."),
             channel_order: str = typer.Option("RGB", "--channel-order", help="--data/--inputs images: RGB, or BGR for a model that takes its channels reversed (OpenCV, Caffe)."),
             as_json: Json = False):
    """Prove numerical parity between two models of any supported formats."""
    from .._render import render_validation
    from ..validate.api import validate as run_validate
    from ..validate.inputs import parse_input_ranges
    from ..validate.report import check_report_path, write_report
    quiet_tensorflow()
    check_report_path(report)
    result = run_validate(reference, candidate, inputs=inputs, input_ranges=parse_input_ranges(input_range),
                          mean=_floats("--mean", mean), std=_floats("--std", std),
                          samples=samples, seed=seed, atol=atol, rtol=rtol,
                          relative_to=relative_to, precision=precision, dims=parse_dims(dim), input_layout=input_layout,
                          output_map=parse_pairs(output_map, "--output-map") or None, localize=localize,
                          open_options=open_options(weights, input_shape, trust_pickle, imports, factory, task),
                          steps=Steps(enabled=True), data=data, data_output=data_output,
                          image_size=_image_size(image_size), channel_order=_channel_order(channel_order))
    if report is not None:
        write_report(report, result)
        console.print(f"report written to {escape(str(report))}")
    if as_json:
        print_json(result.to_dict())
    else:
        render_validation(result)
    if not result.passed:
        raise ParityError(result)


# --------------------------------------------------------------------------------------------- edge
edge_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="Package a model for where it runs, every file checked in its own runtime.")
app.add_typer(edge_app, name="edge")


# --------------------------------------------------------------------------------------------- quantize
@app.command()
def quantize(src: str = typer.Argument(..., help="Source model (ONNX, or any format the planner reaches ONNX from)."),
             dst: Path = typer.Argument(..., help="The quantized model, NAME.onnx."),
             mode: str = typer.Option(..., "--mode", help="int8 (static QDQ, calibrated), int8-dynamic (MatMul/Gemm models), fp16 or int4-weights (transformers' MatMuls)."),
             calibration: Optional[Path] = typer.Option(None, "--calibration", help="DATA.npz (arrays by input name, samples first), a folder of images, or of class folders; a quarter is held out for the check."),
             method: str = typer.Option("minmax", "--method", help="int8 calibration: minmax, entropy or percentile."),
             mean: Optional[str] = typer.Option(None, "--mean", help="Images: (pixels - mean) / std, one value or one per channel (default: the range the model expects, else ImageNet's)."),
             std: Optional[str] = typer.Option(None, "--std", help="See --mean."),
             image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) the images are resized to; default: the input's own."),
             keep_io_types: bool = typer.Option(True, "--keep-io-types/--no-keep-io-types", help="fp16: keep fp32 inputs and outputs (the default), or take and give float16."),
             auto_exclude: bool = typer.Option(False, "--auto-exclude", help="int8: when the check fails, quantize again with the nodes where the error enters kept in float (1, 2, 4, ... of them) until it passes; each try is reported."),
             report: Report = None, mlflow: MlflowOut = None, as_json: Json = False):
    """Quantize a model for servers (ONNX Runtime's tools) and check it against its source on held-out data."""
    from ..convert.quantize import quantize as run_quantize
    from ..validate.report import check_report_path
    quiet_tensorflow()
    check_report_path(report)
    if mlflow is not None:
        _check_mlflow_destination(mlflow)
    _finish_even_when_parity_fails(
        lambda: run_quantize(src, dst, mode=mode, calibration=calibration, method=method, mean=_floats("--mean", mean),
                             std=_floats("--std", std), image_size=_image_size(image_size),
                             keep_io_types=keep_io_types, auto_exclude=auto_exclude, steps=Steps(enabled=True)),
        lambda result: _finish_quantize(result, report, as_json, mlflow))


def _finish_quantize(result, report: Optional[Path], as_json: bool, mlflow: Optional[Path] = None) -> None:
    from .._render import render_quantize
    from ..validate.report import write_report
    written = _write_mlflow(mlflow, result.destination, result.passed)
    if report is not None and result.report is not None:
        write_report(report, result.report, json_data=result.to_dict(), title=f"modelport quantize {result.mode}")
        console.print(f"report written to {escape(str(report))}")
    if as_json:
        print_json(result.to_dict() | ({"mlflow": written} if written else {}))
    else:
        render_quantize(result)


@edge_app.command("tflite")
def edge_tflite(src: str = typer.Argument(..., help="Source model (any format the planner reaches a SavedModel from)."),
                out_dir: Path = typer.Argument(..., help="The bundle folder to write (replaced whole, atomically)."),
                quantize: str = typer.Option("fp32", "--quantize", help="Modes, comma separated: fp32, fp16, dynamic, int8, int16x8."),
                calibration: Optional[Path] = typer.Option(None, "--calibration", help=".npz of typical inputs by input name (batch first), or a folder of images: needed by int8 and int16x8, and the check's data."),
                image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) the calibration images are resized to; default: the input's own."),
                labels: Optional[Path] = typer.Option(None, "--labels", help="Class labels, one per line, packed into each file's metadata (TENSOR_AXIS_LABELS)."),
                mean: Optional[str] = typer.Option(None, "--mean", help="Image normalization the app applies, (x - mean) / std: one value or one per channel (e.g. 127.5)."),
                std: Optional[str] = typer.Option(None, "--std", help="See --mean (e.g. 127.5)."),
                description: str = typer.Option("", "--description", help="The model's description in the metadata."),
                int8_io: bool = typer.Option(False, "--int8-io", help="int8 (int16x8) files take and give integer tensors; their scale and zero point are in the manifest."),
                allow_flex: bool = typer.Option(False, "--allow-flex", help="Let ops without a TFLite builtin through as TensorFlow (Flex) ops; such files are written NOT validated (LiteRT in Python cannot run them)."),
                weights: Weights = None, input_shape: InputShape = None, trust_pickle: TrustPickle = False,
                dim: Dim = None, seed: Seed = 0, imports: Imports = None, as_json: Json = False):
    """Write a TFLite bundle: one file per quantization mode, each checked in LiteRT against SRC."""
    from ..edge.tflite import export_tflite, parse_modes
    quiet_tensorflow()
    parse_modes(quantize)  # refused before any work
    if calibration is not None and not calibration.exists():
        raise UsageError(f"no such calibration data: {str(calibration)!r}")
    size = _image_size(image_size)
    options = open_options(weights, input_shape, trust_pickle, imports)
    _report_edge(lambda: export_tflite(
        src, out_dir, quantize=quantize, calibration=calibration, labels=labels, image_size=size,
        mean=_floats("--mean", mean), std=_floats("--std", std), description=description, integer_io=int8_io,
        allow_flex=allow_flex, dims=parse_dims(dim),
        input_specs=options["input_specs"], weights=options["weights"], trust_pickle=trust_pickle, seed=seed,
        steps=Steps(enabled=True)), as_json)


def _report_edge(export, as_json: bool, title: str = "TFLite bundle", runtime: str = "LiteRT", after=None) -> None:
    """Run an edge export and show its bundle (table or --json), also when a file failed its check.
    ``after(result)``: more work on a bundle that passed, whose non-empty answers join the JSON."""
    from .._render import render_edge
    try:
        result = export()
    except ParityError as error:
        if error.result is not None:
            print_json(error.result.to_dict()) if as_json else render_edge(error.result, title, runtime)
        raise
    extra = {k: v for k, v in (after(result) if after else {}).items() if v}
    print_json(result.to_dict() | extra) if as_json else render_edge(result, title, runtime)


def _channel_order(text: str) -> str:
    order = text.upper()
    if order not in ("RGB", "BGR"):
        raise UsageError(f"--channel-order {text!r}: RGB or BGR")
    return order


def _image_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    """``--image-size 224`` or ``224,192`` as (H, W); UsageError otherwise."""
    size = _floats("--image-size", text)
    if size is None:
        return None
    if len(size) not in (1, 2) or any(v <= 0 or v != int(v) for v in size):
        raise UsageError(f"--image-size {text!r}: H,W or one size, in pixels")
    return int(size[0]), int(size[-1])


def _floats(flag: str, text: Optional[str]) -> Optional[list[float]]:
    """``127.5`` or ``0.485,0.456,0.406`` as floats; UsageError otherwise."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give numbers, comma separated (one, or one per channel)") from None
    if flag == "--std" and any(v == 0 for v in values):
        raise UsageError("--std 0 would divide by zero")
    return values


@edge_app.command("tfjs")
def edge_tfjs(src: str = typer.Argument(..., help="Source model (any format the planner reaches a SavedModel from)."),
              out_dir: Path = typer.Argument(..., help="The bundle folder to write (replaced whole, atomically)."),
              quantize: str = typer.Option("float32", "--quantize", help="Weight storage: float32, float16, uint16 or uint8."),
              inputs: Optional[Path] = typer.Option(None, "--inputs", help=".npz of typical inputs by input name (batch first), or a folder of images: the check's data (default: generated)."),
              image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) the --inputs images are resized to; default: the input's own."),
              labels: Optional[Path] = typer.Option(None, "--labels", help="Class labels, one per line, copied into the bundle for the page."),
              mean: Optional[str] = typer.Option(None, "--mean", help="Image normalization the page applies, (x - mean) / std: one value or one per channel."),
              std: Optional[str] = typer.Option(None, "--std", help="See --mean."),
              backend: str = typer.Option("wasm", "--backend", help="TF.js backend the check runs on: wasm (as browsers) or cpu."),
              weights: Weights = None, input_shape: InputShape = None, trust_pickle: TrustPickle = False,
              dim: Dim = None, seed: Seed = 0, imports: Imports = None, as_json: Json = False):
    """Write a TF.js graph-model bundle for browsers, checked in TF.js (Node) against SRC."""
    from ..edge.tfjs import export_tfjs, weight_mode
    quiet_tensorflow()
    weight_mode(quantize)  # refused before any work
    if inputs is not None and not inputs.exists():
        raise UsageError(f"no such input data: {str(inputs)!r}")
    size = _image_size(image_size)
    options = open_options(weights, input_shape, trust_pickle, imports)
    _report_edge(lambda: export_tfjs(
        src, out_dir, quantize=quantize, inputs=inputs, image_size=size, labels=labels,
        mean=_floats("--mean", mean), std=_floats("--std", std), backend=backend, dims=parse_dims(dim),
        input_specs=options["input_specs"],
        weights=options["weights"], trust_pickle=trust_pickle, seed=seed, steps=Steps(enabled=True)),
        as_json, "TF.js bundle", "TF.js")


@edge_app.command("ort")
def edge_ort(src: str = typer.Argument(..., help="Source model (any format the planner reaches ONNX from)."),
             out_dir: Path = typer.Argument(..., help="The bundle folder to write (replaced whole, atomically)."),
             inputs: Inputs = None, weights: Weights = None, input_shape: InputShape = None,
             trust_pickle: TrustPickle = False, seed: Seed = 0, imports: Imports = None, as_json: Json = False):
    """Write an ONNX Runtime Mobile bundle: model.ort and its required_operators.config, checked in ORT against SRC."""
    from ..edge.ort import export_ort
    from ..validate.inputs import load_feeds
    quiet_tensorflow()
    feeds = load_feeds(inputs) if inputs else None
    options = open_options(weights, input_shape, trust_pickle, imports)
    _report_edge(lambda: export_ort(
        src, out_dir, inputs=feeds, input_specs=options["input_specs"], weights=options["weights"],
        trust_pickle=trust_pickle, seed=seed, steps=Steps(enabled=True)), as_json, "ORT bundle", "ORT")


@edge_app.command("executorch")
def edge_executorch(src: str = typer.Argument(..., help="Source model (PyTorch, or any format the planner reaches PyTorch from: ONNX, Keras through ONNX)."),
                    out_dir: Path = typer.Argument(..., help="The bundle folder to write (replaced whole, atomically)."),
                    quantize: str = typer.Option("fp32", "--quantize", help="Modes, comma separated: fp32, int8 (XNNPACK's quantizer, calibrated)."),
                    calibration: Optional[Path] = typer.Option(None, "--calibration", help=".npz of typical inputs by input name (batch first), or a folder of images: needed by int8, and the check's data."),
                    image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) the calibration images are resized to; default: the input's own."),
                    mean: Optional[str] = typer.Option(None, "--mean", help="Normalization of calibration images, (x - mean) / std: one value or one per channel."),
                    std: Optional[str] = typer.Option(None, "--std", help="See --mean."),
                    max_batch: int = typer.Option(1, "--max-batch", help="Largest batch the programs take; their memory is planned for it (1: what a phone app feeds)."),
                    weights: Weights = None, input_shape: InputShape = None, trust_pickle: TrustPickle = False,
                    dim: Dim = None, seed: Seed = 0, imports: Imports = None, as_json: Json = False):
    """Write an ExecuTorch bundle: one .pte per mode (XNNPACK delegate), each checked in ExecuTorch's runtime against SRC."""
    from ..edge.executorch import export_executorch, parse_modes
    quiet_tensorflow()
    parse_modes(quantize)  # refused before any work
    if calibration is not None and not calibration.exists():
        raise UsageError(f"no such calibration data: {str(calibration)!r}")
    size = _image_size(image_size)
    options = open_options(weights, input_shape, trust_pickle, imports)
    _report_edge(lambda: export_executorch(
        src, out_dir, quantize=quantize, calibration=calibration, image_size=size, mean=_floats("--mean", mean),
        std=_floats("--std", std), max_batch=max_batch, dims=parse_dims(dim), input_specs=options["input_specs"],
        weights=options["weights"], trust_pickle=trust_pickle, seed=seed, steps=Steps(enabled=True)),
        as_json, "ExecuTorch bundle", "ExecuTorch")


@edge_app.command("openvino")
def edge_openvino(src: str = typer.Argument(..., help="Source model (ONNX, or any format the planner reaches ONNX from)."),
                  out_dir: Path = typer.Argument(..., help="The bundle folder to write (replaced whole, atomically)."),
                  quantize: str = typer.Option("fp32", "--quantize", help="Modes, comma separated: fp32, fp16 (half precision weights), int8 (NNCF, calibrated)."),
                  calibration: Optional[Path] = typer.Option(None, "--calibration", help=".npz of typical inputs by input name (batch first), or a folder of images (or of class folders): needed by int8, and the check's data."),
                  image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) the calibration images are resized to; default: the input's own."),
                  mean: Optional[str] = typer.Option(None, "--mean", help="Normalization of calibration images, (x - mean) / std: one value or one per channel."),
                  std: Optional[str] = typer.Option(None, "--std", help="See --mean."),
                  weights: Weights = None, input_shape: InputShape = None, trust_pickle: TrustPickle = False,
                  dim: Dim = None, seed: Seed = 0, imports: Imports = None, as_json: Json = False):
    """Write an OpenVINO bundle: one IR (.xml + .bin) per mode, each checked by OpenVINO's CPU plugin against SRC."""
    from ..edge.openvino import export_openvino, parse_modes
    quiet_tensorflow()
    parse_modes(quantize)  # refused before any work
    if calibration is not None and not calibration.exists():
        raise UsageError(f"no such calibration data: {str(calibration)!r}")
    size = _image_size(image_size)
    options = open_options(weights, input_shape, trust_pickle, imports)
    _report_edge(lambda: export_openvino(
        src, out_dir, quantize=quantize, calibration=calibration, image_size=size, mean=_floats("--mean", mean),
        std=_floats("--std", std), dims=parse_dims(dim), input_specs=options["input_specs"],
        weights=options["weights"], trust_pickle=trust_pickle, seed=seed, steps=Steps(enabled=True)),
        as_json, "OpenVINO bundle", "OpenVINO f32")


@edge_app.command("web")
def edge_web(src: str = typer.Argument(..., help="Source model (ONNX, or any format the planner reaches ONNX from)."),
             out_dir: Path = typer.Argument(..., help="The bundle folder to write (replaced whole, atomically)."),
             quantize: str = typer.Option("fp32", "--quantize", help="Weights: fp32, fp16 (half the download) or uint8 (a quarter; activations quantized on the fly)."),
             inputs: Optional[Path] = typer.Option(None, "--inputs", help=".npz of typical inputs by input name (batch first), or a folder of images: the check's data (default: generated)."),
             image_size: Optional[str] = typer.Option(None, "--image-size", help="H,W (or one size) the --inputs images are resized to; default: the input's own."),
             labels: Optional[Path] = typer.Option(None, "--labels", help="Class labels, one per line, copied into the bundle for the page."),
             mean: Optional[str] = typer.Option(None, "--mean", help="Image normalization the page applies, (x - mean) / std: one value or one per channel."),
             std: Optional[str] = typer.Option(None, "--std", help="See --mean."),
             weights: Weights = None, input_shape: InputShape = None, trust_pickle: TrustPickle = False,
             dim: Dim = None, seed: Seed = 0, imports: Imports = None, mlflow: MlflowOut = None,
             as_json: Json = False):
    """Write an ONNX Runtime Web bundle for browsers (model.onnx, ORT Web's wasm files, a page), checked in ORT Web (Node) against SRC."""
    from ..edge.web import export_web, weight_mode
    quiet_tensorflow()
    weight_mode(quantize)  # refused before any work
    if mlflow is not None:
        _check_mlflow_destination(mlflow)
    if inputs is not None and not inputs.exists():
        raise UsageError(f"no such input data: {str(inputs)!r}")
    size = _image_size(image_size)
    options = open_options(weights, input_shape, trust_pickle, imports)
    _report_edge(lambda: export_web(
        src, out_dir, quantize=quantize, inputs=inputs, image_size=size, labels=labels, mean=_floats("--mean", mean),
        std=_floats("--std", std), dims=parse_dims(dim), input_specs=options["input_specs"],
        weights=options["weights"], trust_pickle=trust_pickle, seed=seed, steps=Steps(enabled=True)),
        as_json, "ORT Web bundle", "ORT Web (wasm, Node)",
        after=lambda result: {"mlflow": _write_mlflow(mlflow, out_dir / "model.onnx", result.passed)})


# ----------------------------------------------------------------------------------------- pipeline
@app.command()
def pipeline(file: Optional[Path] = typer.Argument(None, help="The pipeline file (YAML): output, models, targets."),
             jobs: Optional[int] = typer.Option(None, "--jobs", help="Jobs run at the same time, each a process of its own (default 1; on Ray, the cluster's CPUs)."),
             timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds a job may take before it is stopped (counted as failed)."),
             force: bool = typer.Option(False, "--force", help="Run every chosen job again, also those unchanged since the last run."),
             only: Optional[List[str]] = typer.Option(None, "--only", help="Only this model's jobs (repeatable)."),
             ray: Optional[str] = typer.Option(None, "--ray", help="Run the jobs as tasks on the Ray cluster whose head is at HOST:PORT (or auto); needs modelport[ray]."),
             schema: bool = typer.Option(False, "--schema", help="Print the pipeline file's JSON Schema and exit."),
             as_json: Json = False):
    """Run many models x many targets: each job the modelport command it stands for, cached and resumable; results.json and index.html in the output folder."""
    import json

    from ..pipeline import SCHEMA, run_pipeline
    if schema:
        print(json.dumps(SCHEMA, indent=1))
        return
    if file is None:
        raise UsageError("give the pipeline file (modelport pipeline PIPELINE.yaml)",
                         hint="modelport pipeline --schema prints what it takes")
    if (jobs is not None and jobs < 1) or (timeout is not None and timeout <= 0):
        raise UsageError("--jobs must be at least 1 and --timeout positive")
    try:
        summary = run_pipeline(file, jobs=jobs, timeout=timeout, force=force, only=only, ray=ray,
                               progress=lambda line: console.print(escape(line)))
    except KeyboardInterrupt:
        console.print("interrupted: the jobs that finished are recorded, the running ones were stopped (their "
                      "outputs not written); run the same command again to resume")
        raise typer.Exit(130) from None
    if as_json:
        print_json(summary)
    else:
        from .._render import render_pipeline
        render_pipeline(summary)
    counts = summary["counts"]
    if counts["fail"] or counts["error"] or counts["timeout"]:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------------- serve
@app.command()
def serve(models: List[str] = typer.Argument(..., help="Model files/folders, or ONE repository folder with Triton's layout (REPO/<name>/<version>/model.onnx, optional config.pbtxt)."),
          host: str = typer.Option("127.0.0.1", "--host", envvar="MODELPORT_HOST", help="Address to listen on (0.0.0.0 in a container)."),
          http_port: int = typer.Option(8000, "--http-port", envvar="MODELPORT_HTTP_PORT", help="REST port (OIP v2 and TF Serving); 0 picks a free one."),
          grpc_port: int = typer.Option(8001, "--grpc-port", envvar="MODELPORT_GRPC_PORT", help="gRPC port (OIP v2); 0 picks a free one."),
          max_batch_size: int = typer.Option(8, "--max-batch-size", help="Dynamic batching: most rows merged into one run (a model's config overrides it); 0 turns batching off."),
          batch_delay_ms: float = typer.Option(0.0, "--batch-delay-ms", help="Dynamic batching: how long a short batch waits for more requests (0: run at once, merge what queued meanwhile)."),
          max_queue_size: int = typer.Option(256, "--max-queue-size", help="Requests waiting per model before new ones get 503."),
          instances: int = typer.Option(1, "--instances", help="Runs of a model at the same time (one Session each)."),
          threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads per Session (0: ORT's default)."),
          request_timeout_s: float = typer.Option(60.0, "--request-timeout-s", help="A request not answered by then gets 504 / DEADLINE_EXCEEDED."),
          max_body_mb: float = typer.Option(64.0, "--max-body-mb", help="Largest request body (REST) or message (gRPC) taken."),
          no_model_control: bool = typer.Option(False, "--no-model-control", help="Refuse repository load/unload requests."),
          allow_client_shm: bool = typer.Option(False, "--allow-client-shm", help="Let clients on this machine register system shared memory regions (/dev/shm, their own user's) and pass tensors through them (Triton's shared memory extension)."),
          cache_size_mb: float = typer.Option(0.0, "--cache-size-mb", help="Response cache for the models whose config says response_cache { enable: true }: identical requests answered from memory, least recently used out first (0: no cache)."),
          drain_timeout_s: float = typer.Option(30.0, "--drain-timeout-s", help="On SIGTERM, how long accepted requests may take to finish."),
          model_name: Optional[str] = typer.Option(None, "--model-name", help="Name of the one model given as a path (default: its file name); KServe passes the InferenceService's."),
          metrics_port: Optional[int] = typer.Option(None, "--metrics-port", help="Also serve Prometheus /metrics on this port (it is always on the HTTP port)."),
          log_format: str = typer.Option("text", "--log-format", help="text, or json: one JSON object per line, with an access line per request."),
          access_log: bool = typer.Option(False, "--access-log", help="One line per request (protocol, target, model, status, latency, request id).")):
    """Serve models over OIP v2 REST + gRPC (Triton's clients) and TF Serving REST, with dynamic batching."""
    import asyncio

    from ..serve.repository import ServeOptions
    from ..serve.server import Listen, serve as run_server
    for flag, value in (("--max-batch-size", max_batch_size), ("--max-queue-size", max_queue_size - 1),
                        ("--instances", instances - 1), ("--threads", threads), ("--batch-delay-ms", batch_delay_ms),
                        ("--http-port", http_port), ("--grpc-port", grpc_port)):
        if value < 0:
            raise UsageError(f"{flag} must not be negative" if flag not in ("--max-queue-size", "--instances")
                             else f"{flag} must be at least 1")
    if cache_size_mb < 0:
        raise UsageError("--cache-size-mb must not be negative")
    if request_timeout_s <= 0 or max_body_mb <= 0 or drain_timeout_s < 0:
        raise UsageError("--request-timeout-s and --max-body-mb must be positive, --drain-timeout-s not negative")
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format is text or json, not {log_format!r}")
    if metrics_port is not None and metrics_port < 0:
        raise UsageError("--metrics-port must not be negative")
    from ..serve import logs
    logs.configure(log_format, access=access_log or log_format == "json")
    report = logs.LOG.info if log_format == "json" else (lambda line: console.print(escape(line)))
    quiet_tensorflow()
    options = ServeOptions(max_batch_size=max_batch_size, batch_delay_ms=batch_delay_ms, max_queue_size=max_queue_size,
                           instances=instances, threads=threads, request_timeout_s=request_timeout_s,
                           max_body_bytes=int(max_body_mb * (1 << 20)), model_control=not no_model_control,
                           model_name=model_name, cache_bytes=int(cache_size_mb * (1 << 20)),
                           allow_client_shm=allow_client_shm)
    listen = Listen(host=host, http_port=http_port, grpc_port=grpc_port, drain_timeout_s=drain_timeout_s,
                    metrics_port=metrics_port)
    asyncio.run(run_server(models, options, listen, report=report))
