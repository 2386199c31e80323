"""The layering the architecture asks for, read from the source: layers point down, validate/
imports no framework, and no two modules import each other (directly or around a loop)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "modelport"
FRAMEWORKS = {"torch", "tensorflow", "keras", "onnxruntime", "onnx", "cv2", "tf2onnx", "ai_edge_litert", "jax"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if not p.name.endswith("_pb2.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module this one imports, at any depth of the file (lazy imports count too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # "from . import layers": the submodule when it is one
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_formats_do_not_import_convert():
    offenders = {m: sorted(i for i in deps if i.startswith("modelport.convert"))
                 for m, deps in _graph().items() if m.startswith("modelport.formats")}
    assert not {m: d for m, d in offenders.items() if d}


def test_validate_imports_neither_convert_nor_a_framework():
    offenders = {}
    for module, deps in _graph().items():
        if module.startswith("modelport.validate"):
            bad = sorted(d for d in deps if d.startswith("modelport.convert") or d.split(".")[0] in FRAMEWORKS)
            if bad:
                offenders[module] = bad
    assert not offenders, offenders


def test_serve_runs_models_only_through_formats():
    """serve/ opens and runs every model through formats/ Sessions: no framework, no converter."""
    offenders = {}
    for module, deps in _graph().items():
        if module.startswith("modelport.serve"):
            bad = sorted(d for d in deps if d.startswith(("modelport.convert", "modelport.edge", "modelport.validate"))
                         or d.split(".")[0] in FRAMEWORKS)
            if bad:
                offenders[module] = bad
    assert not offenders, offenders


def test_no_import_cycles():
    graph = _graph()
    internal = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}

    def is_package_of(parent: str, child: str) -> bool:
        # A package's __init__ importing its own submodules (to register them) is not a cycle
        # with a submodule importing a sibling through it.
        return child.startswith(parent + ".")

    cycles = []
    for start in internal:
        stack = [(start, [start])]
        seen = set()
        while stack:
            here, path = stack.pop()
            for nxt in internal[here]:
                if is_package_of(nxt, here) or is_package_of(here, nxt):
                    continue
                if nxt == start:
                    cycles.append(path + [start])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not cycles, sorted({" -> ".join(c) for c in cycles})[:10]
