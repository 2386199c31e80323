"""MXNet models (NAME-symbol.json + NAME-EPOCH.params), read without MXNet.

MXNet went to the Apache attic in 2023 and its last release needs numpy < 1.24, so models are
read by our own parser and run by modelport's interpreter (reference.py: each operator in
PyTorch, held to real MXNet's outputs by the tests).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedOpError, UsageError
from ...tensors import TensorSpec
from ..base import Format, Probe, Session, register_format
from ..detect import is_text


class MXNetSession(Session):
    format_name = "mxnet"
    flexible_batch = True  # the interpreter runs any batch; shapes come from --input-shape

    def __init__(self, source, *, weights=None, input_specs=None, **_ignored):
        from .parser import read_net, resolve_pair
        symbol, params = resolve_pair(source, weights)
        super().__init__(symbol)
        self.symbol_path, self.params_path = symbol, params
        self.net = read_net(symbol, params)
        self._given = list(input_specs or [])
        self._shapes: dict[str, tuple[int, ...]] | None = None
        try:
            known = self.shapes
        except UsageError:  # no shapes yet: `info` shows the inputs without them; convert asks for them
            known = {}
        self.inputs = [TensorSpec(n, (None, *known[n][1:]) if n in known else None, np.float32)
                       for n in self.net.inputs]
        self.outputs = [TensorSpec(n, None, np.float32) for n in self.net.output_names]
        if known:  # one run on zeros tells the output shapes
            try:
                probe = self._run({n: np.zeros(known[n], np.float32) for n in self.net.inputs})
            except UnsupportedOpError as missing:  # converting may still work; checking will say it cannot
                self.warnings.append(f"output shapes unknown: {missing.message}")
            else:
                self.outputs = [TensorSpec(n, (None, *probe[n].shape[1:]), np.float32)
                                for n in self.net.output_names]

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each input's concrete shape (from --input-shape or the symbol); UsageError when unknown."""
        if self._shapes is None:
            from .parser import input_shapes
            self._shapes = input_shapes(self.net, self._given)
        return self._shapes

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .reference import run_net
        return run_net(self.net, {n: np.asarray(v, np.float32) for n, v in feeds.items()})

    def describe(self) -> dict[str, Any]:
        return {"symbol": str(self.symbol_path), "params": str(self.params_path),
                "operators": self.net.op_counts(), "parameters": int(sum(v.size for v in self.net.params.values())),
                "mxnet_version": self.net.version or "not recorded",
                "runtime": "modelport's MXNet interpreter (PyTorch)"}


def open_mxnet(source, **options) -> MXNetSession:
    return MXNetSession(source, **options)


PARAMS_MAGIC = (0x112).to_bytes(8, "little")


def sniff_mxnet(probe: Probe) -> str | None:
    path = probe.path
    if probe.is_dir:
        if any(path.glob("*-symbol.json")) and any(path.glob("*.params")):
            return "a folder with an MXNet symbol and parameters"
        return None
    if probe.head.startswith(PARAMS_MAGIC) and path.suffix == ".params":
        return "an MXNet NDArray parameter file"
    if path.suffix == ".json" and is_text(probe.head):
        text = probe.text()
        if text.lstrip().startswith(b"{") and b'"nodes"' in text and b'"op"' in text and b'"null"' in text:
            return "an MXNet symbol graph"
    return None


register_format(Format("mxnet", "MXNet symbol + params", (".params",), open_mxnet, sniff_mxnet, extra="torch",
                       runtime_modules=("torch",), open_options=frozenset({"weights", "input_specs"})))
