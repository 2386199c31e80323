"""The Session contract every format implements, and the Format record the registry keeps."""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InvalidModelError, ModelportError, UnsupportedFormatError, UsageError, first_line, quote_list
from ..tensors import TensorSpec


class Session(abc.ABC):
    """A model opened in its own runtime.

    Subclasses set ``format_name``, ``inputs`` and ``outputs`` and implement :meth:`_run`.
    ``run`` checks the feeds against ``inputs`` first so that every runtime reports a bad feed
    the same way.
    """

    format_name: str = "?"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def __init__(self, path: str | Path):
        self.path = Path(path) if not isinstance(path, Path) else path

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [spec.name for spec in self.inputs]
        missing = [n for n in names if n not in feeds]
        extra = [n for n in feeds if n not in names]
        if missing or extra:
            raise UsageError(
                f"feeds do not match the inputs of {self.path.name!r}: "
                + (f"missing {quote_list(missing)}; " if missing else "")
                + (f"unknown {quote_list(extra)}; " if extra else "")
                + f"expected {quote_list(names)}")
        ordered = {n: np.asarray(feeds[n]) for n in names}
        try:
            return self._run(ordered)
        except ModelportError:
            raise
        except Exception as exc:  # the runtime refused these feeds: report it as the model's problem
            shapes = ", ".join(f"{n} {list(v.shape)} {v.dtype}" for n, v in ordered.items())
            raise InvalidModelError(f"{self.format_name} runtime failed on {self.path.name!r} with feeds {shapes}: "
                                    f"{first_line(exc)}") from exc

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


@dataclass
class Format:
    """One model format: how to recognise it and where its Session lives.

    ``opener`` is ``"module:function"`` inside modelport.formats, imported only when a model of
    this format is opened, so that detection never imports a framework.
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    opener: str
    is_directory: bool = False
    extra: str | None = None  # the pip extra that brings its runtime
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def open(self, path, **options) -> Session:
        module_name, func_name = self.opener.split(":")
        try:
            module = importlib.import_module(f"modelport.formats.{module_name}")
        except ImportError as exc:  # the runtime's extra is not installed
            raise UnsupportedFormatError(
                f"opening {self.title} models needs {exc.name!r}, which is not installed",
                hint=f"pip install 'modelport[{self.extra}]'" if self.extra else None) from exc
        opener: Callable[..., Session] = getattr(module, func_name)
        return opener(path, **options)
