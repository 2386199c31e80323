"""The version-aware op registry every graph converter uses.

A handler is registered under ``(domain, op_type, since)``: it translates that op from opset
``since`` on, until a handler with a higher ``since`` takes over. For ONNX sources the opset in
force is resolved with ``onnx.defs.get_schema`` (the schema version an opset import selects), so a
model at opset 17 gets the handler registered for the newest schema version <= 17. Graphs without
opsets (Caffe layer types) register with ``since=1`` under their own domain.

Every call through :meth:`OpRegistry.handler` is recorded in :data:`USED`; the test suite checks
that each registered handler ran at least once (``tests/conftest.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import UnsupportedOpError

# (registry, domain, op_type, since) of every handler resolved in this process.
USED: set[tuple[str, str, str, int]] = set()
REGISTRIES: list["OpRegistry"] = []


@dataclass(frozen=True)
class OpKey:
    domain: str
    op_type: str
    since: int


class OpRegistry:
    """Handlers of one converter, keyed by (domain, op type, since-version).

    Args:
        name: the converter this registry belongs to ("caffe", "onnx_tf", ...), for the test guard.
        title: the source framework as messages name it ("Caffe", "ONNX").
        versioned: resolve ONNX schema versions with ``onnx.defs`` (ONNX sources); without it the
            opset is ignored and ``since`` is 1.
    """

    def __init__(self, name: str, title: str, *, versioned: bool = True, default_domain: str = "",
                 handlers_module: str | None = None):
        self.name = name
        self.title = title
        self.versioned = versioned
        self.default_domain = default_domain
        self._handlers: dict[OpKey, Callable] = {}
        # The module whose import registers the handlers, imported on first use: a converter whose
        # handlers import their framework at module level stays free to register its edge.
        self._handlers_module = handlers_module
        REGISTRIES.append(self)

    def _load(self) -> None:
        if self._handlers_module is not None:
            module, self._handlers_module = self._handlers_module, None
            import importlib
            importlib.import_module(module)

    def register(self, *op_types: str, domain: str | None = None, since: int = 1) -> Callable[[Callable], Callable]:
        """Decorator: register the function as the handler of ``op_types`` from opset ``since`` on."""
        domain = self.default_domain if domain is None else domain

        def decorate(func: Callable) -> Callable:
            for op_type in op_types:
                self._handlers[OpKey(domain, op_type, since)] = func
            return func
        return decorate

    def keys(self) -> list[OpKey]:
        self._load()
        return sorted(self._handlers, key=lambda k: (k.domain, k.op_type, k.since))

    def op_types(self, domain: str | None = None) -> list[str]:
        self._load()
        domain = self.default_domain if domain is None else domain
        return sorted({k.op_type for k in self._handlers if k.domain == domain})

    def versions(self, op_type: str, domain: str | None = None) -> list[tuple[int, Callable]]:
        """(since, handler) pairs of one op, oldest first."""
        self._load()
        domain = self.default_domain if domain is None else domain
        return sorted(((k.since, f) for k, f in self._handlers.items() if k.domain == domain and k.op_type == op_type),
                      key=lambda pair: pair[0])

    def __contains__(self, op_type: str) -> bool:
        return bool(self.versions(op_type))

    def __iter__(self) -> Iterator[str]:
        return iter(self.op_types())

    def schema_version(self, op_type: str, domain: str, opset: int | None) -> int:
        """The ``since_version`` of the schema that ``opset`` selects (1 for unversioned registries)."""
        if not self.versioned or opset is None:
            return 1 if not self.versioned else 10 ** 6
        import onnx.defs
        try:
            return onnx.defs.get_schema(op_type, opset, domain).since_version
        except Exception:  # not an ONNX op in this domain (custom ops): registered versions decide
            return opset

    def handler(self, op_type: str, *, domain: str | None = None, opset: int | None = None,
                where: str | None = None, hint: str | None = None) -> Callable:
        """The handler for ``op_type`` at ``opset``; UnsupportedOpError (naming the op, opset and
        the supported ops) when there is none."""
        domain = self.default_domain if domain is None else domain
        wanted = self.schema_version(op_type, domain, opset)
        chosen = None
        for since, func in self.versions(op_type, domain):
            if since <= wanted:
                chosen = (since, func)
        if chosen is None:
            available = self.versions(op_type, domain)
            if available:
                hint = f"{op_type} is supported from opset {available[0][0]}; re-export at that opset or newer"
            raise UnsupportedOpError(op_type, opset if self.versioned else None, self.op_types(domain),
                                     where=where, framework=self.title, hint=hint)
        USED.add((self.name, domain, op_type, chosen[0]))
        return chosen[1]
