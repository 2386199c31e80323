"""Models given as Python code: ``package.module:factory`` (a function or class returning a model,
or a model object), and ``--import MODULE`` for code that must run before a model file is opened
(custom Keras layers, torch pytree registrations).

The factory runs once: its result is kept for the Session of whichever format it turns out to be
(a ``torch.nn.Module`` is PyTorch, a ``keras.Model`` Keras), so detection never builds it twice.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Iterable, Mapping

from ..errors import InvalidModelError, UsageError, first_line
from .detect import FACTORY_SPEC

_BUILT: dict[str, Any] = {}


def _importable_here() -> None:
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: the user's current folder is importable


def import_modules(names: Iterable[str]) -> None:
    """Import user modules (``--import``) so that what they register exists before a model is read."""
    from .._console import quiet_tensorflow
    quiet_tensorflow()  # the module may import TensorFlow: keep its start-up logs out
    _importable_here()
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UsageError(f"--import {name}: {first_line(exc)}",
                             hint="give a module importable from here (installed, or under the current folder)") from exc
        except Exception as exc:
            raise InvalidModelError(f"--import {name} raised {type(exc).__name__}: {first_line(exc)}",
                                    hint="fix that module (run with --debug for its traceback)") from exc


def build(spec: str) -> Any:
    """The object ``package.module:attr`` names, called when it is a function or class; once per spec."""
    if spec in _BUILT:
        return _BUILT[spec]
    target = resolve(spec)
    try:
        model = target() if callable(target) and not _is_model(target) else target
    except Exception as exc:  # the user's code failed: theirs to fix, not a bug of modelport
        raise InvalidModelError(f"the factory {spec!r} raised {type(exc).__name__}: {first_line(exc)}",
                                hint="fix the factory (run with --debug for its traceback); it must return "
                                     "a model without arguments") from exc
    _BUILT[spec] = model
    return model


def resolve(spec: str) -> Any:
    """The object ``package.module:attr`` names, imported but not called."""
    _importable_here()
    module_name, attr = spec.split(":", 1)
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidModelError(f"cannot import {spec!r}: {exc}",
                                hint="run from the folder that holds the package, or install it") from exc
    except Exception as exc:  # the user's module failed while importing
        raise InvalidModelError(f"importing {spec!r} raised {type(exc).__name__}: {first_line(exc)}",
                                hint="fix that module (run with --debug for its traceback)") from exc
    return target


def take(spec: str) -> Any:
    """The built object, handed to the Session that opens it (and forgotten here)."""
    model = build(spec)
    _BUILT.pop(spec, None)
    return model


def _is_model(obj) -> bool:
    return framework_of(obj) is not None and not isinstance(obj, type)


def is_linen_pair(obj) -> bool:
    """A Flax linen module with its variables: ``(module, variables)``."""
    return (isinstance(obj, tuple) and len(obj) == 2 and
            any(c.__module__.startswith("flax.linen") for c in type(obj[0]).__mro__) and isinstance(obj[1], Mapping))


def _is_jax_object(obj) -> bool:
    """A jitted function, a Flax module, or a (linen module, variables) pair."""
    if is_linen_pair(obj):
        return True
    for cls in type(obj).__mro__:
        module = cls.__module__ or ""
        if module.startswith("flax.") or (module.startswith(("jax.", "jaxlib")) and callable(obj)):
            return True
    return False


def framework_of(obj) -> str | None:
    """'torch', 'keras' or 'jax' from the classes an object is made of, without importing them."""
    if not isinstance(obj, type) and _is_jax_object(obj):
        return "jax"
    classes = type(obj).__mro__ if not isinstance(obj, type) else obj.__mro__
    for cls in classes:
        module = cls.__module__ or ""
        if module.startswith("torch.nn") or module.startswith("torch.jit") or module.startswith("torch.fx"):
            return "torch"
        if module.startswith("keras"):
            return "keras"
    return None


def is_factory_spec(text: str) -> bool:
    from pathlib import Path
    return bool(FACTORY_SPEC.match(text)) and not Path(text).exists()
