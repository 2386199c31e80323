"""Command-line options shared by several commands, declared once.

Each is an ``Annotated`` type: a command lists ``atol: Atol = None`` and gets the same flag, help
and default as every other command that takes it.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from ..errors import UsageError

# -- the model being opened ------------------------------------------------------------------------
Weights = Annotated[Optional[Path], typer.Option(
    "--weights", help="state_dict (.pt) for a PyTorch factory (loaded with weights_only=True), the .caffemodel of a prototxt, the .params of an MXNet symbol, or a Flax msgpack file / Orbax folder.")]
InputShape = Annotated[Optional[List[str]], typer.Option(
    "--input-shape", help="NAME:1,3,224,224[:dtype] for a PyTorch, JAX or MXNet input; repeat per input.")]
TrustPickle = Annotated[bool, typer.Option(
    "--trust-pickle", help="Allow loading a pickled nn.Module (runs its code).")]
Factory = Annotated[Optional[str], typer.Option(
    "--factory", help="package.module:LitModel, the class (or a function building the model) of a Lightning .ckpt.")]
Task = Annotated[Optional[str], typer.Option(
    "--task", help="Hugging Face model folder: the head to load (feature-extraction, text-classification, text-generation, image-classification, ...); default: the config's architecture.")]
Imports = Annotated[Optional[List[str]], typer.Option(
    "--import", help="Import MODULE first (custom Keras layers, registered ops or pytree nodes); repeatable.")]

# -- the parity check ------------------------------------------------------------------------------
Inputs = Annotated[Optional[Path], typer.Option("--inputs", help=".npz of feeds by input name, or a folder of images (one image input; normalized to the range the model expects, else ImageNet's), for the parity check.")]
InputRange = Annotated[Optional[List[str]], typer.Option(
    "--input-range", help="LO,HI (every float input) or NAME:LO,HI: the values generated feeds are drawn from, where the model does not say (e.g. 0,255 for raw pixels); repeatable.")]
Samples = Annotated[int, typer.Option("--samples", min=1, help="Generated samples per batch size.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the generated feeds.")]
Atol = Annotated[Optional[float], typer.Option(
    "--atol", help="Absolute tolerance (default: by the candidate's precision; see docs/tolerances).")]
Rtol = Annotated[Optional[float], typer.Option(
    "--rtol", help="Relative tolerance (default: by the candidate's precision), times the output's max |value| unless --relative-to element.")]
RelativeTo = Annotated[Optional[str], typer.Option(
    "--relative-to", help="rtol multiplies each |value| (element) or the output's max |value| (scale); default by precision.")]
Dim = Annotated[Optional[List[str]], typer.Option(
    "--dim", help="NAME=SIZE for a dynamic dim (by ONNX dim name or input name), not the batch.")]
Report = Annotated[Optional[Path], typer.Option("--report", help="Write the parity report (.json or .html).")]
MlflowOut = Annotated[Optional[Path], typer.Option("--mlflow", help="Also write the ONNX result as an MLflow model folder here (onnx + python_function flavors, signature, requirements.txt): mlflow.pyfunc.load_model loads it.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON result on stdout (progress stays on stderr).")]


def open_options(weights: Optional[Path], input_shape: Optional[List[str]], trust_pickle: bool,
                 imports: Optional[List[str]] = None, factory: Optional[str] = None, task: Optional[str] = None) -> dict:
    """The options every command passes to the Session of its model (each format takes its own),
    after importing the user's modules (--import) that the model needs."""
    from ..formats.factory import import_modules
    from ..formats.input_specs import parse_input_specs
    import_modules(imports or ())
    options = {"weights": weights, "input_specs": parse_input_specs(input_shape), "trust_pickle": trust_pickle}
    if factory:
        from ..formats.detect import FACTORY_SPEC
        if not FACTORY_SPEC.match(factory):
            raise UsageError(f"--factory {factory!r}: write package.module:ClassName")
        options["factory"] = factory
    if task:
        options["task"] = task
    return options


def parse_pairs(texts: Optional[List[str]], flag: str) -> dict[str, str]:
    """``a=b,c=d`` (possibly repeated) -> {"a": "b", "c": "d"}."""
    pairs: dict[str, str] = {}
    for text in texts or ():
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key or not value:
                raise UsageError(f"{flag} {text!r}: write NAME=VALUE[,NAME=VALUE]")
            pairs[key.strip()] = value.strip()
    return pairs


def parse_dims(texts: Optional[List[str]]) -> dict[str, int]:
    """--dim NAME=SIZE (repeatable, or comma separated) -> {NAME: SIZE}."""
    dims = {}
    for name, value in parse_pairs(texts, "--dim").items():
        try:
            dims[name] = int(value)
        except ValueError:
            raise UsageError(f"--dim {name}={value}: the size must be an integer") from None
    return dims
