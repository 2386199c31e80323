"""Turning an ONNX model into a ``torch.fx.GraphModule``, and saving it as a ``torch.export`` .pt2."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..onnx_graph import opsets_of, static_info
from ..registry import ConvertOptions, EdgeOutput, converter

# The size an example input's dynamic dim is traced at by torch.export (not 0 or 1, which export
# would specialize on).
EXAMPLE_DIM = 2


def to_module(model, *, class_name: str = "OnnxModel"):
    """A ``torch.fx.GraphModule`` computing the ONNX model (a ``ModelProto`` or a path to one), in
    eval mode. Its forward takes the ONNX inputs (as identifiers) in order and returns the output
    tensor, or a dict by ONNX output name when there are several. Weighted layers are torch.nn
    modules named after their ONNX nodes; other weights are parameters named after their values."""
    import onnx
    import torch
    from .graph import Builder, check_supported, run_graph
    if isinstance(model, (str, Path)):
        model = onnx.load(str(model))
    graph = model.graph
    opsets = opsets_of(model)
    check_supported(graph, opsets)
    info = static_info(model, subgraphs=True)
    builder = Builder()
    initializers = {init.name for init in graph.initializer}
    feeds = {}
    for value in graph.input:
        if value.name in initializers:
            continue
        proxy = builder.placeholder(value.name)
        if value.type.HasField("tensor_type"):
            tensor = value.type.tensor_type
            proxy.node.meta["onnx_type"] = tensor.elem_type
            if tensor.HasField("shape"):
                proxy.node.meta["shape"] = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        feeds[value.name] = proxy
    with torch.no_grad():
        env = run_graph(graph, feeds, opsets, builder, info)
    results = {output.name: builder.result(env[output.name]) for output in graph.output}
    builder.output(next(iter(results.values())) if len(results) == 1 else results)
    module = builder.module(class_name)
    module.eval()
    module.onnx_input_names = list(feeds)
    module.onnx_output_names = list(results)
    return module


def example_inputs(model, dims: Mapping[str, int] | None = None) -> tuple[list[Any], list[dict[int, str]]]:
    """Example tensors for tracing the model's inputs (a dynamic dim at its --dim size, by dim or
    input name, else EXAMPLE_DIM), and per input its dynamic dims by name."""
    dims = dims or {}
    import torch
    from .dtypes import torch_dtype
    initializers = {init.name for init in model.graph.initializer}
    rng = np.random.default_rng(0)
    examples, dynamic = [], []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        sizes, names = [], {}
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value"):
                sizes.append(dim.dim_value)
            else:
                sizes.append(int(dims.get(dim.dim_param, dims.get(value.name, EXAMPLE_DIM))))
                names[axis] = dim.dim_param or f"{value.name}_{axis}"
        dtype = torch_dtype(tensor.elem_type)
        if dtype.is_floating_point:
            example = torch.from_numpy(rng.standard_normal(sizes).astype(np.float32)).to(dtype)
        elif dtype == torch.bool:
            example = torch.from_numpy(rng.random(sizes) > 0.5)
        else:
            example = torch.zeros(sizes, dtype=dtype)  # valid as an index anywhere
        examples.append(example)
        dynamic.append(names)
    return examples, dynamic


def export_program(module, model, warnings: list[str] | None = None, dims: Mapping[str, int] | None = None):
    """``torch.export`` the converted module with the ONNX inputs' symbolic dims kept dynamic; a dim
    the model's own arithmetic fixes is kept static and reported in ``warnings``."""
    import torch
    from torch.export import Dim
    examples, dynamic = example_inputs(model, dims)
    names = module.onnx_input_names
    # Dims sharing an ONNX dim_param are one symbol: torch.export relates them itself (DYNAMIC
    # hints), and refuses when the model's arithmetic pins one of them.
    shapes = {arg: {axis: Dim.DYNAMIC for axis in dims} for arg, dims in zip(_argument_names(module), dynamic)}
    try:
        return torch.export.export(module, tuple(examples), dynamic_shapes=shapes or None, strict=False)
    except Exception as exc:  # noqa: BLE001  (retried with the dims export may fix)
        if not any(dynamic):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    auto = {arg: {axis: Dim.AUTO for axis in dims} for arg, dims in zip(_argument_names(module), dynamic)}
    program = torch.export.export(module, tuple(examples), dynamic_shapes=auto, strict=False)
    static = _static_dims(program, names, dynamic)
    if static and warnings is not None:
        warnings.append("dims kept static in the .pt2 because the model's computation fixes them: "
                        + ", ".join(static) + f" ({first[:160]})")
    return program


def _argument_names(module) -> list[str]:
    return [node.target for node in module.graph.nodes if node.op == "placeholder"]


def _static_dims(program, names: list[str], dynamic: list[dict[int, str]]) -> list[str]:
    """The dims asked to be dynamic that the exported program holds static."""
    from torch.fx.experimental.symbolic_shapes import is_concrete_int
    placeholders = [spec.arg.name for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]
    nodes = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    static = []
    for name, arg, dims in zip(names, placeholders, dynamic):
        shape = nodes[arg].meta["val"].shape  # a specialized dim is a SymInt fixed to a number
        static += [f"{name}[{axis}] ({label})" for axis, label in dims.items() if is_concrete_int(shape[axis])]
    return static


@converter("onnx", "pytorch", "modelport's ONNX -> PyTorch converter")
def onnx_to_pytorch(session, dst: Path, options: ConvertOptions) -> EdgeOutput:
    """ONNX model -> PyTorch ExportedProgram (.pt2) with the ONNX inputs' dynamic dims."""
    import torch
    from ...errors import UsageError
    if dst.suffix != ".pt2" and not dst.name.endswith(".pt2"):
        raise UsageError(f"{str(dst)!r}: an ONNX model converts to a torch.export program, saved as .pt2",
                         hint="name the destination NAME.pt2 (add --as-code for editable Python source)")
    module = to_module(session.handle)
    out = EdgeOutput()
    program = export_program(module, session.handle, out.warnings, options.dims)
    import json
    from ...formats.pytorch import PT2_NAMES
    names = {"inputs": list(module.onnx_input_names), "outputs": list(module.onnx_output_names)}
    torch.export.save(program, str(dst), extra_files={PT2_NAMES: json.dumps(names)})
    if options.as_code:  # NAME.py and NAME.pth beside the .pt2, committed with it
        from .code import write_code
        out.companions = write_code(module, dst, Path(str(session.path)).name)
    return out
