"""Building a ``torch.fx`` graph from an ONNX graph: the builder, the node context handlers see,
and the walk.

Handlers are written as ordinary PyTorch code. A value is either a ``torch.Tensor`` (known while
converting: an initializer, a Constant, or anything computed only from those) or a ``torch.fx.Proxy``
(known only when the model runs); torch functions called on proxies record graph nodes, and on
tensors they simply compute, so constant subgraphs fold by themselves. A handler that must not fold
(random ops) is registered with ``fold=False``. A constant that reaches the graph becomes a
parameter of the module when it is a float tensor (so it trains), else a buffer, named after its
ONNX value. Handlers read ranks and element types from ONNX's shape inference (``ctx.rank``,
``ctx.onnx_type``): a proxy has no shape while converting.
"""
from __future__ import annotations

import keyword
import inspect
import re
from typing import Any, Callable, Mapping

import torch
import torch.fx as fx

from ...errors import UnsupportedOpError
from ..onnx_graph import Opsets, StaticInfo, decode_attributes, domain_opset
from .dtypes import torch_dtype
from .registry import OPS
from . import runtime
from .shapes import ShapeValue, fold_shapes, is_traced, sizes_tensor


def onnx_op(*op_types: str, since: int = 1, domain: str = "", fold: bool = True) -> Callable:
    """Register a handler translating ONNX ``op_types`` from opset ``since`` on. With
    ``fold=False`` it always records graph nodes, even when every input is a constant."""
    register = OPS.register(*op_types, domain=domain, since=since)

    def decorate(func: Callable) -> Callable:
        func.fold = fold
        return register(func)
    return decorate


def identifier(name: str, fallback: str = "v") -> str:
    """An ONNX name as a Python identifier (argument, attribute and submodule names)."""
    cleaned = re.sub(r"\W", "_", name).strip("_") or fallback
    if cleaned[0].isdigit() or keyword.iskeyword(cleaned):
        cleaned = f"{fallback}_{cleaned}"
    return cleaned


class _Tracer(fx.Tracer):
    """Records torch calls on proxies into the builder's graph; constant tensors among the
    arguments become attributes of the module (``Builder.attribute``)."""

    def __init__(self, builder: "Builder"):
        super().__init__()
        self.builder = builder
        self.graph = builder.graph
        self.root = builder.root

    def create_arg(self, a):
        if isinstance(a, torch.Tensor):
            return self.builder.attribute(a)
        return super().create_arg(a)


class Builder:
    """The module and graph being built: submodules, parameters, buffers, and the recorded calls."""

    def __init__(self, parent: "Builder | None" = None):
        self.root = torch.nn.Module()
        self.graph = fx.Graph()
        self.tracer = _Tracer(self)
        self.parent = parent
        self._names: dict[int, tuple[torch.Tensor, str]] = {}  # id(tensor) -> (tensor, its ONNX value name)
        self._attributes: dict[int, tuple[torch.Tensor, fx.Node]] = {}
        self._taken: set[str] = set()

    def unique(self, name: str) -> str:
        base, index = name, 1
        while name in self._taken or hasattr(torch.nn.Module, name):
            index += 1
            name = f"{base}_{index}"
        self._taken.add(name)
        return name

    def placeholder(self, name: str) -> fx.Proxy:
        return fx.Proxy(self.graph.placeholder(self.unique(identifier(name, "input"))), self.tracer)

    def attribute(self, tensor: torch.Tensor) -> fx.Node:
        """The graph node reading ``tensor`` as an attribute of the module (added on first use)."""
        found = self._attributes.get(id(tensor))
        if found is not None:
            return found[1]
        name = self.unique(identifier(self._names.get(id(tensor), (None, "constant"))[1], "c"))
        # Weights train; a lone number (an epsilon, a clip bound, a scale) is a fixed constant.
        if tensor.is_floating_point() and tensor.dtype not in _UNTRAINABLE and tensor.numel() > 1:
            self.root.register_parameter(name, torch.nn.Parameter(tensor.detach().clone()))
        else:
            self.root.register_buffer(name, tensor.detach().clone())
        node = self.graph.get_attr(name)
        self._attributes[id(tensor)] = (tensor, node)  # the tensor is kept: its id must not be reused
        return node

    def name(self, tensor: torch.Tensor, onnx_name: str) -> None:
        """Remember that ``tensor`` is ONNX value ``onnx_name`` (the attribute it may become is named so)."""
        self._names.setdefault(id(tensor), (tensor, onnx_name))  # kept: its id must not be reused

    def lift(self, value):
        """A value as a graph value: constants become attributes (for ops that must not fold)."""
        if isinstance(value, torch.Tensor):
            return fx.Proxy(self.attribute(value), self.tracer)
        return value

    def add_module(self, name: str, module: torch.nn.Module) -> str:
        """Add ``module`` under ``name`` (dotted: nested), made unique; its final path."""
        parts = [identifier(part, "m") if not part.isdigit() else part for part in name.split(".") if part]
        path = ".".join(parts) or "module"
        if path in self._taken or _has_path(self.root, path):
            path = self.unique(path.replace(".", "_"))
        self._taken.add(path)
        parent = self.root
        for part in path.split(".")[:-1]:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(path.split(".")[-1], module)
        return path

    def call_module(self, path: str, args: tuple, kwargs: dict | None = None) -> fx.Proxy:
        return self.tracer.create_proxy("call_module", path, args, kwargs or {})

    def call_function(self, fn: Callable, args: tuple, kwargs: dict | None = None) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", fn, args, kwargs or {})

    def result(self, value):
        """A value as a graph result: a folded shape (shapes.py) becomes a tensor."""
        if isinstance(value, ShapeValue):
            return value.tensor() if value.static else self.call_function(sizes_tensor, (value.items, value.scalar))
        return value

    def output(self, value) -> None:
        self.graph.output(self.tracer.create_arg(value))

    def module(self, class_name: str = "GraphModule") -> fx.GraphModule:
        module = fx.GraphModule(self.root, self.graph, class_name=class_name)
        module.graph.eliminate_dead_code()
        module.graph.lint()
        module.recompile()
        # Drop what only removed nodes used: submodules, parameters and buffers nobody reads.
        used = {node.target for node in module.graph.nodes if node.op in ("get_attr", "call_module")}
        prefixes = {target.split(".")[0] for target in used}
        for name in [n for n, _ in module.named_children()]:
            if name not in prefixes:
                delattr(module, name)
        for name in [n for n, _ in module.named_parameters(recurse=False)] + \
                [n for n, _ in module.named_buffers(recurse=False)]:
            if name not in used:
                delattr(module, name)
        return module


# Float types a parameter cannot usefully train in (their values are a narrow type's grid).
_UNTRAINABLE = {getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                                                   "float8_e5m2fnuz", "float8_e8m0fnu") if hasattr(torch, name)}


def _has_path(root: torch.nn.Module, path: str) -> bool:
    try:
        root.get_submodule(path)
        return True
    except AttributeError:
        return False


class NodeContext:
    """What a handler sees besides its inputs: the node, its attributes, the opset, the builder,
    and what ONNX's shape inference knows of the inputs and outputs."""

    def __init__(self, node, attrs: dict[str, Any], opset: int, builder: Builder, info: StaticInfo,
                 opsets: "int | Opsets", scope: Mapping[str, Any], inputs: list):
        self.node = node
        self.attrs = attrs
        self.opset = opset
        self.builder = builder
        self.info = info
        self.opsets = opsets
        self.scope = scope  # the values computed so far, which subgraphs (If, Loop, Scan) may read
        self.inputs = inputs
        self.fold = True  # calls on known values compute now; False for ops that must not (random draws)

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def _input_name(self, index: int) -> str | None:
        if index < 0:
            index += len(self.node.input)
        if index >= len(self.node.input) or not self.node.input[index]:
            return None
        return self.node.input[index]

    def shape(self, index: int) -> list[int | None] | None:
        """Input ``index``'s dims (None where dynamic) as shape inference or the constant tells."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if isinstance(value, torch.Tensor):
            return list(value.shape)
        name = self._input_name(index)
        if name is None:
            return None
        if name in self.info.shapes:
            return self.info.shapes[name]
        return _meta(value, "shape")

    def rank(self, index: int) -> int:
        """Input ``index``'s rank; UnsupportedOpError when nothing tells it."""
        shape = self.shape(index)
        if shape is None:
            raise UnsupportedOpError(self.node.op_type, self.opset, where=f"node {self.node.name!r}",
                                     hint=f"the rank of input {index} is unknown while converting; run "
                                          "onnx.shape_inference on the model or give its inputs shapes")
        return len(shape)

    def output_shape(self, index: int = 0) -> list[int | None] | None:
        if index >= len(self.node.output):
            return None
        return self.info.shapes.get(self.node.output[index])

    def onnx_type(self, index: int) -> int | None:
        """Input ``index``'s ONNX element type, as declared, inferred or read off a constant."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if isinstance(value, torch.Tensor):
            from .dtypes import onnx_type_of
            return onnx_type_of(value.dtype)
        name = self._input_name(index)
        if name is None:
            return None
        return self.info.types.get(name) or _meta(value, "onnx_type")

    def dtype(self, index: int) -> torch.dtype | None:
        code = self.onnx_type(index)
        return None if code is None else torch_dtype(code)

    def output_type(self, index: int = 0) -> int | None:
        if index >= len(self.node.output):
            return None
        return self.info.types.get(self.node.output[index])

    def const(self, index: int):
        """Input ``index`` as a tensor when it is known while converting, else None."""
        value = self.inputs[index] if index < len(self.inputs) else None
        return value if isinstance(value, torch.Tensor) else None

    def ints(self, index: int) -> list | None:
        """A constant input (axes, shape, pads) as Python ints, or None when it is not constant. A
        folded shape (shapes.py) gives its entries: ints, and traced sizes where dims are dynamic."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if isinstance(value, ShapeValue):
            return list(value.items)
        value = self.const(index)
        return None if value is None else [int(v) for v in value.reshape(-1).tolist()]

    def require_const(self, index: int, what: str):
        value = self.const(index)
        if value is None:
            raise UnsupportedOpError(self.node.op_type, self.opset, where=f"node {self.node.name!r}",
                                     hint=f"{what} (input {index}) must be a constant to convert to PyTorch")
        return value

    @property
    def name(self) -> str:
        return self.node.name or (self.node.output[0] if self.node.output else self.node.op_type)

    def _computes_now(self, args: tuple, kwargs: dict) -> bool:
        """Whether a call is computed while converting: every argument known, and the op may fold."""
        return self.fold and not _holds_traced([*args, *kwargs.values()])

    def call(self, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)`` as a graph node (``fn`` a torch function or one of runtime.py's):
        computed now when every argument is known and the op may fold."""
        if self._computes_now(args, kwargs):
            return fn(*args, **kwargs)
        if getattr(fn, "__module__", None) == runtime.__name__:
            args, kwargs = _parameters_inlined(fn, args, kwargs)
        return self.builder.call_function(fn, args, kwargs)

    def module(self, module: torch.nn.Module, *args, name: str | None = None):
        """Run ``module`` on ``args``: as a submodule of the result named after the ONNX node (or
        ``name``) when an argument is traced, else now."""
        if self._computes_now(args, {}):
            with torch.no_grad():
                return module(*args)
        path = self.builder.add_module(name or self.module_name(), module)
        return self.builder.call_module(path, args)

    def module_name(self) -> str:
        """The submodule path for this node: the prefix of its weight's name when the model came
        from PyTorch (``layer1.0.conv1.weight`` -> ``layer1.0.conv1``, so state_dict keys match the
        original's), else the node name."""
        if len(self.node.input) > 1 and self.node.input[1]:
            weight = self.node.input[1]
            if re.fullmatch(r"[A-Za-z_][\w.]*\.weight", weight):
                return weight[: -len(".weight")]
        return scope_path(self.name)

    def subgraph(self, graph, inputs: list) -> list:
        """Build ``graph`` (an attribute) inline with ``inputs`` for its inputs and this graph's
        values in scope; its outputs in order."""
        env = run_graph(graph, dict(zip([i.name for i in graph.input], inputs)), self.opsets, self.builder,
                        self.info, self.scope)
        return [env[o.name] for o in graph.output]

    def subgraph_module(self, graph, label: str):
        """Build ``graph`` as a GraphModule of its own, a submodule of the result (what a loop body
        or a branch decided at run time needs): returns (a proxy of the submodule, the outer values
        it reads). It is called as ``module(*graph_inputs, *captured)`` and returns a tuple."""
        child = Builder(parent=self.builder)
        feeds = {}
        for value in graph.input:
            proxy = child.placeholder(value.name)
            if value.type.HasField("tensor_type"):
                proxy.node.meta["onnx_type"] = value.type.tensor_type.elem_type
            feeds[value.name] = proxy
        scope = _Captured(self.scope, child)
        env = run_graph(graph, feeds, self.opsets, child, self.info, scope)
        child.output(tuple(child.result(env[o.name]) for o in graph.output))
        module = child.module("Subgraph")
        path = self.builder.add_module(f"{self.name.lstrip('/').replace('/', '_')}_{label}", module)
        return fx.Proxy(self.builder.graph.get_attr(path), self.builder.tracer), [self.scope[n] for n in scope.captured]


# runtime.py's parameters that are read as Python ints (axes, sizes, pads): a constant given as a
# tensor is passed as a list instead, so that the converted graph does not read a buffer's values
# when it runs (torch.export cannot: they are data to it, "data-dependent expression u0").
_INT_PARAMETERS = frozenset({"axis", "axes", "k", "starts", "ends", "steps", "shape", "pads", "repeats", "sizes"})


def _parameters_inlined(fn: Callable, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return args, kwargs

    def inline(name, value):
        if name in _INT_PARAMETERS and isinstance(value, torch.Tensor) and not value.is_floating_point() \
                and value.dim() <= 1 and value.numel() <= 64:
            return [int(v) for v in value.reshape(-1).tolist()]
        return value
    args = tuple(inline(names[i] if i < len(names) else None, value) for i, value in enumerate(args))
    return args, {name: inline(name, value) for name, value in kwargs.items()}


class _Captured(Mapping):
    """The enclosing graph's values as a subgraph module sees them: constants as they are, traced
    values as extra inputs of the subgraph module (added when first read)."""

    def __init__(self, outer: Mapping[str, Any], child: Builder):
        self.outer = outer
        self.child = child
        self.captured: dict[str, Any] = {}

    def __getitem__(self, name: str):
        if name in self.captured:
            return self.captured[name]
        value = self.outer[name]
        if isinstance(value, ShapeValue):  # a folded shape: made a tensor in the enclosing graph
            if value.static:
                return value.tensor()
            value = self.child.parent.call_function(sizes_tensor, (list(value.items), value.scalar))
        if not _holds_traced(value):
            return value
        graph = self.child.graph
        placeholders = [node for node in graph.nodes if node.op == "placeholder"]
        # Placeholders stay first (an fx graph's arguments); None inserts at the very beginning.
        with (graph.inserting_after(placeholders[-1]) if placeholders else graph.inserting_before(None)):
            proxy = fx.Proxy(graph.placeholder(self.child.unique(identifier(name, "outer"))),
                             self.child.tracer)
        for key in ("onnx_type", "shape"):
            if _meta(value, key) is not None:
                proxy.node.meta[key] = _meta(value, key)
        self.captured[name] = proxy
        return proxy

    def __contains__(self, name) -> bool:
        return name in self.captured or name in self.outer

    def __iter__(self):
        return iter(self.outer)

    def __len__(self) -> int:
        return len(self.outer)


def _holds_traced(value) -> bool:
    """Whether ``value`` is, or a (nested) list or tuple holds, a traced value."""
    if isinstance(value, (list, tuple)):
        return any(_holds_traced(item) for item in value)
    return is_traced(value)


class _Values(dict):
    """A graph's values by name, falling back on the enclosing graph's (read lazily: a subgraph
    module captures only what it reads)."""

    def __init__(self, outer: Mapping[str, Any] | None):
        super().__init__()
        self.outer = outer or {}

    def __missing__(self, name: str):
        return self.outer[name]

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name) or name in self.outer


def scope_path(name: str) -> str:
    """A module path from a node name. PyTorch's exporters name nodes by module scope and op,
    ``/layer1/layer1.0/conv1/Conv``: each scope is a module's name, sometimes qualified by its
    parent's (``layer1.0`` under ``layer1``); the path is ``layer1.0.conv1``. Other names are
    kept (dots would nest modules, so they become underscores)."""
    if "/" not in name:
        return name.replace(".", "_") or "node"
    path: list[str] = []
    for scope in [part for part in name.split("/") if part][:-1]:  # the last part is the op
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    return ".".join(path) or name.strip("/").replace("/", "_").replace(".", "_")


def _meta(value, key: str):
    return value.node.meta.get(key) if is_traced(value) else None


def check_supported(graph, opsets: "int | Opsets") -> None:
    """Resolve every node's handler first: an unsupported op is reported before any work, naming
    the op, the opset and the node."""
    for node in graph.node:
        OPS.handler(node.op_type, domain=node.domain or "", opset=domain_opset(opsets, node.domain or ""),
                    where=f"node {node.name or node.op_type!r}",
                    hint="see docs/onnx-torch-coverage.md for the ops and opsets that convert")


def run_graph(graph, feeds: Mapping[str, Any], opsets: "int | Opsets", builder: Builder, info: StaticInfo,
              scope: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Translate ``graph``'s nodes in order: feeds and outer values by name in, every value out."""
    from onnx import numpy_helper
    from .dtypes import tensor_from_numpy
    env = _Values(scope)
    for init in graph.initializer:
        tensor = tensor_from_numpy(numpy_helper.to_array(init), init.data_type)
        builder.name(tensor, init.name)
        env[init.name] = tensor
    env.update(feeds)
    for node in graph.node:
        domain = node.domain or ""
        opset = domain_opset(opsets, domain)
        handler = OPS.handler(node.op_type, domain=domain, opset=opset, where=f"node {node.name or node.op_type!r}")
        missing = [name for name in node.input if name and name not in env]
        if missing:
            raise UnsupportedOpError(node.op_type, opset, where=f"node {node.name!r}: inputs {missing} are not computed")
        inputs = [env[name] if name else None for name in node.input]
        ctx = NodeContext(node, decode_attributes(node), opset, builder, info, opsets, env, inputs)
        outputs = fold_shapes(ctx, domain, inputs)
        if outputs is not None:
            env[node.output[0]] = outputs
            continue
        inputs = ctx.inputs
        if not handler.fold:
            ctx.fold = False
            inputs = [builder.lift(value) for value in inputs]
        outputs = handler(ctx, *inputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        for name, value in zip(node.output, outputs):
            if not name:
                continue
            if is_traced(value):
                value.node.meta.setdefault("onnx_type", info.types.get(name))
                if name in info.shapes:
                    value.node.meta.setdefault("shape", info.shapes[name])
            elif isinstance(value, torch.Tensor):
                builder.name(value, name)
            env[name] = value
    return env
