"""What every converter reading ONNX graphs needs, whatever it writes: node attributes as Python
values, the opsets a model imports, and the dims and element types ONNX's shape inference fixes."""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

Opsets = Mapping[str, int]  # domain ("" for ai.onnx) -> the version the model imports


def decode_attributes(node) -> dict[str, Any]:
    """A node's attributes as Python values; string attributes (and lists of them) as str."""
    from onnx import helper
    attrs = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8") for v in value]
        attrs[attribute.name] = value
    return attrs


# The attributes a Constant node may carry its value in, with the element type each implies.
CONSTANT_SCALAR_ATTRIBUTES = (("value_float", "float32"), ("value_floats", "float32"), ("value_int", "int64"),
                              ("value_ints", "int64"))


def constant_array(attrs: Mapping[str, Any]):
    """The value of a Constant node, from its decoded attributes, as a numpy array (narrow float
    types as ml_dtypes arrays); None when it is carried in another way (sparse, strings)."""
    import numpy as np
    from onnx import numpy_helper
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in CONSTANT_SCALAR_ATTRIBUTES:
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    return None


def opsets_of(model) -> dict[str, int]:
    """Every domain's imported opset ("" for ai.onnx)."""
    return {("" if entry.domain == "ai.onnx" else entry.domain): entry.version for entry in model.opset_import}


def domain_opset(opsets: "int | Opsets", domain: str) -> int:
    """The version of ``domain`` in force (a bare int is ai.onnx's, used for every domain)."""
    if isinstance(opsets, int):
        return opsets
    return opsets.get(domain, opsets.get("", 1))


def element_type(onnx_type) -> int:
    """The tensor element type of a value's type, looking through sequences and optionals (0: none)."""
    while not onnx_type.HasField("tensor_type"):
        if onnx_type.HasField("sequence_type"):
            onnx_type = onnx_type.sequence_type.elem_type
        elif onnx_type.HasField("optional_type"):
            onnx_type = onnx_type.optional_type.elem_type
        else:
            return 0
    return onnx_type.tensor_type.elem_type


class StaticInfo(NamedTuple):
    """What ONNX's shape inference fixes before converting: dims (None where symbolic or unknown)
    and element types, by value name."""
    shapes: dict[str, list[int | None]]
    types: dict[str, int]


def static_info(model, *, subgraphs: bool = False) -> StaticInfo:
    """Dims and element types of the graph's values: declared (inputs, initializers) or inferred;
    with ``subgraphs`` also those of the If/Loop/Scan bodies (ONNX names are unique model-wide)."""
    from onnx import shape_inference
    graph = model.graph
    types = {init.name: init.data_type for init in graph.initializer}
    if model.ir_version < 4:
        # Before IR 4 an initializer is typed only through a graph input of its name; one that is
        # not (graphs edited since) stops inference at its first use. IR 4 types initializers
        # themselves, so infer on a copy that says so.
        from onnx import ModelProto
        copy = ModelProto()
        copy.CopyFrom(model)
        copy.ir_version = 4
        model = copy
    try:
        inferred = shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001  (a model shape inference cannot follow converts without the hints)
        inferred = None
    shapes: dict[str, list[int | None]] = {}
    _collect(graph, inferred, shapes, types)
    if subgraphs:
        for body in _subgraphs(inferred if inferred is not None else graph):
            _collect(body, body, shapes, types, declared_inputs=True)
    return StaticInfo(shapes, types)


def _collect(graph, inferred, shapes: dict, types: dict, declared_inputs: bool = False) -> None:
    inputs = {value.name for value in graph.input}  # their dims are the signature's, not refined
    for info in [*graph.input, *(inferred.value_info if inferred else ()), *(inferred or graph).output]:
        tensor = info.type.tensor_type
        if tensor.elem_type:
            types.setdefault(info.name, tensor.elem_type)
        if (inferred is not None and (declared_inputs or info.name not in inputs) and tensor.HasField("shape")
                and info.name not in shapes):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    for init in getattr(graph, "initializer", ()):
        types.setdefault(init.name, init.data_type)


def _subgraphs(graph):
    """Every graph attribute of every node, recursively."""
    from onnx import AttributeProto
    for node in graph.node:
        for attribute in node.attribute:
            bodies = [attribute.g] if attribute.type == AttributeProto.GRAPH else \
                list(attribute.graphs) if attribute.type == AttributeProto.GRAPHS else []
            for body in bodies:
                yield body
                yield from _subgraphs(body)
