"""Building an ONNX graph from a jaxpr: values, weights, symbolic dims and the equation walk.

The model is traced by ``jax.make_jaxpr`` with its parameters as named arguments (they become
initializers named by their pytree path) and its inputs' dynamic dims as JAX symbolic dims. JAX
calls (jit, custom_jvp/vjp, remat) are inlined, so handlers see lax primitives only. A shape
that holds a symbolic dim (``reshape`` to ``(N, 7, 4, 8)``) is computed in the graph from the
inputs' run-time shapes.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ...errors import InvalidModelError, UsageError
from ..onnx_builder import Graph, finish_model
from ..ops import OpRegistry

ONNX_OPSET = 18  # reductions take their axes as an input from 18: one spelling for all of them
JAX_PRIMITIVES = OpRegistry("jax", "JAX", versioned=False, default_domain="jax")
# Calls whose body is another jaxpr: converted by walking the body in place.
INLINED = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
           "remat": "jaxpr", "checkpoint": "jaxpr"}


def jax_primitive(*names: str):
    """Register a handler for lax primitive name(s)."""
    return JAX_PRIMITIVES.register(*names)


def onnx_dtype(dtype) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Dims:
    """Symbolic dims (JAX ``_DimExpr``) as ONNX int64 tensors of shape [1], computed from the
    graph inputs' shapes: each symbol is read once, expressions are built from + * // %."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.symbols: dict[str, str] = {}  # symbol name -> ONNX [1] tensor

    def bind(self, symbol: str, tensor: str, axis: int) -> None:
        if symbol not in self.symbols:
            shape = self.graph.op("Shape", [tensor], f"{tensor}/shape")
            self.symbols[symbol] = self.graph.op("Gather", [shape, self.graph.ints(f"{symbol}/axis", [axis])],
                                                 f"dim_{symbol}")

    def tensor(self, dim) -> str:
        """An ONNX [1] int64 tensor holding ``dim`` (an int or a symbolic expression)."""
        if isinstance(dim, (int, np.integer)):
            return self.graph.ints("dim", [int(dim)])
        try:
            value = dim._evaluate({name: _OnnxInt(self, tensor) for name, tensor in self.symbols.items()})
        except Exception as exc:  # noqa: BLE001  (JAX's symbolic-dim internals: any failure means unsupported)
            raise UsageError(f"cannot compute the symbolic dim {dim} in the graph ({exc})",
                             hint="give that input a fixed size in --input-shape") from exc
        return value.tensor if isinstance(value, _OnnxInt) else self.graph.ints("dim", [int(value)])

    def shape(self, dims: Sequence) -> str:
        """A shape tensor for ``dims``; constant when every dim is known."""
        if all(isinstance(d, (int, np.integer)) for d in dims):
            return self.graph.ints("shape", [int(d) for d in dims])
        parts = [self.tensor(d) for d in dims]
        return self.graph.op("Concat", parts, "shape", axis=0)


class _OnnxInt:
    """An int64 [1] tensor with Python arithmetic, for evaluating symbolic dim expressions."""

    def __init__(self, dims: Dims, tensor: str):
        self.dims, self.tensor = dims, tensor

    def _wrap(self, other) -> str:
        return other.tensor if isinstance(other, _OnnxInt) else self.dims.graph.ints("k", [int(other)])

    def _op(self, op: str, a: str, b: str) -> "_OnnxInt":
        return _OnnxInt(self.dims, self.dims.graph.op(op, [a, b], f"dim_{op.lower()}"))

    def __add__(self, other): return self._op("Add", self.tensor, self._wrap(other))  # noqa: E704
    def __radd__(self, other): return self._op("Add", self._wrap(other), self.tensor)  # noqa: E704
    def __sub__(self, other): return self._op("Sub", self.tensor, self._wrap(other))  # noqa: E704
    def __rsub__(self, other): return self._op("Sub", self._wrap(other), self.tensor)  # noqa: E704
    def __mul__(self, other): return self._op("Mul", self.tensor, self._wrap(other))  # noqa: E704
    def __rmul__(self, other): return self._op("Mul", self._wrap(other), self.tensor)  # noqa: E704
    def __floordiv__(self, other): return self._op("Div", self.tensor, self._wrap(other))  # noqa: E704  (sizes >= 0)
    def __mod__(self, other): return self._op("Mod", self.tensor, self._wrap(other))  # noqa: E704


class Context:
    """What a handler sees: the equation's inputs (ONNX names), their avals, its params and outputs."""

    def __init__(self, converter: "JaxprConverter", eqn, inputs: list[str]):
        self.converter, self.eqn, self.inputs = converter, eqn, inputs
        self.graph = converter.graph
        self.dims = converter.dims
        self.params = eqn.params
        self.in_avals = [v.aval for v in eqn.invars]
        self.out_avals = [v.aval for v in eqn.outvars]
        self.base = f"{eqn.primitive.name}_{converter.counter}"

    def const_value(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` when it is known while converting (a weight or a literal)."""
        return self.converter.known.get(self.inputs[index])

    def op(self, op_type: str, inputs: Sequence[str], suffix: str = "", outputs: int = 1, **attrs):
        return self.graph.op(op_type, inputs, f"{self.base}{'/' + suffix if suffix else ''}", outputs=outputs, **attrs)

    def const(self, value, dtype=None, suffix: str = "c", name: str | None = None) -> str:
        """A constant named after this equation, or ``name`` (a weight keeps its pytree path)."""
        value = np.asarray(value, dtype=dtype)
        name = self.graph.const(name or f"{self.base}/{suffix}", value, value.dtype)
        self.converter.known[name] = value
        return name

    def ints(self, values: Sequence[int], suffix: str = "ints") -> str:
        return self.graph.ints(f"{self.base}/{suffix}", [int(v) for v in values])

    def unsupported(self, what: str):
        from ...errors import UnsupportedOpError
        return UnsupportedOpError(self.eqn.primitive.name, where=what, framework="JAX",
                                  hint="open an issue with the model; or register a handler with "
                                       "modelport.convert.jax_onnx.jax_primitive")


Handler = Callable[[Context], "list[str] | str"]


class JaxprConverter:
    def __init__(self, opset: int):
        self.graph = Graph()
        self.graph.opset = opset
        self.dims = Dims(self.graph)
        self.known: dict[str, np.ndarray] = {}  # ONNX names whose values are known (weights, literals)
        self.counter = 0

    def constant(self, value, base: str) -> str:
        array = np.asarray(value)
        name = self.graph.const(base, array, array.dtype)
        self.known[name] = array
        return name

    def read(self, atom, env: dict) -> str:
        from jax.extend.core import Literal
        if isinstance(atom, Literal):
            return self.constant(np.asarray(atom.val, dtype=atom.aval.dtype), "literal")
        return env[atom]

    def walk(self, jaxpr, consts: Sequence[Any], args: Sequence[str], const_names: Sequence[str] | None = None) -> list[str]:
        env: dict = {}
        for i, (var, value) in enumerate(zip(jaxpr.constvars, consts)):
            env[var] = self.constant(np.asarray(value), (const_names[i] if const_names else f"const_{i}"))
        for var, name in zip(jaxpr.invars, args):
            env[var] = name
        for eqn in jaxpr.eqns:
            inputs = [self.read(v, env) for v in eqn.invars]
            outputs = self.equation(eqn, inputs)
            for var, name in zip(eqn.outvars, outputs):
                if type(var).__name__ != "DropVar":
                    env[var] = name
        return [self.read(v, env) for v in jaxpr.outvars]

    def equation(self, eqn, inputs: list[str]) -> list[str]:
        name = eqn.primitive.name
        if INLINED.get(name) in eqn.params:
            body = eqn.params[INLINED[name]]
            if hasattr(body, "jaxpr"):  # a ClosedJaxpr
                skip = eqn.params.get("num_consts", 0) if name == "custom_vjp_call_jaxpr" else 0
                return self.walk(body.jaxpr, body.consts, inputs[skip:] if skip else inputs)
            return self.walk(body, [], inputs)
        self.counter += 1
        handler = JAX_PRIMITIVES.handler(name, where=f"JAX primitive {name!r} ({_eqn_text(eqn)})",
                                         hint="register a handler with modelport.convert.jax_onnx.jax_primitive")
        result = handler(Context(self, eqn, inputs))
        return [result] if isinstance(result, str) else list(result)


def _eqn_text(eqn) -> str:
    shapes = ", ".join(f"{getattr(v.aval, 'dtype', '?')}{list(getattr(v.aval, 'shape', []))}" for v in eqn.invars)
    return f"on {shapes}" if shapes else "no inputs"


def build_model(model, specs, *, dynamic_batch: bool = True, opset: int = ONNX_OPSET, name: str = "jax",
                doc: str = "", props: dict[str, str] | None = None):
    """Trace ``model`` (a formats.jax.JaxModel) at ``specs`` and convert it; returns a checked ModelProto."""
    import jax
    from onnx import helper

    from ...formats.jax import output_names
    dim_names = []
    for spec in specs:
        names = []
        for axis, size in enumerate(spec.shape):
            named = spec.dim_names[axis] if spec.dim_names else None
            if size is None or named:
                names.append(named or f"{spec.name}_dim{axis}")
            elif axis == 0 and dynamic_batch:
                names.append("N")
            else:
                names.append(None)
        dim_names.append(names)
    symbols = sorted({n for names in dim_names for n in names if n})
    scope = jax.export.SymbolicScope()
    declared = {}
    if symbols:
        for symbol, expr in zip(symbols, jax.export.symbolic_shape(",".join(symbols), scope=scope)):
            declared[symbol] = expr
    avals = [jax.ShapeDtypeStruct(tuple(declared[n] if n else int(d) for n, d in zip(names, spec.shape)),
                                  spec.dtype) for spec, names in zip(specs, dim_names)]
    every, treedef = jax.tree_util.tree_flatten_with_path(model.params)
    # Numeric leaves are traced as named arguments; others (an NNX module's RNG keys) stay fixed.
    traced = [i for i, (_, leaf) in enumerate(every) if _is_numeric(leaf)]
    leaves = [every[i] for i in traced]
    param_names = [_param_name(path) for path, _ in leaves]

    def apply(flat_params, *inputs):
        values = [leaf for _, leaf in every]
        for i, value in zip(traced, flat_params):
            values[i] = value
        params = jax.tree_util.tree_unflatten(treedef, values)
        return model.apply(params, *inputs)

    try:
        # One trace gives both the jaxpr (outputs flattened) and the output pytree, for the names.
        closed, out_tree = jax.make_jaxpr(apply, return_shape=True)([leaf for _, leaf in leaves], *avals)
    except Exception as exc:
        raise InvalidModelError(f"JAX cannot trace the model at inputs {[str(a) for a in avals]}: "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                hint="check --input-shape; a dim the model's arithmetic fixes cannot be dynamic: "
                                     "give it a size (or --fixed-batch)") from exc
    converter = JaxprConverter(opset)
    graph = converter.graph
    graph_inputs = []
    for spec, names in zip(specs, dim_names):
        graph.reserve(spec.name)
        dims = [n if n else int(d) for n, d in zip(names, spec.shape)]
        graph_inputs.append(helper.make_tensor_value_info(spec.name, onnx_dtype(spec.dtype), dims))
        for axis, symbol in enumerate(names):
            if symbol:
                converter.dims.bind(symbol, spec.name, axis)
    outputs = output_names(out_tree)
    for name_ in outputs:
        graph.reserve(name_)
    args = [converter.constant(np.asarray(leaf), name_) for name_, (_, leaf) in zip(param_names, leaves)]
    args += [spec.name for spec in specs]
    results = converter.walk(closed.jaxpr, closed.consts, args)
    graph_outputs = []
    for out_name, tensor, aval in zip(outputs, results, closed.out_avals):
        graph.nodes.append(helper.make_node("Identity", [tensor], [out_name], name=graph.unique(f"{out_name}/out")))
        dims = [d if isinstance(d, (int, np.integer)) else str(d) for d in aval.shape]
        graph_outputs.append(helper.make_tensor_value_info(out_name, onnx_dtype(aval.dtype), dims))
    onnx_graph = helper.make_graph(graph.nodes, name, graph_inputs, graph_outputs, graph.initializers)
    return finish_model(onnx_graph, opset, doc=doc, props=props)


def _is_numeric(leaf) -> bool:
    dtype = getattr(leaf, "dtype", None)
    try:
        return dtype is not None and np.dtype(dtype).kind in "biufc"
    except TypeError:  # JAX's extended dtypes (PRNG keys)
        return False


def _param_name(path) -> str:
    parts = []
    for key in path:
        part = getattr(key, "key", getattr(key, "idx", getattr(key, "name", key)))
        parts.append(str(part))
    return "/".join(parts) or "param"
