"""The format registry: detect what a path holds and open it as a Session.

Each format module registers its :class:`Format` (sniffer, opener, capabilities) when imported;
the modules are light, and a format's runtime is imported only when a model of it is opened.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InvalidModelError, UnsupportedFormatError
from .base import FORMATS, Format, Intermediate, Session, register_format
from .detect import sniff

# Registration order is sniffing order: formats with an unmistakable magic number come first,
# the ONNX and Caffe protobuf heuristics last.
from . import tflite, executorch, openvino, keras, pytorch, lightning, hf_onnx, huggingface, jax, savedmodel, tfjs, ort_web, mxnet, onnx, ort, caffe  # noqa: E402,F401  (register themselves)


def get_format(name: str) -> Format:
    """Look a format up by name or alias (``--to``)."""
    key = name.lower().strip()
    for fmt in FORMATS.values():
        if key == fmt.name or key in fmt.aliases:
            return fmt
    raise UnsupportedFormatError(
        f"unknown format {name!r}", hint="known formats: " + ", ".join(sorted(FORMATS)))


def format_for_suffix(path: str | Path) -> Format | None:
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    return None


def is_factory_spec(source: str | Path) -> bool:
    from .factory import is_factory_spec as check
    return check(str(source))


def detect(path: str | Path) -> Format:
    """Tell the format of a model path by its content, and check that its suffix agrees.

    Raises:
        InvalidModelError: the path is missing, or its content contradicts its suffix.
        UnsupportedFormatError: the content is no format modelport knows.
    """
    if is_factory_spec(path):
        from .factory import build, framework_of
        model = build(str(path))
        framework = framework_of(model)
        for fmt in FORMATS.values():
            if framework is not None and fmt.factory_framework == framework:
                return fmt
        raise InvalidModelError(f"{str(path)!r} gave a {type(model).__name__}, not a model modelport can open",
                                hint="return a torch.nn.Module, a keras.Model, or a JAX model (a jax.jit function, a Flax module) from the factory")
    path = Path(path)
    if not path.exists():
        raise InvalidModelError(f"no such file or folder: {str(path)!r}",
                                hint="check the path; a Python model factory is written package.module:function")
    from .mlflow import is_mlflow_folder, resolve
    if is_mlflow_folder(path):  # the model file its flavor names, opened in that file's format
        return resolve(path)
    by_content, description = sniff(path)
    by_suffix = format_for_suffix(path) if path.is_file() else None
    if by_suffix is not None and by_content != by_suffix.name:
        if by_content is not None:
            hint = (f"it looks like a {FORMATS[by_content].title} model: give it a "
                    f"{' or '.join(FORMATS[by_content].suffixes) or 'folder'} name")
        else:
            hint = "the file may be truncated, or be a download error page; fetch it again"
        raise InvalidModelError(
            f"{str(path)!r} has the suffix {path.suffix!r} of {by_suffix.title} models "
            f"but its content is {description}", hint=hint)
    if by_content is None:
        raise UnsupportedFormatError(
            f"cannot tell the model format of {str(path)!r}: it is {description}",
            hint="supported: " + ", ".join(f"{f.title} ({', '.join(f.suffixes) or 'folder'})"
                                            for f in FORMATS.values()))
    return FORMATS[by_content]


def open_model(path: str | Path, *, format: str | None = None, **options) -> Session:
    """Open a model in its own runtime.

    Args:
        path: a model file or folder, or ``package.module:factory`` for a PyTorch model.
        format: skip detection and open as this format.
        **options: format-specific options (``weights``, ``input_specs``, ``trust_pickle``,
            ``preprocessing``); options a format does not take are ignored.
    """
    fmt = get_format(format) if format else detect(path)
    taken, _ = fmt.accepted_options(options)
    return fmt.open(path, **taken)


__all__ = ["FORMATS", "Format", "Intermediate", "Session", "detect", "get_format", "open_model", "register_format"]
