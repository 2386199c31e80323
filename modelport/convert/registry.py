"""Converter edges between formats, and the planner that chains them.

An edge is registered with ``@converter("keras", "onnx")`` on a function
``(source: Session, dst: Path, options: ConvertOptions) -> EdgeOutput`` that writes ``dst`` and hands
back what else it produced (a plain Path return means nothing else).
The pipeline (pipeline.py) opens sessions, stages outputs atomically and checks parity; edges only
transform.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import NoConversionPathError, UsageError
from ..tensors import TensorSpec


@dataclass
class ConvertOptions:
    """What the user asked for; each edge reads the fields it understands."""

    opset: int | None = None
    input_specs: Sequence[TensorSpec] | None = None
    dynamic_batch: bool = True
    dims: Mapping[str, int] | None = None  # --dim: sizes for tracing dynamic dims, by dim or input name
    preprocessing: Any = None  # Caffe: mean/scale/channel order (recorded in the ONNX metadata)
    bake_preprocessing: bool = False  # Caffe: ... and put in front of the graph as ops
    io_layout: str | None = None  # ONNX -> TensorFlow: "nchw" (ONNX's signature) or "nhwc"
    as_code: bool = False  # ONNX -> PyTorch: also write NAME.py and NAME.pth
    dtype: str | None = None  # hf-onnx, OpenVINO: "fp16" writes half precision weights (DTYPES)

    @classmethod
    def edge_fields(cls) -> frozenset[str]:
        """The options only some edges read (convert()'s ``edge_options`` keys)."""
        return frozenset({"preprocessing", "bake_preprocessing", "io_layout", "as_code", "dtype"})


# The --dtype values, and the targets whose edges read it.
DTYPES = ("fp32", "fp16")
DTYPE_TARGETS = ("hf-onnx", "openvino")


def check_dtype(dtype: str, target: str) -> str:
    """``--dtype`` for a conversion to ``target``: UsageError unless the target's edge reads it and
    knows the value."""
    if target not in DTYPE_TARGETS:
        raise UsageError(f"--dtype goes with --to {' or '.join(DTYPE_TARGETS)} (a Hugging Face model folder exported "
                         "with its cache, an OpenVINO IR)")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r}: one of {', '.join(DTYPES)}")
    return dtype


@dataclass
class EdgeOutput:
    """What an edge hands back beside the artifact it wrote at ``dst``."""

    exporter: str | None = None  # which exporter or tool wrote it ("dynamo", "onnxslim 0.1")
    note: str | None = None  # what the user may want to know about the work ("120 -> 96 nodes")
    warnings: list[str] = field(default_factory=list)  # what changed from what was asked
    # "NCHW:NHWC" when the artifact takes its inputs in another layout: the hop's check transposes
    input_layout: str | None = None
    # files written beside the artifact in its staging folder, committed with it under their names
    companions: list[Path] = field(default_factory=list)


EdgeFunction = Callable[..., "EdgeOutput | Path"]


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    func: EdgeFunction
    description: str
    # For edges that write ONNX: () -> (lowest, highest) opset they can write, asked only when the
    # user gives --opset (it may import the exporter).
    opsets: Callable[[], tuple[int, int]] | None = None
    # Options the source Session must be opened with for this edge (a TFLite source keeps its
    # integer io: the ONNX model does too, so both are compared on the same integers).
    source_options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"


EDGES: dict[tuple[str, str], Edge] = {}


def converter(src: str, dst: str, description: str = "", *, opsets: Callable[[], tuple[int, int]] | None = None,
              source_options: dict | None = None) -> Callable[[EdgeFunction], EdgeFunction]:
    """Register ``func`` as the edge ``src -> dst`` (``opsets``: the ONNX opsets it can write;
    ``source_options``: how its source Session must be opened)."""
    def register(func: EdgeFunction) -> EdgeFunction:
        EDGES[(src, dst)] = Edge(src, dst, func, description or (func.__doc__ or "").strip().splitlines()[0], opsets,
                                 dict(source_options or {}))
        return func
    return register


def check_opset(chain: Sequence[Edge], opset: int | None) -> None:
    """Refuse an --opset that an edge of the chain cannot write, naming the range it can."""
    if opset is None:
        return
    for edge in chain:
        if edge.opsets is None:
            continue
        low, high = edge.opsets()
        if not low <= opset <= high:
            raise UsageError(f"--opset {opset}: {edge.name} writes ONNX opsets {low} to {high}",
                             hint=f"pass an --opset from {low} to {high}, or leave it out for the default")


def plan(src: str, dst: str, via: Sequence[str] | None = None) -> list[Edge]:
    """The shortest chain of edges from ``src`` to ``dst``; a chain the user spells out is kept as is."""
    if via:
        stops = [src, *via, dst]
        missing = [f"{a}->{b}" for a, b in zip(stops, stops[1:]) if (a, b) not in EDGES]
        if missing:
            raise NoConversionPathError(f"--via asks for edges that do not exist: {', '.join(missing)}",
                                        hint="available edges: " + ", ".join(e.name for e in EDGES.values()))
        return [EDGES[(a, b)] for a, b in zip(stops, stops[1:])]
    if src == dst:
        raise UsageError(f"source and target are both {src}; nothing to convert")
    previous: dict[str, Edge | None] = {src: None}
    queue = deque([src])
    while queue:
        here = queue.popleft()
        for (a, b), edge in sorted(EDGES.items()):
            if a == here and b not in previous:
                previous[b] = edge
                queue.append(b)
    if dst not in previous:
        raise NoConversionPathError(f"no conversion path from {src} to {dst}",
                                    hint="available edges: " + ", ".join(e.name for e in EDGES.values()))
    chain: list[Edge] = []
    node = dst
    while previous[node] is not None:
        edge = previous[node]
        chain.append(edge)
        node = edge.src
    return chain[::-1]
