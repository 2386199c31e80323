"""Reading MXNet models without MXNet: the symbol JSON graph and the NDArray ``.params`` file.

Symbol JSON comes in two layouts: MXNet before 0.9 wrote ``param`` per node (and
``backward_source_id``), later versions ``attrs`` (or ``attr``) plus ``node_row_ptr`` and a
top-level ``attrs`` with the MXNet version. Both list nodes in topological order, each input as
``[node, output index(, version)]``, and the outputs in ``heads``.

``.params`` is MXNet's NDArray list: a uint64 magic 0x112, a reserved uint64, the arrays, then
their names (``arg:NAME`` for learned parameters, ``aux:NAME`` for BatchNorm's moving
statistics). Each array starts with a uint32 that is either the V2/V3 magic (then a storage type
and an int64 shape) or, in the legacy layout, the rank itself (then uint32 dims).
"""
from __future__ import annotations

import ast
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import InvalidModelError, UsageError
from ..base import folder_pair

LIST_MAGIC = 0x112
ND_V2_MAGIC = 0xF993FAC9
ND_V3_MAGIC = 0xF993FACA
# mshadow type flags -> numpy
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64,
          7: np.bool_}
# Loss layers take their training label as a second input; at inference it is not fed.
LOSS_OPS = {"SoftmaxOutput", "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput",
            "SVMOutput"}
# Older and alternative spellings of operators -> the name MXNet 1.x registers them under (MXNet
# upgrades old symbols the same way when it loads them); handlers know the canonical names only.
ALIASES = {
    "_Plus": "elemwise_add", "_plus": "elemwise_add", "_add": "elemwise_add", "broadcast_plus": "broadcast_add",
    "_Minus": "elemwise_sub", "_minus": "elemwise_sub", "_sub": "elemwise_sub", "broadcast_minus": "broadcast_sub",
    "_Mul": "elemwise_mul", "_mul": "elemwise_mul", "_Div": "elemwise_div", "_div": "elemwise_div",
    "_Maximum": "_maximum", "_Minimum": "_minimum", "_Power": "_power",
    "_PlusScalar": "_plus_scalar", "_MinusScalar": "_minus_scalar", "_RMinusScalar": "_rminus_scalar",
    "_MulScalar": "_mul_scalar", "_DivScalar": "_div_scalar", "_RDivScalar": "_rdiv_scalar",
    "_MaximumScalar": "_maximum_scalar", "_MinimumScalar": "_minimum_scalar", "_PowerScalar": "_power_scalar",
    "_RPowerScalar": "_rpower_scalar",
    "Convolution_v1": "Convolution", "Pooling_v1": "Pooling", "BatchNorm_v1": "BatchNorm",
    "CuDNNBatchNorm": "BatchNorm", "Softmax": "SoftmaxOutput", "flatten": "Flatten", "concat": "Concat",
    "reshape": "Reshape", "split": "SliceChannel", "crop": "slice", "add_n": "ElementWiseSum",
    "sum_axis": "sum", "max_axis": "max", "min_axis": "min", "stop_gradient": "BlockGrad", "identity": "_copy",
}
# Names MXNet gives learned parameters: a null node so named that the .params lacks is a missing
# parameter, not an input to feed.
PARAMETER_SUFFIXES = ("_weight", "_bias", "_gamma", "_beta", "_moving_mean", "_moving_var", "_running_mean",
                      "_running_var", "_alpha")


class Attrs(dict):
    """A node's attributes, all strings in the JSON, read as the types MXNet parses them to."""

    def text(self, key: str, default: str | None = None) -> str | None:
        return self.get(key, default)

    def int(self, key: str, default: int | None = None) -> int | None:
        value = self.get(key)
        return default if value in (None, "None") else int(float(value))

    def float(self, key: str, default: float | None = None) -> float | None:
        value = self.get(key)
        return default if value in (None, "None") else float(value)

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        return value.strip().lower() in ("true", "1")

    def tuple(self, key: str, default: tuple = ()) -> tuple:
        """``(3, 3)``, ``[3,3]``, ``3`` or ``(None, 2)`` -> a tuple (None kept)."""
        value = self.get(key)
        if value in (None, "", "None"):
            return tuple(default)
        parsed = ast.literal_eval(value.strip())
        return tuple(parsed) if isinstance(parsed, (tuple, list)) else (parsed,)

    def ints(self, key: str, default: tuple = ()) -> tuple[int, ...]:
        return tuple(int(v) for v in self.tuple(key, default))


@dataclass
class Node:
    index: int
    name: str
    op: str
    attrs: Attrs
    inputs: list[tuple[int, int]]  # (node index, output index)

    @property
    def is_variable(self) -> bool:
        return self.op == "null"


@dataclass
class MXNetNet:
    name: str
    nodes: list[Node]
    heads: list[tuple[int, int]]
    params: dict[str, np.ndarray]       # arg: and aux: names without their prefix
    inputs: list[str]                   # variables to feed
    labels: list[str]                   # loss layers' label variables, not fed at inference
    version: str | None = None
    output_names: list[str] = field(default_factory=list)

    def op_counts(self) -> dict[str, int]:
        from collections import Counter
        return dict(sorted(Counter(n.op for n in self.nodes if not n.is_variable).items()))


def _visible_outputs(node: Node) -> int:
    """How many outputs a node shows (the names list_outputs() gives): one, except splits."""
    if node.op == "SliceChannel":
        return node.attrs.int("num_outputs", 1)
    return 1


def output_name(node: Node, index: int) -> str:
    """MXNet's name for a head: ``NAME_output`` (``NAME_output{i}`` for several), a variable's own name."""
    if node.is_variable:
        return node.name
    return f"{node.name}_output" if _visible_outputs(node) == 1 else f"{node.name}_output{index}"


def read_symbol(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidModelError(f"no such file: {str(path)!r}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModelError(f"{path.name!r} is not an MXNet symbol file: {exc}",
                                hint="give the NAME-symbol.json that model.save_checkpoint wrote") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or "heads" not in data:
        raise InvalidModelError(f"{path.name!r} is JSON but not an MXNet symbol (no 'nodes' and 'heads')")
    return data


def parse_nodes(data: dict[str, Any], where: str) -> tuple[list[Node], list[tuple[int, int]]]:
    nodes = []
    for index, raw in enumerate(data["nodes"]):
        try:
            attrs = raw.get("attrs") or raw.get("attr") or raw.get("param") or {}
            inputs = [(int(entry[0]), int(entry[1])) for entry in raw.get("inputs", [])]
            op = ALIASES.get(str(raw["op"]), str(raw["op"]))
            node = Node(index, str(raw["name"]), op, Attrs({k: str(v) for k, v in attrs.items()}), inputs)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidModelError(f"{where}: node {index} is malformed ({type(exc).__name__}: {exc})") from None
        bad = [i for i, _ in node.inputs if not 0 <= i < index]
        if bad:
            raise InvalidModelError(f"{where}: node {node.name!r} reads node {bad[0]}, which does not come before it",
                                    hint="the symbol file is damaged (nodes must be in topological order)")
        nodes.append(node)
    heads = [(int(h[0]), int(h[1])) for h in data["heads"]]
    if not heads or any(not 0 <= i < len(nodes) for i, _ in heads):
        raise InvalidModelError(f"{where}: its 'heads' (the outputs) name no node of the graph")
    return nodes, heads


def read_params(path: str | Path) -> dict[str, np.ndarray]:
    """The NDArray list file as {``arg:NAME``/``aux:NAME``: array}."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise InvalidModelError(f"no such file: {str(path)!r}") from None
    reader = _Reader(blob, path.name)
    magic, _reserved = reader.unpack("<QQ")
    if magic != LIST_MAGIC:
        raise InvalidModelError(f"{path.name!r} is not an MXNet .params file (magic {magic:#x}, expected 0x112)",
                                hint="give the NAME-EPOCH.params that model.save_checkpoint wrote")
    count, = reader.unpack("<Q")
    if count > len(blob):
        raise InvalidModelError(f"{path.name!r} is damaged: it claims {count} arrays")
    arrays = [_read_ndarray(reader) for _ in range(count)]
    names_count, = reader.unpack("<Q")
    if names_count not in (0, count):
        raise InvalidModelError(f"{path.name!r} has {count} arrays but {names_count} names")
    names = []
    for _ in range(names_count):
        length, = reader.unpack("<Q")
        names.append(reader.take(length).decode("utf-8", errors="replace"))
    if not names:
        raise InvalidModelError(f"{path.name!r} holds unnamed arrays (an nd.save list), not a model's parameters")
    return dict(zip(names, arrays))


class _Reader:
    def __init__(self, blob: bytes, name: str):
        self.blob, self.name, self.offset = blob, name, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.offset + size > len(self.blob):
            raise InvalidModelError(f"{self.name!r} is truncated (needed {size} bytes at offset {self.offset}, "
                                    f"the file has {len(self.blob)})", hint="download or copy the file again")
        chunk = self.blob[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def _read_ndarray(reader: _Reader) -> np.ndarray:
    first, = reader.unpack("<I")
    if first in (ND_V2_MAGIC, ND_V3_MAGIC):
        stype, = reader.unpack("<i")
        if stype not in (0, -1):  # default (dense) storage
            raise InvalidModelError(f"{reader.name!r} holds a sparse array (storage type {stype}); "
                                    "only dense parameters are supported", hint="save the model with dense arrays")
        ndim, = reader.unpack("<i")
        shape = reader.unpack(f"<{ndim}q") if ndim > 0 else ()
    else:  # legacy: the rank, then uint32 dims
        ndim = first
        if ndim > 32:
            raise InvalidModelError(f"{reader.name!r} is damaged: an array of rank {ndim}")
        shape = reader.unpack(f"<{ndim}I") if ndim else ()
    if ndim == 0 or (first in (ND_V2_MAGIC, ND_V3_MAGIC) and ndim < 0):
        return np.zeros((0,), np.float32)
    _dev_type, _dev_id, type_flag = reader.unpack("<iii")
    dtype = DTYPES.get(type_flag)
    if dtype is None:
        raise InvalidModelError(f"{reader.name!r} holds an array of unknown type flag {type_flag}")
    count = int(np.prod(shape))
    data = reader.take(count * np.dtype(dtype).itemsize)
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def resolve_pair(source: str | Path, weights: str | Path | None = None) -> tuple[Path, Path]:
    """(symbol JSON, .params) from a symbol + --weights, a folder holding one pair, a symbol with
    its NAME-EPOCH.params beside it, or a .params with its NAME-symbol.json beside it."""
    source = Path(source)
    if source.is_dir():
        symbols = sorted(source.glob("*-symbol.json")) or sorted(source.glob("*.json"))
        params = sorted(source.glob("*.params"))
        return folder_pair(source, symbols, params, weights, "one MXNet NAME-symbol.json and one .params",
                           hint="give the symbol file and --weights NAME-EPOCH.params explicitly")
    if source.suffix == ".params":
        if weights is not None:
            raise UsageError("give the NAME-symbol.json as the model and the .params as --weights")
        prefix = source.stem.rsplit("-", 1)[0]
        symbol = source.with_name(f"{prefix}-symbol.json")
        if not symbol.is_file():
            raise UsageError(f"no {symbol.name!r} beside {source.name!r}: MXNet parameters need their symbol file",
                             hint="pass NAME-symbol.json as the model and this file as --weights")
        return symbol, source
    if weights is not None:
        return source, Path(weights)
    prefix = source.name[:-len("-symbol.json")] if source.name.endswith("-symbol.json") else source.stem
    beside = sorted(source.parent.glob(f"{prefix}-*.params"))
    if len(beside) == 1:
        return source, beside[0]
    if beside:
        raise UsageError(f"{len(beside)} parameter files beside {source.name!r} "
                         f"({', '.join(p.name for p in beside[:4])}): which epoch?",
                         hint="pass --weights NAME-EPOCH.params")
    raise UsageError(f"{source.name!r} defines the network but its parameters are missing",
                     hint="pass --weights NAME-EPOCH.params")


def read_net(symbol_path: Path, params_path: Path) -> MXNetNet:
    data = read_symbol(symbol_path)
    nodes, heads = parse_nodes(data, symbol_path.name)
    raw = read_params(params_path)
    params = {}
    for key, value in raw.items():
        kind, _, name = key.partition(":")
        params[name if kind in ("arg", "aux") and name else key] = value
    labels = sorted({nodes[node.inputs[1][0]].name for node in nodes
                     if node.op in LOSS_OPS and len(node.inputs) > 1 and nodes[node.inputs[1][0]].is_variable})
    inputs, missing = [], []
    for node in nodes:
        if not node.is_variable or node.name in params or node.name in labels:
            continue
        (missing if node.name.endswith(PARAMETER_SUFFIXES) else inputs).append(node.name)
    if missing:
        raise InvalidModelError(f"{params_path.name!r} has no value for {', '.join(map(repr, missing[:5]))}"
                                f"{' and more' if len(missing) > 5 else ''}, which {symbol_path.name!r} uses",
                                hint="the .params does not belong to this symbol (another model or epoch?)")
    if not inputs:
        raise InvalidModelError(f"{symbol_path.name!r} has no input: every variable has a value in the .params")
    version = (data.get("attrs") or {}).get("mxnet_version")
    if isinstance(version, list) and len(version) == 2:
        number = int(version[1])
        version = f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    elif "param" in (data["nodes"][0] if data["nodes"] else {}):
        version = "before 0.9 (legacy JSON)"
    name = symbol_path.name[:-len("-symbol.json")] if symbol_path.name.endswith("-symbol.json") else symbol_path.stem
    net = MXNetNet(name, nodes, heads, params, inputs, labels, version if isinstance(version, str) else None)
    net.output_names = [output_name(nodes[i], k) for i, k in heads]
    return net


def input_shapes(net: MXNetNet, given: Sequence | None) -> dict[str, tuple[int, ...]]:
    """The concrete shape of each input, from --input-shape (a bare shape goes to a lone input) or
    from a ``__shape__`` attribute the symbol may carry."""
    by_name = {}
    for spec in given or ():
        if spec.shape is None or any(d is None for d in spec.shape):
            raise UsageError(f"--input-shape {spec.name}: MXNet symbols need every size (dynamic dims are not "
                             "supported; the batch stays dynamic in the ONNX model anyway)")
        by_name[spec.name] = tuple(int(d) for d in spec.shape)
    positional = [n for n in by_name if n.startswith("input_") and n not in net.inputs]
    if positional and len(net.inputs) == len(by_name):
        by_name = dict(zip(net.inputs, by_name.values()))
    unknown = [n for n in by_name if n not in net.inputs]
    if unknown:
        raise UsageError(f"--input-shape names {', '.join(map(repr, unknown))}, not an input of this symbol",
                         hint=f"its inputs are {', '.join(map(repr, net.inputs))}")
    for node in net.nodes:
        if node.is_variable and node.name in net.inputs and node.name not in by_name and "__shape__" in node.attrs:
            shape = node.attrs.ints("__shape__")
            if shape and all(d > 0 for d in shape):
                by_name[node.name] = shape
    missing = [n for n in net.inputs if n not in by_name]
    if missing:
        raise UsageError(f"MXNet symbols record no input shapes: give {', '.join(map(repr, missing))} one",
                         hint=f"e.g. --input-shape {missing[0]}:1,3,224,224")
    return by_name
