"""The Session contract every format implements, and the Format record the registry keeps."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidModelError, ModelportError, UnsupportedFormatError, UsageError, first_line, quote_list
from ..tensors import TensorSpec


@dataclass
class Intermediate:
    """One intermediate tensor of a run: its name in the session's naming scheme, its value, and
    labels for reports (``{"node": ..., "op_type": ...}``, ``{"module": ..., "class": ...}``)."""

    name: str
    value: np.ndarray
    label: dict[str, str] = field(default_factory=dict)


class Session(abc.ABC):
    """A model opened in its own runtime.

    Subclasses set ``format_name``, ``inputs`` and ``outputs`` and implement :meth:`_run`.
    ``run`` checks the feeds against ``inputs`` first so that every runtime reports a bad feed
    the same way.

    Beyond running, a Session declares what callers need to know, so that nothing outside
    ``formats/`` probes a runtime object: :attr:`precision`, :attr:`flexible_batch`,
    :attr:`warnings`, :attr:`handle` (the framework's own model object) and, where the runtime
    allows it, :meth:`run_with_intermediates` with the naming scheme in :attr:`intermediate_scheme`.
    """

    format_name: str = "?"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    #: How this session names the intermediate tensors it can expose ("onnx" tensor names,
    #: "torch-module" paths, "keras-layer" names); None when it cannot expose them.
    intermediate_scheme: str | None = None

    def __init__(self, path: str | Path):
        self.path = Path(path) if not isinstance(path, Path) else path
        self.warnings: list[str] = []  # things the user should know about this model's check

    # -- what callers may ask -----------------------------------------------------------------
    @property
    def handle(self) -> Any:
        """The runtime's own model object (onnx.ModelProto, nn.Module, keras.Model, ...)."""
        return getattr(self, "model", None)

    @property
    def flexible_batch(self) -> bool:
        """Whether the model runs any batch size (every input's first dim is dynamic)."""
        return bool(self.inputs) and all(spec.dynamic_batch for spec in self.inputs)

    @property
    def precision(self) -> str:
        """The precision it computes in, which picks default parity tolerances: 'fp32', 'fp16',
        'int8' (quantized activations), 'uint8-weights' (dynamically quantized weights) or
        'int4-weights' (blocked 4-bit weights, float activations)."""
        if any(spec.dtype.name == "float16" for spec in list(self.inputs) + list(self.outputs)):
            return "fp16"
        return "fp32"

    def run_with_intermediates(self, feeds: Mapping[str, np.ndarray],
                               names: Sequence[str] | None = None) -> list[Intermediate]:
        """Run once and return intermediate tensors in execution order (all, or those in ``names``).

        Raises:
            UnsupportedFormatError: this runtime cannot expose intermediate tensors.
        """
        raise UnsupportedFormatError(f"{self.format_name} sessions cannot expose intermediate tensors")

    def intermediate_names(self, scheme: str) -> dict[str, str]:
        """Names of another scheme (a PyTorch module path, a Keras layer) -> this session's
        intermediate tensor holding the same value, where the model records that; else {}."""
        return {}

    # -- running --------------------------------------------------------------------------------
    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feeds in input order; UsageError naming what is missing or unknown."""
        names = [spec.name for spec in self.inputs]
        missing = [n for n in names if n not in feeds]
        extra = [n for n in feeds if n not in names]
        if missing or extra:
            raise UsageError(
                f"feeds do not match the inputs of {self.path.name!r}: "
                + (f"missing {quote_list(missing)}; " if missing else "")
                + (f"unknown {quote_list(extra)}; " if extra else "")
                + f"expected {quote_list(names)}")
        return {n: np.asarray(feeds[n]) for n in names}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        ordered = self.check_feeds(feeds)
        try:
            return self._run(ordered)
        except ModelportError:
            raise
        except Exception as exc:  # the runtime refused these feeds: report it as the model's problem
            shapes = ", ".join(f"{n} {list(v.shape)} {v.dtype}" for n, v in ordered.items())
            sized = [f"{spec.name}'s dim {axis}" for spec in self.inputs for axis, size in enumerate(spec.shape or ())
                     if axis > 0 and size is None]
            hint = (f"the dynamic dims ({', '.join(sized)}) were fed at the sizes above; if the model needs others, "
                    "give --dim NAME=SIZE (by dim or input name), or real inputs") if sized else None
            raise InvalidModelError(f"{self.format_name} runtime failed on {self.path.name!r} with feeds {shapes}: "
                                    f"{first_line(exc)}", hint=hint) from exc

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on feeds already matched to ``inputs``; return outputs by name, in output order."""

    def describe(self) -> dict[str, Any]:
        """Format-specific facts for ``modelport info`` (opset, producer, ...)."""
        return {}

    def close(self) -> None:
        """Release the runtime; most runtimes free themselves when collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Probe:
    """What format sniffers look at: the path, its first bytes, zip member names; read once, lazily."""

    HEAD = 64

    def __init__(self, path: Path):
        self.path = path
        self.is_dir = path.is_dir()
        self._head: bytes | None = None
        self._zip: list[str] | None | bool = False  # False: not read yet; None: not a readable zip

    @property
    def head(self) -> bytes:
        if self._head is None:
            self._head = b"" if self.is_dir else self.path.open("rb").read(self.HEAD)
        return self._head

    @property
    def zip_names(self) -> list[str] | None:
        """Member names when the file is a readable zip archive, else None."""
        if self._zip is False:
            import zipfile
            self._zip = None
            if not self.is_dir and self.head.startswith(b"PK"):
                try:
                    with zipfile.ZipFile(self.path) as archive:
                        self._zip = archive.namelist()
                except (zipfile.BadZipFile, OSError):
                    pass
        return self._zip  # type: ignore[return-value]

    def text(self, size: int = 4096) -> bytes:
        with self.path.open("rb") as handle:
            return handle.read(size)


# A sniffer returns a short description of the content when it is its format ("a TFLite
# flatbuffer"), else None. Sniffers read bytes only: detection never imports a framework.
Sniffer = Callable[[Probe], "str | None"]


@dataclass
class Format:
    """One model format: how to recognise it, how to open it, and what it can do.

    Each format module registers its Format with :func:`register_format`; the module holds only
    light imports (numpy), its runtime is imported when a model is opened.
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    opener: Callable[..., Session]
    sniff: Sniffer
    is_directory: bool = False
    extra: str | None = None  # the pip extra that brings its runtime
    runtime_modules: tuple[str, ...] = ()  # top-level packages whose absence means "install the extra"
    aliases: tuple[str, ...] = field(default_factory=tuple)
    # Options of open() beyond the path ("weights", "input_specs", "trust_pickle", "preprocessing", "factory").
    open_options: frozenset[str] = frozenset()
    # The framework ("torch", "keras") of the models a Python factory ("package.module:function")
    # may return for this format; None when the format has no such sources.
    factory_framework: str | None = None

    def open(self, path, **options) -> Session:
        try:
            return self.opener(path, **options)
        except ModuleNotFoundError as exc:  # the runtime's extra is not installed
            if (exc.name or "").split(".")[0] not in self.runtime_modules:
                raise
            raise UnsupportedFormatError(
                f"opening {self.title} models needs {exc.name!r}, which is not installed",
                hint=f"pip install 'modelport[{self.extra}]'" if self.extra else None) from exc

    def accepted_options(self, options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Split open options into those for this format and the names of common ones it does not
        take (given in vain: the caller may warn). Format-specific options pass through."""
        taken = {k: v for k, v in options.items() if k not in COMMON_OPTIONS or k in self.open_options}
        ignored = [k for k, v in options.items() if k not in taken and v not in (None, False)]
        return taken, ignored


# Options that several commands pass to whatever format the source is; each format declares which
# of them it takes (Format.open_options).
COMMON_OPTIONS = frozenset({"weights", "input_specs", "trust_pickle", "preprocessing", "factory", "dims", "task"})
FORMATS: dict[str, Format] = {}


def register_format(fmt: Format, *, before: str | None = None) -> Format:
    """Add a format to the registry; detection tries sniffers in registration order, or puts this
    one ``before`` another whose sniffer would also claim its files."""
    FORMATS[fmt.name] = fmt
    if before in FORMATS:
        order = list(FORMATS)
        order.remove(fmt.name)
        order.insert(order.index(before), fmt.name)
        entries = {name: FORMATS[name] for name in order}
        FORMATS.clear()
        FORMATS.update(entries)
    return fmt


def folder_pair(folder: Path, definitions: list[Path], weight_files: list[Path], weights, what: str,
                hint: str) -> tuple[Path, Path]:
    """(definition, weights) of a model given as a folder holding one of each (Caffe, MXNet);
    ``weights`` given explicitly overrides the folder's."""
    if len(definitions) != 1 or (len(weight_files) != 1 and weights is None):
        raise UsageError(f"{str(folder)!r} should hold {what}; it has {len(definitions)} and {len(weight_files)}",
                         hint=hint)
    return definitions[0], Path(weights) if weights else weight_files[0]
