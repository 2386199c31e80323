"""PyTorch -> ONNX with ``torch.onnx.export``.

The dynamo exporter goes first, on a program we capture ourselves with ``torch.export`` so that a
failing op can be traced back to its module and source line. TorchScript files take the same
route through torch's TorchScript -> ExportedProgram converter: the TorchScript exporter cannot
type the graphs of traced attention, GroupNorm or resize layers ("tensor of unknown rank"). The
TorchScript exporter stays the last fallback, for what neither capture handles (data-dependent
Python, scripted control flow). The batch dimension is dynamic unless the model pins it or the
user asks for a fixed batch.
"""
from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from .._console import captured_output
from ..errors import ConversionError, UnsupportedOpError, first_line
from ..formats.pytorch import TorchSession
from .registry import ConvertOptions, EdgeOutput, converter

EXPORT_BATCH = 2  # torch.export specialises sizes 0 and 1, so a dynamic batch is traced at 2
DYNAMO_MIN_OPSET = 18  # the dynamo exporter writes opset 18 when asked for less


def torch_opsets() -> tuple[int, int]:
    from torch.onnx import _constants
    return _constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET


@converter("pytorch", "onnx", "torch.onnx.export: dynamo, else TorchScript exporter", opsets=torch_opsets)
def pytorch_to_onnx(session: TorchSession, dst: Path, options: ConvertOptions) -> EdgeOutput:
    """PyTorch module or ExportedProgram -> ONNX."""
    import torch
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    session.require_shapes()
    input_names = [s.name for s in session.inputs]
    output_names = [s.name for s in session.outputs]
    dynamic = options.dynamic_batch and all(s.shape for s in session.inputs)
    out = EdgeOutput()
    notes = out.warnings
    if dynamic and not session.flexible_batch:
        dynamic = False
        batch = next((s.shape[0] for s in session.inputs if s.shape), None)
        notes.append(f"the traced TorchScript module fixes its batch at {batch}: its outputs do not follow the batch "
                     "when run at another (the trace baked a size into the graph); the ONNX model has a fixed batch "
                     f"of {batch} (trace the model with torch.export, or script it, for a dynamic batch)")

    program, dynamo_error = session.program, None
    fixed_batch_program = None  # a fixed-batch capture, the last resort of a TorchScript source
    if options.opset is not None and options.opset < DYNAMO_MIN_OPSET:
        program = None  # only the TorchScript exporter writes opsets below 18
        notes.append(f"opset {options.opset} is below the dynamo exporter's {DYNAMO_MIN_OPSET}: "
                     "used the TorchScript exporter")
    elif program is None:
        module = session.exportable
        scripted = isinstance(module, torch.jit.ScriptModule)
        if scripted:
            module, dynamo_error = _from_torchscript(session)
        if module is not None:
            program, dynamo_error = _capture(module, session, dynamic)
            if program is None and dynamic:
                fixed_batch_program, _ = _capture(module, session, False)
                if not scripted:  # a Python module: torch.export at a fixed batch beats the old exporter
                    program, fixed_batch_program = fixed_batch_program, None
                    if program is not None:
                        notes.append(f"the batch dimension could not be made dynamic ({first_line(dynamo_error)}); "
                                     "the ONNX model has a fixed batch")
                        dynamic = False
    if program is not None:
        try:
            _export_program(program, dst, input_names, output_names, options.opset)
            _name_dynamic_dims(dst, dynamic_axes(session, dynamic))
            out.exporter = "dynamo"
            return out
        except Exception as exc:  # fall through to the TorchScript exporter, then report both
            dynamo_error = exc
    try:
        _export_torchscript(session, dst, input_names, output_names, options.opset, dynamic)
        out.exporter = "torchscript"
        if dynamo_error is not None:
            notes.append(f"the dynamo exporter failed ({first_line(dynamo_error)}); used the TorchScript exporter")
        return out
    except Exception as ts_error:
        if fixed_batch_program is not None:
            try:
                _export_program(fixed_batch_program, dst, input_names, output_names, options.opset)
                _name_dynamic_dims(dst, dynamic_axes(session, False))
                out.exporter = "dynamo"
                notes.append("the batch dimension could not be made dynamic; the ONNX model has a fixed batch")
                return out
            except Exception:
                pass
        raise _explain(dynamo_error, ts_error, program, options.opset) from ts_error


# A Lightning checkpoint opens as a PyTorch model (formats/lightning.py): the same export.
converter("lightning", "onnx", "torch.onnx.export of the rebuilt LightningModule", opsets=torch_opsets)(pytorch_to_onnx)
# So does a Hugging Face model folder (formats/huggingface.py), with the inputs its task gives.
converter("huggingface", "onnx", "torch.onnx.export of the task's transformers model", opsets=torch_opsets)(pytorch_to_onnx)


def _export_program(program, dst: Path, input_names, output_names, opset, external_data: bool = False) -> None:
    import torch

    def export():
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(program, args=(), f=str(dst), dynamo=True, input_names=input_names,
                              output_names=output_names, opset_version=opset, external_data=external_data, verbose=False)
    try:
        export()
    except Exception as exc:
        if "Cannot view a tensor" not in str(exc) or not _contiguous_before_reshapes(program):
            raise
        export()


def _contiguous_before_reshapes(program) -> int:
    """Make every reshape's input contiguous first; returns how many were changed.

    The ONNX exporter's decompositions turn ``reshape`` into ``view`` where the traced strides
    allow it, and then fail on a transposed input at symbolic sizes (T5's attention output,
    ``transpose(1, 2).reshape(b, s, -1)``: "Cannot view a tensor with shape [s11, s70, 4, 8] and
    strides ..."). A contiguous copy first is always viewable; ONNX has no strides, so the copy
    becomes nothing in the exported graph."""
    import torch
    graph = program.graph_module.graph
    changed = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (torch.ops.aten.reshape.default,
                                                              torch.ops.aten.view.default):
            continue
        source = node.args[0]
        with graph.inserting_before(node):
            copy = graph.call_function(torch.ops.aten.clone.default, (source,),
                                       {"memory_format": torch.contiguous_format})
        copy.meta = dict(source.meta)
        try:
            copy.meta["val"] = source.meta["val"].clone(memory_format=torch.contiguous_format)
        except Exception:  # no fake value to copy: the exporter recomputes it
            pass
        node.replace_input_with(source, copy)
        changed += 1
    if changed:
        program.graph_module.recompile()
    return changed


def dynamic_axes(session: TorchSession, dynamic_batch: bool) -> list[dict[int, str]]:
    """Per input, axis -> dim name of the axes the ONNX model keeps dynamic: the batch (unless
    fixed) and every dim --input-shape gave as a name, -1 or ?."""
    axes = []
    for spec in session.inputs:
        named = {0: "batch"} if dynamic_batch and spec.shape else {}
        for axis, size in enumerate(spec.shape or ()):
            if axis > 0 and size is None:
                names = spec.dim_names or ()
                named[axis] = names[axis] if axis < len(names) and names[axis] else f"{spec.name}_dim{axis}"
        axes.append(named)
    return axes


def _name_dynamic_dims(dst: Path, axes: list[dict[int, str]]) -> None:
    """Give the ONNX model's symbolic dims the names the user wrote (``seq``), in place of the
    exporter's symbols (``s17``), everywhere they occur."""
    import onnx
    model = onnx.load(str(dst))
    renames = {}
    for graph_input, named in zip(model.graph.input, axes):
        dims = graph_input.type.tensor_type.shape.dim
        for axis, name in named.items():
            if axis < len(dims) and dims[axis].dim_param and dims[axis].dim_param != name:
                renames.setdefault(dims[axis].dim_param, name)
    if not renames:
        return
    for value in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
    onnx.save(model, str(dst))


def _capture(module, session: TorchSession, dynamic: bool):
    """torch.export the module; returns (program, None) or (None, error)."""
    import torch
    args = session.example_args(batch=EXPORT_BATCH if dynamic else None)
    # The batch is one named symbol shared by every input; other dims are left for torch.export to
    # bound (a sequence cannot outgrow the position table) and get their names back afterwards.
    batch = torch.export.Dim("batch", min=1)
    shapes = tuple({axis: batch if axis == 0 else torch.export.Dim.DYNAMIC for axis in axes}
                   for axes in dynamic_axes(session, dynamic))
    if not any(shapes):
        shapes = None
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(module, tuple(args), dynamic_shapes=shapes, strict=False), None
    except Exception as exc:
        return None, exc


def _from_torchscript(session: TorchSession):
    """A TorchScript module as a plain ``torch.fx`` module, through torch's TorchScript ->
    ExportedProgram converter; returns (module, None) or (None, error)."""
    try:
        from torch._export.converter import TS2EPConverter
    except ImportError as exc:  # a torch without the converter: the TorchScript exporter remains
        return None, exc
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = TS2EPConverter(session.module, session.example_args()).convert()
        return program.module(), None
    except Exception as exc:
        return None, exc


def _export_torchscript(session: TorchSession, dst: Path, input_names, output_names, opset, dynamic) -> None:
    import torch
    args = session.example_args()
    axes = dict(zip(input_names, dynamic_axes(session, dynamic)))
    if dynamic:
        axes.update({n: {0: "batch"} for n in output_names})
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(session.exportable, args, str(dst), dynamo=False, input_names=input_names,
                          output_names=output_names, opset_version=opset or 17,
                          dynamic_axes={k: v for k, v in axes.items() if v} or None)


_DISPATCH = re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)', overload='(\w+)'\)>")
_TS_UNSUPPORTED = re.compile(r"Exporting the operator '([\w:.]+)' to ONNX opset version (\d+) is not supported")


def _explain(dynamo_error, ts_error, program, opset) -> Exception:
    """Turn exporter failures into an UnsupportedOpError that names the op and where it is."""
    dynamo_text, ts_text = _chain_text(dynamo_error), _chain_text(ts_error)
    dispatch = _DISPATCH.search(dynamo_text)
    unsupported = _TS_UNSUPPORTED.search(ts_text)
    # The TorchScript exporter names the op the user called; the dynamo exporter may name what it
    # decomposed into (eigvals -> eig): look both up in the captured program.
    names = [m.group(1).replace("::", ".") for m in (unsupported, dispatch) if m]
    if not names:
        return ConversionError(f"both ONNX exporters failed; dynamo: {first_line(dynamo_error)}; "
                               f"TorchScript: {first_line(ts_error)}", hop="pytorch->onnx",
                               hint="run with --debug for the full tracebacks")
    op, where = _locate(program, names)
    return UnsupportedOpError(op or names[0].replace(".", "::", 1),
                              opset or (int(unsupported.group(2)) if unsupported else None),
                              where=where, framework="PyTorch",
                              hint="rewrite that part with supported ops, or register a translation for it "
                                   "(torch.onnx.export's custom_translation_table)")


def _locate(program, names: list[str]) -> tuple[str | None, str | None]:
    """(op name, "module 'path' (Class), file:line `code`") of the first node calling one of ``names``."""
    if program is None:
        return None, None
    wanted = [n.split(".")[-1] for n in names]  # aten.linalg_eig -> linalg_eig
    nodes = [n for n in program.graph.nodes if n.op == "call_function"]

    def op_name(node) -> str:
        return getattr(node.target, "__name__", str(node.target)).split(".")[0]

    for matches in (lambda n, w: op_name(n) == w, lambda n, w: op_name(n).startswith(w)):
        for want in wanted:
            for node in nodes:
                if matches(node, want):
                    return f"aten::{op_name(node)}", _node_location(node)
    return None, None


def _node_location(node) -> str | None:
    stack = node.meta.get("nn_module_stack") or {}
    module = ""
    if stack:
        path, cls = list(stack.values())[-1]
        cls_name = getattr(cls, "__name__", str(cls)).split(".")[-1]
        path = re.sub(r"^L\['self'\]\.?|^L__self___?", "", path) or "<root>"
        module = f"module {path!r} ({cls_name})"
    trace = (node.meta.get("stack_trace") or "").strip().splitlines()
    source = ""
    for line in reversed(trace):
        found = re.search(r'File "([^"]+)", line (\d+)', line)
        if found:
            source = f"{Path(found.group(1)).name}:{found.group(2)}"
            break
    if trace and source:
        source += f" `{trace[-1].strip()}`"
    return ", ".join(p for p in (module, source) if p) or None


def _chain_text(error) -> str:
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)

