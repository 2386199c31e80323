"""JAX and Flax models, given as Python code: ``package.module:factory`` returning

* a jitted function (``jax.jit(f)``, its weights closed over),
* a Flax NNX module (run in eval mode), or
* a Flax linen module with its variables, as the tuple ``(module, variables)``;

or as a serialized ``jax.export`` artifact (``exported.serialize()`` saved as NAME.jax), which
records its input shapes (symbolic dims stay dynamic) and holds its weights.

``--weights`` restores a Flax msgpack file (``flax.serialization.to_bytes``) or an Orbax checkpoint
folder into the module's variables; both hold arrays and metadata only, so nothing is executed.
JAX itself (XLA on CPU) runs the model: it is the parity reference of JAX conversions.
Inputs carry no shapes in JAX: ``--input-shape`` gives them (a named dim stays dynamic).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InvalidModelError, UsageError, first_line
from ..tensors import TensorSpec
from .base import Format, Probe, Session, register_format
from .factory import is_linen_pair


@dataclass
class JaxModel:
    """A model as one pure function: ``apply(params, *inputs)``, its ``params`` pytree (None when
    the weights are closed over), and what kind of object it came from."""

    apply: Callable
    params: Any
    kind: str


def as_jax_model(obj, spec: str, weights: str | Path | None = None) -> JaxModel:
    if is_linen_pair(obj):
        module, variables = obj
        if weights is not None:
            variables = _restore(variables, weights)
        return JaxModel(lambda v, *xs: module.apply(v, *xs), variables, "Flax linen module")
    if type(obj).__module__.startswith("flax.nnx") or any(c.__module__.startswith("flax.nnx")
                                                            for c in type(obj).__mro__[1:]):
        from flax import nnx
        if hasattr(obj, "eval"):
            obj.eval()  # BatchNorm's running statistics, no dropout: inference behaviour
        if weights is not None:  # the module's variables without its random-number state
            variables = nnx.state(obj, nnx.Not(nnx.RngState))
            nnx.replace_by_pure_dict(variables, _restore(variables.to_pure_dict(), weights))
            nnx.update(obj, variables)
        graphdef, state = nnx.split(obj)
        return JaxModel(lambda s, *xs: nnx.merge(graphdef, s)(*xs), state, "Flax NNX module")
    if callable(obj):
        if weights is not None:
            raise UsageError("--weights restores a Flax module's variables; a jitted function closes over its own",
                             hint="return (module, variables) or an NNX module from the factory to use --weights")
        return JaxModel(lambda _, *xs: obj(*xs), None, "jitted function")
    raise InvalidModelError(f"{spec!r} gave a {type(obj).__name__}, not a JAX model",
                            hint="return a jax.jit function, a Flax NNX module or (linen_module, variables)")


def _restore(target, weights: str | Path):
    """``target``'s structure filled from a Flax msgpack file or an Orbax checkpoint folder (arrays
    and metadata only: neither format runs code when read)."""
    path = Path(weights)
    if not path.exists():
        raise InvalidModelError(f"no such weights file or folder: {str(path)!r}")
    try:
        if path.is_dir():
            import orbax.checkpoint as ocp
            return ocp.StandardCheckpointer().restore(path.resolve(), target)
        from flax import serialization
        return serialization.from_bytes(target, path.read_bytes())
    except Exception as exc:
        raise InvalidModelError(f"cannot restore {path.name!r} into the model's variables: {first_line(exc)}",
                                hint="give a Flax msgpack file (flax.serialization.to_bytes) or an Orbax checkpoint "
                                     "folder (StandardCheckpointer) of this model's variables") from exc


def output_names(tree) -> list[str]:
    """Names of the leaves of a model's output pytree: 'output' for one array, the keys of a dict,
    output_0.. for a tuple."""
    import jax
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if len(leaves) == 1 and not leaves[0][0]:
        return ["output"]
    names = []
    for i, (path, _) in enumerate(leaves):
        text = ".".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
        names.append(text if any(hasattr(k, "key") or hasattr(k, "name") for k in path) else f"output_{i}")
    return names


def read_exported(path: Path):
    """A serialized ``jax.export.Exported`` (``exported.serialize()`` written to a file)."""
    import jax
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidModelError(f"no such file: {str(path)!r}") from None
    try:
        return jax.export.deserialize(bytearray(data))
    except Exception as exc:  # the flatbuffer reader's errors
        raise InvalidModelError(f"{path.name!r} is not a serialized jax.export artifact: {first_line(exc)}",
                                hint="write it with open(path, 'wb').write(jax.export.export(f)(*args).serialize())"
                                ) from exc


def _exported_inputs(exported, given: Sequence[TensorSpec]) -> list[TensorSpec]:
    """The artifact's inputs (its shapes; symbolic dims stay dynamic), named by --input-shape if given."""
    specs = []
    for i, aval in enumerate(exported.in_avals):
        shape = tuple(d if isinstance(d, (int, np.integer)) else None for d in aval.shape)
        names = tuple(None if isinstance(d, (int, np.integer)) else str(d) for d in aval.shape)
        specs.append(TensorSpec(f"input_{i}", shape, np.dtype(aval.dtype), dim_names=names if any(names) else None))
    if given:
        if len(given) != len(specs):
            raise UsageError(f"the artifact takes {len(specs)} input(s); --input-shape gave {len(given)}",
                             hint="an artifact records its shapes: --input-shape only names its inputs, in order")
        specs = [TensorSpec(g.name, s.shape, s.dtype, dim_names=s.dim_names) for g, s in zip(given, specs)]
    return specs


class JaxSession(Session):
    format_name = "jax"

    def __init__(self, source, *, weights=None, input_specs: Sequence[TensorSpec] | None = None, **_ignored):
        spec = str(source)
        super().__init__(spec)
        self.source = spec
        self.exported = None
        from .factory import is_factory_spec, take
        if is_factory_spec(spec):
            self.model = as_jax_model(take(spec), spec, weights)
            self.inputs = list(input_specs or [])
        else:
            if weights is not None:
                raise UsageError("--weights goes with a Flax module from a factory; an artifact holds its weights")
            self.exported = read_exported(Path(source))
            self.model = JaxModel(lambda _, *xs: self.exported.call(*xs), None, "jax.export artifact")
            self.inputs = _exported_inputs(self.exported, list(input_specs or []))
        self.outputs: list[TensorSpec] = []
        if self.inputs and all(s.shape is not None for s in self.inputs):
            probe = self._call([np.zeros([1 if d is None else d for d in s.shape], s.dtype) for s in self.inputs])
            self.outputs = [TensorSpec(n, (None, *v.shape[1:]) if v.ndim else (), v.dtype)
                            for n, v in probe.items()]

    def require_shapes(self) -> None:
        if not self.inputs or any(s.shape is None for s in self.inputs):
            raise UsageError(f"{self.source!r} is a JAX function: its inputs have no recorded shapes",
                             hint="pass --input-shape for each input, e.g. --input-shape x:1,28,28,1 "
                                  "(a name in place of a size, e.g. batch, keeps that dim dynamic)")

    def _call(self, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        import jax
        try:
            result = self.model.apply(self.model.params, *[jax.numpy.asarray(a) for a in arrays])
        except Exception as exc:
            shapes = ", ".join(f"{s.name}:{list(a.shape)}" for s, a in zip(self.inputs, arrays))
            raise UsageError(f"{self.source!r} fails on inputs {shapes}: {type(exc).__name__}: {first_line(exc)}",
                             hint="check --input-shape: the rank, the sizes and the dtype of each input") from exc
        names = output_names(result)
        return {n: np.asarray(v) for n, v in zip(names, jax.tree_util.tree_leaves(result))}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.require_shapes()
        return self._call([feeds[s.name] for s in self.inputs])

    @property
    def flexible_batch(self) -> bool:
        if self.exported is not None:  # an artifact runs the shapes it was exported for
            return bool(self.inputs) and all(s.shape and s.shape[0] is None for s in self.inputs)
        return True  # JAX retraces for each new shape

    def describe(self) -> dict[str, Any]:
        import jax
        count = sum(int(np.prod(getattr(leaf, "shape", ()))) for leaf in jax.tree_util.tree_leaves(self.model.params))
        facts = {"kind": self.model.kind, "parameters": count if self.model.params is not None else "closed over",
                 "jax": jax.__version__, "backend": jax.default_backend()}
        if self.exported is not None:
            facts.update({"platforms": list(self.exported.platforms), "function": self.exported.fun_name,
                          "calling_convention_version": self.exported.calling_convention_version})
        return facts


def open_jax(source, **options) -> JaxSession:
    return JaxSession(source, **options)


def sniff_jax(probe: Probe) -> str | None:
    """A ``.jax`` file holding a flatbuffer (jax.export's serialization has no file identifier, so the
    suffix names it; the root offset must point inside the file). Factories are Python code."""
    if probe.is_dir or probe.path.suffix != ".jax" or len(probe.head) < 8:
        return None
    root = int.from_bytes(probe.head[:4], "little")
    return "a serialized jax.export artifact" if 8 <= root < probe.path.stat().st_size else None


register_format(Format("jax", "JAX / Flax", (".jax",), open_jax, sniff_jax, extra="jax", runtime_modules=("jax", "flax"),
                       aliases=("flax",), open_options=frozenset({"weights", "input_specs"}),
                       factory_framework="jax"))
