"""A serialized ``jax.export`` artifact -> ONNX: its StableHLO module, read with the MLIR bindings
that ship with jaxlib, each operation handed to the lax primitive handlers as the primitive it
lowers from (StableHLO's ops are lax's, one level down), plus the few operations that exist only
in StableHLO (dynamic shapes of symbolic exports, calls, shape assertions).

An artifact holds no jaxpr, only the compiled-for-export StableHLO, so this is the route for it;
models given as Python code go through their jaxpr (graph.py).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable, Sequence

import numpy as np

from ...errors import InvalidModelError, UnsupportedOpError
from ..onnx_builder import finish_model
from .graph import JaxprConverter, onnx_dtype

ELEMENT_TYPES = {"f64": np.float64, "f32": np.float32, "f16": np.float16, "i1": np.bool_, "i8": np.int8,
                 "i16": np.int16, "i32": np.int32, "i64": np.int64, "ui8": np.uint8, "ui16": np.uint16,
                 "ui32": np.uint32, "ui64": np.uint64}
# StableHLO operations that are a lax primitive with no parameters.
SAME_AS_LAX = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "maximum": "max", "minimum": "min",
    "power": "pow", "remainder": "rem", "and": "and", "or": "or", "xor": "xor", "atan2": "atan2",
    "negate": "neg", "exponential": "exp", "log": "log", "tanh": "tanh", "logistic": "logistic", "sqrt": "sqrt",
    "rsqrt": "rsqrt", "abs": "abs", "sign": "sign", "floor": "floor", "ceil": "ceil", "sine": "sin", "cosine": "cos",
    "tan": "tan", "not": "not", "exponential_minus_one": "expm1", "log_plus_one": "log1p", "is_finite": "is_finite",
    "optimization_barrier": "optimization_barrier",
}
COMPARE = {"EQ": "eq", "NE": "ne", "LT": "lt", "LE": "le", "GT": "gt", "GE": "ge"}
REDUCE = {"stablehlo.add": "reduce_sum", "stablehlo.maximum": "reduce_max", "stablehlo.minimum": "reduce_min",
          "stablehlo.multiply": "reduce_prod", "stablehlo.and": "reduce_and", "stablehlo.or": "reduce_or"}
COMBINE = {"reduce_sum": "Add", "reduce_max": "Max", "reduce_min": "Min", "reduce_prod": "Mul",
           "reduce_and": "And", "reduce_or": "Or"}
IDENTITY = {"reduce_sum": 0, "reduce_max": -np.inf, "reduce_min": np.inf, "reduce_prod": 1, "reduce_and": True,
            "reduce_or": False}
WINDOW = {"stablehlo.add": "reduce_window_sum", "stablehlo.maximum": "reduce_window_max"}
FOLDABLE = {"stablehlo.broadcast_in_dim", "stablehlo.reshape", "stablehlo.convert"}
# custom_calls that carry no computation for inference.
INERT_CALLS = {"shape_assertion"}
PASS_THROUGH_CALLS = {"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"}


def _ir():
    from jax._src.interpreters import mlir
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import stablehlo
    return mlir, ir, stablehlo


class Aval(SimpleNamespace):
    """What handlers read of a value: shape (None for a dynamic dim) and dtype."""


def tensor_aval(mlir_type) -> Aval:
    _, ir, _ = _ir()
    ranked = ir.RankedTensorType(mlir_type)
    dynamic = ir.ShapedType.get_dynamic_size()
    element = str(ranked.element_type)
    if element not in ELEMENT_TYPES:
        raise UnsupportedOpError(f"tensor of {element}", framework="StableHLO", cannot="be read",
                                 hint="export the model with float32/float16 and integer types")
    return Aval(shape=tuple(None if d == dynamic else int(d) for d in ranked.shape), dtype=np.dtype(ELEMENT_TYPES[element]))


def _attr(op, name, default=None):
    return op.attributes[name] if name in op.attributes else default


def _ints(op, name, default=()) -> tuple[int, ...]:
    _, ir, _ = _ir()
    value = _attr(op, name)
    if value is None:
        return tuple(default)
    if isinstance(value, ir.DenseI64ArrayAttr) or isinstance(value, ir.DenseI32ArrayAttr):
        return tuple(int(v) for v in value)
    if isinstance(value, ir.DenseElementsAttr):
        return tuple(int(v) for v in np.array(ir.DenseIntElementsAttr(value)).reshape(-1))
    return tuple(int(v) for v in value)


def _int(op, name, default=0) -> int:
    _, ir, _ = _ir()
    value = _attr(op, name)
    return default if value is None else int(ir.IntegerAttr(value).value)


def constant_value(op, aval: Aval) -> np.ndarray:
    _, ir, _ = _ir()
    value = ir.DenseElementsAttr(_attr(op, "value"))
    if value.is_splat:
        scalar = value.get_splat_value()
        number = ir.BoolAttr(scalar).value if aval.dtype == np.bool_ else \
            (ir.FloatAttr(scalar).value if aval.dtype.kind == "f" else ir.IntegerAttr(scalar).value)
        return np.full(aval.shape, number, dtype=aval.dtype)
    if aval.dtype == np.bool_:
        return np.array([ir.BoolAttr(v).value for v in value], dtype=np.bool_).reshape(aval.shape)
    typed = ir.DenseFPElementsAttr(value) if aval.dtype.kind == "f" else ir.DenseIntElementsAttr(value)
    return np.array(typed, dtype=aval.dtype).reshape(aval.shape)


class StableHLOConverter:
    """Walks the functions of a StableHLO module, writing ONNX through a JaxprConverter's graph."""

    def __init__(self, converter: JaxprConverter, module):
        self.converter = converter
        self.graph = converter.graph
        self.functions = {}
        for op in module.body.operations:
            op = op.operation
            if op.name == "func.func":
                self.functions[str(op.attributes["sym_name"]).strip('"')] = op

    def call(self, name: str, args: Sequence[str]) -> list[str]:
        function = self.functions.get(name)
        if function is None:
            raise InvalidModelError(f"the StableHLO module has no function {name!r}")
        block = function.regions[0].blocks[0]
        env = {}
        for argument, value in zip(block.arguments, args):
            env[_key(argument)] = value
        for op in block.operations:
            op = op.operation
            if op.name == "func.return":
                return [env[_key(v)] for v in op.operands]
            results = self.operation(op, [env[_key(v)] for v in op.operands])
            for result, value in zip(op.results, results):
                env[_key(result)] = value
        raise InvalidModelError(f"function {name!r} of the StableHLO module has no return")

    def lax(self, primitive: str, op, inputs: list[str], **params) -> list[str]:
        """Convert ``op`` with the handler of the lax ``primitive`` it lowers from."""
        eqn = SimpleNamespace(primitive=SimpleNamespace(name=primitive), params=params,
                              invars=[SimpleNamespace(aval=tensor_aval(v.type)) for v in op.operands],
                              outvars=[SimpleNamespace(aval=tensor_aval(r.type)) for r in op.results])
        return self.converter.equation(eqn, inputs)

    def operation(self, op, inputs: list[str]) -> list[str]:
        name = op.name
        short = name.split(".", 1)[1] if "." in name else name
        folded = self.fold(op, inputs)
        if folded is not None:
            return [folded]
        special: Callable | None = SPECIAL.get(name)
        if special is not None:
            return special(self, op, inputs)
        if name.startswith("stablehlo.") and short in SAME_AS_LAX:
            return self.lax(SAME_AS_LAX[short], op, inputs)
        raise UnsupportedOpError(name, framework="StableHLO", where=f"in the exported module ({_location(op)})",
                                 hint="export from Python code instead (package.module:factory goes through the "
                                      "jaxpr), or open an issue with the artifact")

    def fold(self, op, inputs: list[str]) -> str | None:
        """A small constant reshaped, broadcast or cast (a reduction's init value, typically) is
        computed now, so that handlers see it as a constant."""
        if op.name not in FOLDABLE or len(op.results) != 1 or not inputs:
            return None
        value = self.converter.known.get(inputs[0])
        aval = self.out_aval(op)
        if value is None or any(d is None for d in aval.shape) or int(np.prod(aval.shape)) > 64:
            return None
        if op.name == "stablehlo.broadcast_in_dim":
            kept = _ints(op, "broadcast_dimensions")
            view = [1] * len(aval.shape)
            for source, target in enumerate(kept):
                view[target] = value.shape[source]
            result = np.broadcast_to(value.reshape(view), aval.shape)
        else:  # reshape, convert
            result = value.reshape(aval.shape)
        return self.converter.constant(np.array(result, dtype=aval.dtype), "folded")

    # -- helpers for handlers -------------------------------------------------------------------
    def out_aval(self, op, index: int = 0) -> Aval:
        return tensor_aval(op.results[index].type)

    def onnx(self, op_type: str, inputs: Sequence[str], **attrs) -> str:
        self.converter.counter += 1
        return self.graph.op(op_type, list(inputs), f"{op_type.lower()}_{self.converter.counter}", **attrs)

    def int64(self, tensor: str) -> str:
        return self.onnx("Cast", [tensor], to=onnx_dtype(np.int64))


def _key(value):
    return value  # MLIR Values hash by identity of the underlying value


def _location(op) -> str:
    text = str(op.location)
    return text[:120]


# -- operations with parameters -------------------------------------------------------------------
def _constant(self: StableHLOConverter, op, inputs):
    aval = self.out_aval(op)
    return [self.converter.constant(constant_value(op, aval), "constant")]


def _compare(self, op, inputs):
    _, _, stablehlo = _ir()
    direction = stablehlo.ComparisonDirectionAttr(_attr(op, "comparison_direction")).value
    return self.lax(COMPARE[direction], op, inputs)


def _select(self, op, inputs):
    predicate, on_true, on_false = inputs
    eqn_inputs = [predicate, on_false, on_true]  # select_n picks case 1 when true
    return self.lax("select_n", op, eqn_inputs)


def _convert(self, op, inputs):
    return self.lax("convert_element_type", op, inputs, new_dtype=self.out_aval(op).dtype)


def _broadcast_in_dim(self, op, inputs):
    shape = self.out_aval(op).shape
    if any(d is None for d in shape):
        raise UnsupportedOpError("stablehlo.broadcast_in_dim", framework="StableHLO", where="to a dynamic shape")
    return self.lax("broadcast_in_dim", op, inputs, shape=shape, broadcast_dimensions=_ints(op, "broadcast_dimensions"),
                    sharding=None)


def _reshape(self, op, inputs):
    shape = self.out_aval(op).shape
    return [self.onnx("Reshape", [inputs[0], self.graph.ints("shape", [-1 if d is None else d for d in shape])])]


def _transpose(self, op, inputs):
    return self.lax("transpose", op, inputs, permutation=_ints(op, "permutation"))


def _concatenate(self, op, inputs):
    return self.lax("concatenate", op, inputs, dimension=_int(op, "dimension"))


def _slice(self, op, inputs):
    return self.lax("slice", op, inputs, start_indices=_ints(op, "start_indices"),
                    limit_indices=_ints(op, "limit_indices"), strides=_ints(op, "strides"))


def _pad(self, op, inputs):
    low, high, interior = _ints(op, "edge_padding_low"), _ints(op, "edge_padding_high"), _ints(op, "interior_padding")
    return self.lax("pad", op, inputs, padding_config=tuple(zip(low, high, interior)))


def _reverse(self, op, inputs):
    return self.lax("rev", op, inputs, dimensions=_ints(op, "dimensions"))


def _iota(self, op, inputs):
    aval = self.out_aval(op)
    return self.lax("iota", op, inputs, dtype=aval.dtype, shape=aval.shape, dimension=_int(op, "iota_dimension"))


def _dot_general(self, op, inputs):
    _, _, stablehlo = _ir()
    numbers = stablehlo.DotDimensionNumbers(_attr(op, "dot_dimension_numbers"))
    dims = ((tuple(numbers.lhs_contracting_dimensions), tuple(numbers.rhs_contracting_dimensions)),
            (tuple(numbers.lhs_batching_dimensions), tuple(numbers.rhs_batching_dimensions)))
    return self.lax("dot_general", op, inputs, dimension_numbers=dims, precision=None, preferred_element_type=None)


def _convolution(self, op, inputs):
    _, ir, stablehlo = _ir()
    numbers = stablehlo.ConvDimensionNumbers(_attr(op, "dimension_numbers"))
    rank = len(numbers.input_spatial_dimensions)
    specs = ((numbers.input_batch_dimension, numbers.input_feature_dimension, *numbers.input_spatial_dimensions),
             (numbers.kernel_output_feature_dimension, numbers.kernel_input_feature_dimension,
              *numbers.kernel_spatial_dimensions),
             (numbers.output_batch_dimension, numbers.output_feature_dimension, *numbers.output_spatial_dimensions))
    padding = _ints(op, "padding", (0,) * (2 * rank))
    reversal = _attr(op, "window_reversal")
    if reversal is not None and any(bool(v) for v in ir.DenseBoolArrayAttr(reversal)):
        raise UnsupportedOpError("stablehlo.convolution", framework="StableHLO", where="with window_reversal")
    return self.lax("conv_general_dilated", op, inputs, window_strides=_ints(op, "window_strides", (1,) * rank),
                    padding=tuple(zip(padding[0::2], padding[1::2])), lhs_dilation=_ints(op, "lhs_dilation", (1,) * rank),
                    rhs_dilation=_ints(op, "rhs_dilation", (1,) * rank), dimension_numbers=specs,
                    feature_group_count=_int(op, "feature_group_count", 1),
                    batch_group_count=_int(op, "batch_group_count", 1), precision=None, preferred_element_type=None)


def _body_op(op) -> str:
    body = [o.operation.name for o in op.regions[0].blocks[0].operations]
    return body[0] if len(body) == 2 and body[1] in ("stablehlo.return", "func.return") else "+".join(body)


def _arg_reduce(self, op, inputs):
    """The two-operand reduce argmax/argmin lower to: (values, iota) reduced by a body that keeps
    the larger (smaller) value and, on ties, the smaller index -> ReduceMax + ArgMax."""
    _, _, stablehlo = _ir()
    body = [o.operation for o in op.regions[0].blocks[0].operations]
    directions = {stablehlo.ComparisonDirectionAttr(o.attributes["comparison_direction"]).value
                  for o in body if o.name == "stablehlo.compare"}
    axes = _ints(op, "dimensions")
    kind = "max" if "GT" in directions else ("min" if "LT" in directions and "GT" not in directions else None)
    if kind is None or len(axes) != 1 or len(inputs) != 4:
        raise UnsupportedOpError("stablehlo.reduce", framework="StableHLO",
                                 where="over several operands at once, other than argmax/argmin",
                                 hint="export from Python code instead (package.module:factory)")
    values = inputs[0]
    reduced = self.onnx("ReduceMax" if kind == "max" else "ReduceMin", [values, self.graph.ints("axes", axes)],
                        keepdims=0)
    index = self.onnx("ArgMax" if kind == "max" else "ArgMin", [values], axis=axes[0], keepdims=0,
                      select_last_index=0)
    return [reduced, self.onnx("Cast", [index], to=onnx_dtype(self.out_aval(op, 1).dtype))]


def _reduce(self, op, inputs):
    if len(op.results) == 2:
        return _arg_reduce(self, op, inputs)
    if len(op.results) != 1:
        raise UnsupportedOpError("stablehlo.reduce", framework="StableHLO", where="over several operands at once",
                                 hint="export from Python code instead (package.module:factory)")
    primitive = REDUCE.get(_body_op(op))
    if primitive is None:
        raise UnsupportedOpError("stablehlo.reduce", framework="StableHLO", where=f"with the body {_body_op(op)}")
    operand, init = inputs
    reduced_op = SimpleNamespace(operands=list(op.operands)[:1], results=list(op.results))
    result = self.lax(primitive, reduced_op, [operand], axes=_ints(op, "dimensions"))[0]
    known = self.converter.known.get(init)
    if known is None or not np.all(known == IDENTITY[primitive]):  # an init that is not the identity counts
        result = self.onnx(COMBINE[primitive], [result, init])
    return [result]


def _reduce_window(self, op, inputs):
    primitive = WINDOW.get(_body_op(op))
    operand, init = inputs[0], inputs[-1]
    identity = {"reduce_window_sum": 0, "reduce_window_max": -np.inf}
    known = self.converter.known.get(init)
    if primitive is None or len(op.results) != 1 or known is None or not np.all(known == identity[primitive]):
        raise UnsupportedOpError("stablehlo.reduce_window", framework="StableHLO",
                                 where=f"with the body {_body_op(op)} and its init value")
    rank = len(tensor_aval(op.operands[0].type).shape)
    padding = _ints(op, "padding", (0,) * (2 * rank))
    window = SimpleNamespace(operands=list(op.operands)[:1], results=list(op.results))
    return self.lax(primitive, window, [operand], window_dimensions=_ints(op, "window_dimensions"),
                    window_strides=_ints(op, "window_strides", (1,) * rank),
                    padding=tuple(zip(padding[0::2], padding[1::2])),
                    base_dilation=_ints(op, "base_dilations", (1,) * rank),
                    window_dilation=_ints(op, "window_dilations", (1,) * rank))


def _gather(self, op, inputs):
    _, _, stablehlo = _ir()
    numbers = stablehlo.GatherDimensionNumbers(_attr(op, "dimension_numbers"))
    indices_rank = len(tensor_aval(op.operands[1].type).shape)
    if numbers.index_vector_dim != indices_rank - 1:
        raise UnsupportedOpError("stablehlo.gather", framework="StableHLO", where="with its index vector not last")
    dims = SimpleNamespace(offset_dims=tuple(numbers.offset_dims), collapsed_slice_dims=tuple(numbers.collapsed_slice_dims),
                           start_index_map=tuple(numbers.start_index_map),
                           operand_batching_dims=tuple(getattr(numbers, "operand_batching_dims", ())))
    return self.lax("gather", op, inputs, dimension_numbers=dims, slice_sizes=_ints(op, "slice_sizes"))


def _dynamic_gather(self, op, inputs):
    """A gather whose slice sizes are a computed operand (symbolic exports): the sizes are read off
    the result type (offset dims) and the gather converts as a static one."""
    _, _, stablehlo = _ir()
    numbers = stablehlo.GatherDimensionNumbers(_attr(op, "dimension_numbers"))
    operand_rank = len(tensor_aval(op.operands[0].type).shape)
    result = self.out_aval(op).shape
    collapsed = set(numbers.collapsed_slice_dims)
    kept = iter(result[d] for d in numbers.offset_dims)
    sizes = tuple(1 if k in collapsed else next(kept) for k in range(operand_rank))
    dims = SimpleNamespace(offset_dims=tuple(numbers.offset_dims), collapsed_slice_dims=tuple(numbers.collapsed_slice_dims),
                           start_index_map=tuple(numbers.start_index_map),
                           operand_batching_dims=tuple(getattr(numbers, "operand_batching_dims", ())))
    gather = SimpleNamespace(operands=list(op.operands)[:2], results=list(op.results))
    return self.lax("gather", gather, inputs[:2], dimension_numbers=dims, slice_sizes=sizes)


def _real_dynamic_slice(self, op, inputs):
    operand, starts, limits, strides = inputs
    rank = len(tensor_aval(op.operands[0].type).shape)
    return [self.onnx("Slice", [operand, self.int64(starts), self.int64(limits),
                                self.graph.ints("axes", list(range(rank))), self.int64(strides)])]


def _composite(self, op, inputs):
    """A named decomposition (chlo.erf, chlo.asin, ...): its body function, inlined."""
    return self.call(str(op.attributes["decomposition"]).lstrip("@").strip('"'), inputs)


def _reduce_precision(self, op, inputs):
    return self.lax("reduce_precision", op, inputs, exponent_bits=_int(op, "exponent_bits"),
                    mantissa_bits=_int(op, "mantissa_bits"))


def _clamp(self, op, inputs):
    return self.lax("clamp", op, inputs)


def _round(method: int):
    def handler(self, op, inputs):
        return self.lax("round", op, inputs, rounding_method=method)
    return handler


def _call(self, op, inputs):
    return self.call(str(op.attributes["callee"]).lstrip("@").strip('"'), inputs)


def _custom_call(self, op, inputs):
    target = str(op.attributes["call_target_name"]).strip('"')
    if target in INERT_CALLS:
        return []
    if target in PASS_THROUGH_CALLS:
        return [self.onnx("Identity", [inputs[0]])]
    raise UnsupportedOpError(f"custom_call @{target}", framework="StableHLO", where="in the exported module",
                             hint="an operation JAX lowers to a backend call: export from Python code instead")


# -- dynamic shapes (exports with symbolic dims) --------------------------------------------------
def _get_dimension_size(self, op, inputs):
    shape = self.onnx("Shape", [inputs[0]])
    size = self.onnx("Gather", [shape, self.converter.constant(np.int64(_int(op, "dimension")), "dim")], axis=0)
    return [self.onnx("Cast", [size], to=onnx_dtype(self.out_aval(op).dtype))]


def _dynamic_broadcast_in_dim(self, op, inputs):
    operand, shape = inputs
    out_rank = len(self.out_aval(op).shape)
    kept = _ints(op, "broadcast_dimensions")
    new_axes = [a for a in range(out_rank) if a not in kept]
    if new_axes:
        operand = self.onnx("Unsqueeze", [operand, self.graph.ints("axes", new_axes)])
    return [self.onnx("Expand", [operand, self.int64(shape)])]


def _dynamic_reshape(self, op, inputs):
    return [self.onnx("Reshape", [inputs[0], self.int64(inputs[1])])]


def _dynamic_iota(self, op, inputs):
    aval = self.out_aval(op)
    dimension = _int(op, "iota_dimension")
    shape = self.int64(inputs[0])
    size = self.onnx("Gather", [shape, self.converter.constant(np.int64(dimension), "dim")], axis=0)
    values = self.onnx("Range", [self.converter.constant(np.int64(0), "zero"), size,
                                 self.converter.constant(np.int64(1), "one")])
    view = [1] * len(aval.shape)
    view[dimension] = -1
    values = self.onnx("Reshape", [values, self.graph.ints("view", view)])
    values = self.onnx("Cast", [values], to=onnx_dtype(aval.dtype))
    return [self.onnx("Expand", [values, shape])]


def _dynamic_slice(self, op, inputs):
    operand, *starts = inputs
    sizes = _ints(op, "slice_sizes")
    begin = self.onnx("Concat", [self.onnx("Reshape", [self.int64(s), self.graph.ints("one", [1])]) for s in starts],
                      axis=0)
    end = self.onnx("Add", [begin, self.graph.ints("sizes", sizes)])
    return [self.onnx("Slice", [operand, begin, end, self.graph.ints("axes", list(range(len(sizes))))])]


SPECIAL = {
    "stablehlo.constant": _constant, "stablehlo.compare": _compare, "stablehlo.select": _select,
    "stablehlo.convert": _convert, "stablehlo.broadcast_in_dim": _broadcast_in_dim, "stablehlo.reshape": _reshape,
    "stablehlo.transpose": _transpose, "stablehlo.concatenate": _concatenate, "stablehlo.slice": _slice,
    "stablehlo.pad": _pad, "stablehlo.reverse": _reverse, "stablehlo.iota": _iota,
    "stablehlo.dot_general": _dot_general, "stablehlo.convolution": _convolution, "stablehlo.reduce": _reduce,
    "stablehlo.reduce_window": _reduce_window, "stablehlo.gather": _gather, "stablehlo.clamp": _clamp,
    "stablehlo.round_nearest_even": _round(1), "stablehlo.round_nearest_afz": _round(0),
    "func.call": _call, "stablehlo.custom_call": _custom_call,
    "stablehlo.get_dimension_size": _get_dimension_size,
    "stablehlo.dynamic_broadcast_in_dim": _dynamic_broadcast_in_dim, "stablehlo.dynamic_reshape": _dynamic_reshape,
    "stablehlo.dynamic_iota": _dynamic_iota, "stablehlo.dynamic_slice": _dynamic_slice,
    "stablehlo.dynamic_gather": _dynamic_gather, "stablehlo.real_dynamic_slice": _real_dynamic_slice,
    "stablehlo.composite": _composite, "stablehlo.reduce_precision": _reduce_precision,
}


def build_from_exported(exported, specs, *, opset: int, name: str = "jax_export", doc: str = "",
                        props: dict[str, str] | None = None):
    """The checked ONNX ModelProto of a deserialized ``jax.export.Exported`` (inputs named by ``specs``)."""
    from onnx import helper

    from ...formats.jax import output_names
    mlir, ir, _ = _ir()
    context = mlir.make_ir_context()
    try:
        module = ir.Module.parse(exported.mlir_module(), context=context)
    except Exception as exc:  # noqa: BLE001  (MLIR's parser errors)
        raise InvalidModelError(f"cannot read the artifact's StableHLO module: {str(exc).splitlines()[0]}") from exc
    converter = JaxprConverter(opset)
    graph = converter.graph
    reader = StableHLOConverter(converter, module)
    graph_inputs = []
    for spec in specs:
        graph.reserve(spec.name)
        dims = [(spec.dim_names[i] if spec.dim_names and spec.dim_names[i] else f"{spec.name}_dim{i}") if d is None
                else d for i, d in enumerate(spec.shape)]
        graph_inputs.append(helper.make_tensor_value_info(spec.name, onnx_dtype(spec.dtype), dims))
    main = reader.functions["main"].regions[0].blocks[0]
    kept = list(getattr(exported, "module_kept_var_idx", range(len(specs))))
    args = [specs[i].name for i in kept]
    extra = len(main.arguments) - len(args)
    if extra:  # a multi-platform export takes the platform's index first
        platforms = [p.lower() for p in exported.platforms]
        if extra != 1 or "cpu" not in platforms:
            raise InvalidModelError(f"the artifact was exported for {', '.join(exported.platforms)}, not the CPU",
                                    hint="export with platforms=['cpu'] (or including it)")
        args = [converter.constant(np.asarray(platforms.index("cpu"), np.int32), "platform_index")] + args
    results = reader.call("main", args)
    outputs = output_names(_tree(exported))
    graph_outputs = []
    for out_name, tensor, aval in zip(outputs, results, exported.out_avals):
        graph.reserve(out_name)
        graph.nodes.append(helper.make_node("Identity", [tensor], [out_name], name=graph.unique(f"{out_name}/out")))
        dims = [d if isinstance(d, (int, np.integer)) else str(d) for d in aval.shape]
        graph_outputs.append(helper.make_tensor_value_info(out_name, onnx_dtype(aval.dtype), dims))
    onnx_graph = helper.make_graph(graph.nodes, name, graph_inputs, graph_outputs, graph.initializers)
    return finish_model(onnx_graph, opset, doc=doc, props=props)


def _tree(exported):
    import jax
    return jax.tree_util.tree_unflatten(exported.out_tree, list(exported.out_avals))
