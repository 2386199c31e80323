"""``--as-code``: the converted module as Python source a user can read and edit, and its weights.

``NAME.py`` defines ``class NAME(nn.Module)``: its layers built in ``__init__`` (the same torch.nn
modules, parameters and buffers the GraphModule holds), and the GraphModule's forward. The
functions of runtime.py (and the other handler modules) that the forward calls are copied in,
with what they use, so the file needs only torch (a function reading one of modelport's own
tables, the narrow float types', imports that table from modelport instead). ``NAME.pth`` holds the state_dict, read back with
``torch.load(..., weights_only=True)``; the module docstring says how.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import re
import textwrap
import types
from pathlib import Path

import torch
import torch.fx as fx

_HEADER = '''"""{name}: converted from ONNX by modelport ({source}).

    import torch
    from {module} import {name}
    model = {name}()
    model.load_state_dict(torch.load("{weights}", weights_only=True))

Edit freely: the layers are ordinary torch.nn modules, forward() is plain PyTorch.
"""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
'''


def class_name(stem: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", stem)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Model"
    return f"Model{name}" if name[0].isdigit() or keyword.iskeyword(name) else name


class _Source:
    """The helper functions and constants the generated forward needs, each emitted once."""

    def __init__(self):
        self.blocks: list[str] = []
        self.names: dict[int, str] = {}  # id(object) -> its name in the file
        self.taken = set(dir(builtins)) | {"torch", "nn", "F", "math", "Any", "Callable", "List", "Optional"}

    def name_of(self, obj, wanted: str, home: tuple[str, str] | None = None) -> str:
        """The file's name for ``obj`` (emitted on first use); ``home`` (module, name) is where
        to import it from when it cannot be written as source (a table of modelport's own types)."""
        if id(obj) in self.names:
            return self.names[id(obj)]
        if obj is torch:
            return "torch"
        if isinstance(obj, types.FunctionType):
            # The forward names its values after the functions that made them (resize = ...):
            # a prefix keeps the functions' names apart, and says whose semantics they follow.
            wanted = "onnx_" + wanted.lstrip("_")
        name, index = wanted, 1
        while name in self.taken:
            index += 1
            name = f"{wanted}_{index}"
        self.taken.add(name)
        self.names[id(obj)] = name
        try:
            self.blocks.append(self._emit(obj, name))
        except ValueError:
            if home is None:
                raise
            self.blocks.append(f"from {home[0]} import {home[1]} as {name}")
        return name

    def _emit(self, obj, name: str) -> str:
        if isinstance(obj, types.FunctionType):
            return self._function(obj, name)
        if isinstance(obj, types.ModuleType):
            return f"import {obj.__name__} as {name}" if obj.__name__ != name else f"import {obj.__name__}"
        if isinstance(obj, (int, float, str, bool, type(None), dict, list, tuple)) and _literal(obj):
            return f"{name} = {obj!r}"
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if module and qualname and "." not in qualname:
            return f"from {module} import {qualname} as {name}"
        raise ValueError(f"cannot write {obj!r} as source")

    def _function(self, fn: types.FunctionType, name: str) -> str:
        """``fn``'s source under ``name``, with the module-level names it reads emitted first."""
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        definition = tree.body[0]
        definition.decorator_list = []
        package = fn.__module__.rsplit(".", 1)[0]
        for node in ast.walk(definition):  # imports inside the body, made absolute
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                node.module, node.level = f"{base}.{node.module}" if node.module else base, 0
        renames: dict[str, str] = {definition.name: name}
        local = {arg.arg for arg in ast.walk(definition) if isinstance(arg, ast.arg)}
        local |= {t.id for t in ast.walk(definition) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        for node in ast.walk(definition):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
                if node.id in fn.__globals__ and node.id not in renames:
                    value = fn.__globals__[node.id]
                    if value is fn:
                        continue
                    if isinstance(value, types.ModuleType) and value.__name__ in ("torch", "math"):
                        continue
                    if value is torch.nn.functional or value is torch.nn:
                        continue
                    if node.id in ("Any", "Callable", "List", "Optional"):
                        continue
                    renames[node.id] = self.name_of(value, node.id.lstrip("_") or "helper", (fn.__module__, node.id))
        for node in ast.walk(definition):
            if isinstance(node, ast.Name) and node.id in renames:
                node.id = renames[node.id]
        definition.name = name
        return ast.unparse(definition)


def _literal(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def _constructor(module: torch.nn.Module) -> str:
    """Python creating an empty ``module`` like it: its repr, which for torch.nn's layers is their
    constructor call, with the dtype when it is not float32."""
    text = " ".join(repr(module).split())
    if not re.fullmatch(r"\w+\(.*\)", text) or "\n" in repr(module):
        raise ValueError(f"no constructor for {type(module).__name__}")
    dtype = next((p.dtype for p in module.parameters()), torch.float32)
    suffix = f".to({dtype})" if dtype != torch.float32 else ""
    return f"nn.{text}{suffix}"


def _class(module: fx.GraphModule, name: str, source: _Source, classes: list[str]) -> str:
    """The source of one class: layers, parameters, buffers and forward of a GraphModule."""
    lines = [f"class {name}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    for path, child in _leaves(module):
        if isinstance(child, fx.GraphModule):
            inner = name + "_" + re.sub(r"\W", "_", path)
            classes.append(_class(child, inner, source, classes))
            made = f"{inner}()"
        else:
            made = _constructor(child)
        lines.append(f"        _attach(self, {path!r}, {made})")
    for attr, param in module.named_parameters(recurse=False):
        lines.append(f"        self.{attr} = nn.Parameter(torch.empty({list(param.shape)}, dtype={param.dtype}))")
    for attr, buffer in module.named_buffers(recurse=False):
        lines.append(f"        self.register_buffer({attr!r}, torch.empty({list(buffer.shape)}, dtype={buffer.dtype}))")
    code = module.graph.python_code(root_module="self")
    forward = code.src.strip("\n")
    for global_name, value in code.globals.items():
        if global_name in ("__builtins__", "torch", "inf", "nan", "NoneType", "device", "fx_pytree", "pytree"):
            continue
        if re.search(rf"\b{re.escape(global_name)}\b", forward):
            owner = getattr(value, "__objclass__", None)
            if owner is not None and owner.__name__ in ("Tensor", "TensorBase"):  # torch.Tensor.t: said as it is
                spelled = f"torch.Tensor.{value.__name__}"
            else:
                spelled = source.name_of(value, getattr(value, "__name__", global_name))
            forward = re.sub(rf"\b{re.escape(global_name)}\b", spelled, forward)
    # fx frees each value after its last use (`;  x = None`); in source a reader edits, that is noise.
    forward = re.sub(r";\s+(?:\w+ = )+None$", "", forward, flags=re.MULTILINE)
    for constant in ("inf", "nan"):
        forward = re.sub(rf"(?<![\w.]){constant}(?![\w])", f"math.{constant}", forward)
    lines += ["", textwrap.indent(forward, "    ")]
    return "\n".join(lines)


def _leaves(module: torch.nn.Module):
    """(dotted path, module) of the layers to build: every module below the root that is not just
    a container for others (nested paths such as layer1.0.conv1 are attached as they are)."""
    for path, child in module.named_modules():
        if not path or (type(child) is torch.nn.Module):
            continue
        parts = path.split(".")
        if any(isinstance(module.get_submodule(".".join(parts[:i])), fx.GraphModule) for i in range(1, len(parts))):
            continue  # inside a subgraph module: built by its own class
        yield path, child


_ATTACH = '''

def _attach(root: nn.Module, path: str, module: nn.Module) -> None:
    """Add ``module`` at the dotted ``path`` below ``root``, making the containers on the way."""
    *parents, last = path.split(".")
    for part in parents:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    root.add_module(last, module)
'''


def write_code(module: fx.GraphModule, staged: Path, source_name: str) -> list[Path]:
    """Write ``<stem>.py`` and ``<stem>.pth`` beside ``staged`` (the .pt2 being written); their paths."""
    stem = staged.name[: -len(".pt2")] if staged.name.endswith(".pt2") else staged.stem
    name = class_name(stem)
    source = _Source()
    classes: list[str] = []
    main = _class(module, name, source, classes)
    module_name = stem if stem.isidentifier() else "model"
    text = "\n\n\n".join([_HEADER.format(name=name, source=source_name, module=module_name,
                                         weights=f"{stem}.pth").rstrip() + _ATTACH.rstrip(),
                          *source.blocks, *classes, main]) + "\n"
    compile(text, f"{stem}.py", "exec")  # a generator bug is caught here, not by the user
    code_path, weights_path = staged.with_name(f"{stem}.py"), staged.with_name(f"{stem}.pth")
    code_path.write_text(text)
    torch.save(module.state_dict(), weights_path)
    return [code_path, weights_path]
