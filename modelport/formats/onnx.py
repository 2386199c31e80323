"""ONNX models, run by ONNX Runtime on the CPU."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, UnsupportedFormatError, first_line
from ..metadata import KERAS_LAYER_OUTPUTS, TORCH_NAME_SCOPES
from ..tensors import TensorSpec, ort_type_to_numpy
from .base import Format, Intermediate, Probe, Session, register_format
from .value_ranges import read_input_ranges

_STATIC_QUANT = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd"}
_DYNAMIC_QUANT = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}


def _dim(value) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def load_onnx_model(path: Path):
    """Parse an ONNX file; unparsable (truncated, corrupt) files become InvalidModelError.

    The ONNX checker's verdict is kept as ``model_check_error`` rather than enforced: ONNX Runtime
    runs graphs the checker rejects (nodes out of topological order, as some fp16 converters
    write them), and whether the runtime accepts a model is what matters here.
    """
    import onnx
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends all mean "bad file"
        raise InvalidModelError(
            f"{str(path)!r} is not a valid ONNX model: {first_line(exc)}",
            hint="the file may be truncated or corrupt; export it again") from exc
    return model


def check_model(model) -> str | None:
    import onnx
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        return first_line(exc)
    return None



def index_bounds(model) -> dict[str, int]:
    """Integer graph inputs that index a constant table (Gather on an initializer): their bound."""
    from onnx import helper
    tables = {init.name: tuple(init.dims) for init in model.graph.initializer}
    bounds: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[0] in tables:
            axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
            size = tables[node.input[0]][axis] if tables[node.input[0]] else None
            if size:
                bounds[node.input[1]] = min(bounds.get(node.input[1], size), size)
    return bounds


def session_options(threads: int = 0):
    """ONNX Runtime options for a session that serves as a reference: quiet, and computing what
    the graph says."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # ORT fuses DequantizeLinear(int4/uint4 weights) + MatMul into MatMulNBits and by default
    # then quantizes the activations to int8 (accuracy level 4): off by ~1e-1 from what the
    # graph says. A reference runtime computes what the graph says: fp32 accumulation (level 1).
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "1")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OnnxSession(Session):
    format_name = "onnx"
    intermediate_scheme = "onnx"

    def __init__(self, path: str | Path, *, providers: list[str] | None = None, threads: int = 0,
                 model=None, **_ignored):
        super().__init__(path)
        import onnxruntime as ort
        self.model = model if model is not None else load_onnx_model(self.path)
        options = session_options(threads)
        try:
            self._session = ort.InferenceSession(
                self.model.SerializeToString() if self.model.ByteSize() < 2**31 - 1 else str(self.path),
                options, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:
            problem = check_model(self.model)
            if problem is None:  # valid ONNX that the runtime cannot load: an op it has no kernel for
                raise InvalidModelError(
                    f"ONNX Runtime cannot load {str(path)!r}: {first_line(exc)}",
                    hint="the model is valid ONNX, but ONNX Runtime has no kernel for one of its ops "
                         "(a custom-domain op needs its library registered); modelport runs ONNX models "
                         "with ONNX Runtime") from exc
            raise InvalidModelError(
                f"{str(path)!r} is not a valid ONNX model: {problem}",
                hint="the file may be truncated or corrupt; export it again") from exc
        bounds = index_bounds(self.model)
        ranges = read_input_ranges(self.model)
        for value in [*self._session.get_inputs(), *self._session.get_outputs()]:
            try:
                ort_type_to_numpy(value.type)
            except ValueError:  # int4, float8, sequences, maps: no numpy array modelport can feed or compare
                raise UnsupportedFormatError(
                    f"{str(path)!r}: graph input/output {value.name!r} is {value.type}, which modelport cannot "
                    "feed or compare (it handles float, integer and bool tensors)",
                    hint="keep narrow types such as int4 or float8 inside the graph (quantize and dequantize "
                         "within it), and sequences or maps before the outputs") from None
        self.inputs = [TensorSpec(i.name, tuple(_dim(d) for d in i.shape), ort_type_to_numpy(i.type),
                                  dim_names=tuple(d if isinstance(d, str) else None for d in i.shape),
                                  index_bound=bounds.get(i.name), value_range=ranges.get(i.name))
                       for i in self._session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(_dim(d) for d in o.shape), ort_type_to_numpy(o.type))
                        for o in self._session.get_outputs()]

    def run_outputs(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """ONNX Runtime as is: the named outputs for feeds already of the right names and dtypes (a loop
        that feeds a graph its own outputs back, e.g. a decoder's cache, skips run()'s checks)."""
        return self._session.run(names, feeds)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {spec.name: np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype) for spec in self.inputs}
        names = [o.name for o in self.outputs]
        return dict(zip(names, self._session.run(names, feeds)))

    @property
    def precision(self) -> str:
        ops = {node.op_type for node in self.model.graph.node}
        if "MatMulNBits" in ops:  # blocked 4-bit weights (modelport quantize --mode int4-weights)
            return "int4-weights"
        if ops & _DYNAMIC_QUANT:
            return "uint8-weights"
        if ops & _STATIC_QUANT:
            return "int8"
        if any(init.data_type == 10 for init in self.model.graph.initializer):  # TensorProto.FLOAT16
            return "fp16"
        return super().precision

    @property
    def metadata(self) -> dict[str, str]:
        return {p.key: p.value for p in self.model.metadata_props}

    def run_with_intermediates(self, feeds, names=None) -> list[Intermediate]:
        """Every node output, computed as the graph says (no graph rewrites), in node order."""
        import onnxruntime as ort
        ordered = self.check_feeds(feeds)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(expose_all_tensors(self.model).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        exposed = [o.name for o in session.get_outputs()]
        typed = {i.name: ort_type_to_numpy(i.type) for i in session.get_inputs()}
        values = dict(zip(exposed, session.run(exposed, {k: np.asarray(v, dtype=typed[k]) for k, v in ordered.items()})))
        wanted = set(names) if names is not None else None
        return [Intermediate(out, values[out], {"node": node.name or f"#{i}", "op_type": node.op_type})
                for i, node in enumerate(self.model.graph.node) for out in node.output
                if out and out in values and (wanted is None or out in wanted)]

    def intermediate_names(self, scheme: str) -> dict[str, str]:
        if scheme == "torch-module":
            return torch_module_outputs(self.model)
        if scheme == "keras-layer":
            import json
            recorded = json.loads(self.metadata.get(KERAS_LAYER_OUTPUTS, "{}"))
            produced = {out for node in self.model.graph.node for out in node.output}
            return {layer: tensor for layer, tensor in recorded.items() if tensor in produced}
        return {}

    def describe(self) -> dict[str, Any]:
        opsets = {(o.domain or "ai.onnx"): o.version for o in self.model.opset_import}
        return {
            "opset": opsets.get("ai.onnx"),
            "opsets": opsets,
            "ir_version": self.model.ir_version,
            "producer": " ".join(p for p in (self.model.producer_name, self.model.producer_version) if p),
            "nodes": len(self.model.graph.node),
            "metadata": {p.key: p.value if len(p.value) <= 300 else p.value[:297] + "..."
                         for p in self.model.metadata_props},
        }


def open_onnx(path, **options) -> OnnxSession:
    return OnnxSession(path, **options)


def expose_all_tensors(model):
    """A copy of an ONNX model whose every intermediate tensor is also a graph output.

    Types come from shape inference where it knows the op; outputs of ops it does not know
    (contrib ops such as ORT's FusedConv in optimized graphs) are exposed untyped, which ONNX
    Runtime accepts and resolves itself.
    """
    import onnx
    from onnx import helper, shape_inference
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort: untyped tensors are still exposed
        inferred = model
    types = {vi.name: vi.type for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    exposed = onnx.ModelProto()
    exposed.CopyFrom(inferred)
    present = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name and name not in present:
                value = helper.make_empty_tensor_value_info(name)
                if name in types and types[name].HasField("tensor_type"):
                    value.type.CopyFrom(types[name])
                exposed.graph.output.append(value)
                present.add(name)
    return exposed


def torch_module_outputs(model) -> dict[str, str]:
    """PyTorch module path -> the ONNX tensor holding that module's output, from the module
    scopes the dynamo exporter records on each node."""
    import ast
    last: dict[str, str] = {}
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == TORCH_NAME_SCOPES), None)
        if not scopes or not node.output:
            continue
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            continue
        for path in names[1:-1]:  # [root '', module paths..., op name]
            last[path] = node.output[0]
    return last


def sniff_onnx(probe: Probe) -> str | None:
    # A serialized ModelProto starts with field 1 (ir_version, varint), small and positive;
    # protobuf writers emit fields in number order, so this is the first byte of every ONNX file.
    head = probe.head
    if not probe.is_dir and len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 30:
        return "an ONNX protobuf"
    return None


register_format(Format("onnx", "ONNX", (".onnx",), open_onnx, sniff_onnx, runtime_modules=("onnx", "onnxruntime")))
