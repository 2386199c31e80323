"""``modelport edge executorch``: PyTorch's on-device runtime. The source is captured with
``torch.export`` (an ONNX or Keras source is first planned to PyTorch, every hop checked), lowered
with ``to_edge_transform_and_lower`` and the XNNPACK partitioner, and written as one ``.pte`` per
mode; each file is run in ExecuTorch's own runtime against the source. The bundle says which ops
XNNPACK took and which run on the portable kernels.

Modes: fp32, and int8 by XNNPACK's quantizer (symmetric, per-channel weights, ranges calibrated on
the given data), judged like TFLite's int8 files (cosine and top-1 agreement).

Memory in an ExecuTorch program is planned ahead for the largest input it takes: the batch is
dynamic up to ``max_batch`` (1 by default, what an app on a phone feeds; memory grows with it) and
other dims are fixed at their trace size (``--dim``).
"""
from __future__ import annotations

import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._atomic import atomic_output
from .._console import Steps, captured_output
from ..errors import ConversionError, UsageError, first_line
from ..validate.tolerances import Tolerance
from .bundle import (BundleFile, EdgeResult, latency_ms, raise_if_failed, write_goldens, write_manifest,
                     write_reports)
from .source import AGREEMENT_RULE, agrees, bundle_folder, check_data
from .source import calibrated_modes
from .source import parse_modes as parse_mode_list

CALIBRATION_SAMPLES = 100  # at most, run one at a time through the observed model


@dataclass(frozen=True)
class Mode:
    name: str
    summary: str
    calibrated: bool
    tolerance: Tolerance | None  # None: judged by agreement

    @property
    def rule(self) -> str:
        return f"every value within {self.tolerance.describe()}" if self.tolerance is not None else AGREEMENT_RULE


MODES = {mode.name: mode for mode in (
    # XNNPACK sums in another order than PyTorch's CPU kernels (as in LiteRT): the fp32 scale rule.
    Mode("fp32", "float32, as the source computes", False, Tolerance(1e-5, 1e-4, "scale", adaptive=True)),
    Mode("int8", "int8 weights (per channel) and activations, XNNPACK's quantizer, ranges from calibration", True, None),
)}

# Nodes of the lowered graph that are plumbing, not ops an app's kernels run.
_PLUMBING = {"getitem", "sym_size", "Total"}


def parse_modes(text: str | Sequence[str]) -> list[str]:
    return parse_mode_list(text, MODES, "ExecuTorch", "fp32,int8")


def export_executorch(source: str | Path, out_dir: str | Path, *, quantize: str | Sequence[str] = ("fp32",),
                      calibration: Mapping[str, np.ndarray] | str | Path | None = None,
                      image_size: tuple[int, int] | None = None, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None, max_batch: int = 1, input_specs=None, weights=None,
                      dims: Mapping[str, int] | None = None, trust_pickle: bool = False, seed: int = 0,
                      steps: Steps | None = None) -> EdgeResult:
    """Write an ExecuTorch bundle of ``source`` to ``out_dir``: ``model_<mode>.pte`` per mode of
    ``quantize``, each run in ExecuTorch against the source. ``calibration`` (arrays by input name,
    batch first; an .npz; or a folder of images for a one-image-input model, resized to
    ``image_size`` and normalized by ``mean``/``std``) is needed by int8 and is the check's data
    when given. ``max_batch`` bounds the batch the programs take (their memory is planned for it).

    Raises:
        UsageError: unknown mode, calibration missing or not matching the model, a bad batch bound,
            ExecuTorch not installed (nothing written).
        ConversionError: torch.export or ExecuTorch's lowering refused the model (nothing written).
        ParityError: a file failed its check; the bundle was written and says so.
    """
    from ..formats import open_model
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    names = parse_modes(quantize)
    calibrated_modes(names, MODES, calibration)
    if not 1 <= max_batch <= 4096:
        raise UsageError(f"--max-batch {max_batch}: between 1 and 4096 (the program's memory is planned for it)")
    _import_executorch()
    out_dir = bundle_folder(out_dir, mean, std)
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle, dims=dims)
    try:
        data, feeds, _ = check_data(reference, calibration, image_size=image_size, mean=mean, std=std,
                                    limit=CALIBRATION_SAMPLES, labels=None, seed=seed, dims=dims)
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            folder.mkdir()
            torch_source = _torch_source(source, reference, Path(scratch), result, weights, input_specs,
                                         trust_pickle, steps, dims)
            with steps.step("Capturing the model with torch.export"):
                program = _capture(torch_source, max_batch)
            for name in names:
                result.files.append(_export_mode(MODES[name], program, reference, feeds, data, folder, max_batch,
                                                 seed, steps))
            golden = {k: v[:1] for k, v in feeds.items()}
            extra = write_goldens(folder, golden, reference.run(golden))
            extra += write_reports(folder, result.files)
            write_manifest(folder, target="executorch", source=str(source), files=result.files, extra=extra,
                           details={"source_inputs": [s.to_dict() for s in reference.inputs],
                                    "source_outputs": [s.to_dict() for s in reference.outputs],
                                    "max_batch": max_batch, "backend": "XNNPACK, portable kernels for the rest"})
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    raise_if_failed(result, out_dir)
    return result


def _import_executorch():
    try:
        import executorch.runtime  # noqa: F401
        from executorch.exir import to_edge_transform_and_lower  # noqa: F401
    except ModuleNotFoundError as exc:
        raise UsageError(f"ExecuTorch bundles need {exc.name!r}, which is not installed",
                         hint="pip install 'modelport[executorch]' (ExecuTorch 1.4, built for torch 2.13)") from None


def _torch_source(source, reference, scratch: Path, result: EdgeResult, weights, input_specs, trust_pickle,
                  steps: Steps, dims):
    """The PyTorch model the programs are captured from: the source itself, else the ``.pt2`` the
    planner reaches (ONNX, and Keras or TensorFlow through ONNX), every hop checked."""
    from ..formats.pytorch import TorchSession
    if isinstance(reference, TorchSession):
        return reference
    from ..convert import convert as run_convert
    from ..formats import open_model
    converted = run_convert(source, scratch / "model.pt2", to="pytorch", weights=weights, input_specs=input_specs,
                            trust_pickle=trust_pickle, steps=steps, dims=dims)
    result.conversion = [hop.to_dict() for hop in converted.hops]
    return open_model(scratch / "model.pt2")


def _named(module):
    """The module under one named attribute. XNNPACK's batch-norm fusion names the fused weights
    after the parameters and fails when a name starts with a digit (an ``nn.Sequential``'s
    ``0.weight``: torch.fx renames the node it creates, then looks for the old name)."""
    import torch

    class Named(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = module
            self.training = False  # not eval(): it recurses, and an ExportedProgram's module refuses train()

        def forward(self, *inputs):
            return self.model(*inputs)
    return Named()


def _capture(session, max_batch: int):
    """The source as an ExportedProgram: batch 1..max_batch (static at 1), other dims at their trace size."""
    import torch
    session.require_shapes()
    dynamic = max_batch > 1 and session.flexible_batch
    args = session.example_args(batch=2 if dynamic else 1)
    shapes = None
    if dynamic:
        batch = torch.export.Dim("batch", min=1, max=max_batch)
        shapes = (tuple({0: batch} for _ in args),)  # forward(*inputs): one tuple for the star argument
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(_named(session.exportable), args, dynamic_shapes=shapes, strict=False)
    except Exception as exc:
        raise ConversionError(f"torch.export cannot capture the model: {first_line(exc)}", hop="edge executorch",
                              hint="ExecuTorch starts from torch.export; make the model exportable (see the "
                                   "torch.export docs on graph breaks and data-dependent shapes)") from exc


def _export_mode(mode: Mode, program, reference, feeds, data, folder: Path, max_batch: int, seed: int,
                 steps: Steps) -> BundleFile:
    from ..formats.executorch import PteSession
    from ..validate.parity import check_artifact
    path = folder / f"model_{mode.name}.pte"
    with steps.step(f"Lowering to ExecuTorch {mode.name} ({mode.summary})"):
        if mode.calibrated:
            program = _quantized(program, reference, data, max_batch)
        buffer, placement = _lower(program, _signature(reference, program, mode.name, max_batch))
        path.write_bytes(buffer)
    candidate = PteSession(path, threads=1)  # the bundle's latency is one thread's, as for the other targets
    try:
        with steps.step(f"Checking {path.name} in ExecuTorch"):
            tolerance = mode.tolerance or Tolerance(np.inf, 0.0)  # agreement modes: every value "within"
            report = check_artifact(reference, candidate, feeds=feeds, tolerance=tolerance, precision=mode.name,
                                    samples=1, seed=seed)
        passed = report.passed if mode.tolerance is not None else agrees(report)
        ops = sorted(f"{where}:{op}" for where, counts in placement.items() for op in counts)
        return BundleFile(path.name, mode.name, [s.to_dict() for s in candidate.inputs],
                          [s.to_dict() for s in candidate.outputs], ops, path.stat().st_size,
                          latency_ms(candidate, {k: v[:1] for k, v in feeds.items()}), passed, mode.rule,
                          report.to_dict(), placement)
    finally:
        candidate.close()


def _quantized(program, reference, data, max_batch: int):
    """The program with XNNPACK's int8 quantization, its ranges observed on ``data`` one sample at a time."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    with captured_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observed = prepare_pt2e(program.module(), quantizer)
        count = min(len(next(iter(data.values()))), CALIBRATION_SAMPLES)
        with torch.no_grad():
            for i in range(count):
                observed(*[torch.from_numpy(np.ascontiguousarray(data[spec.name][i:i + 1], dtype=spec.dtype))
                           for spec in reference.inputs])
        quantized = convert_pt2e(observed)
        args = tuple(torch.from_numpy(np.ascontiguousarray(data[spec.name][:1], dtype=spec.dtype))
                     for spec in reference.inputs)
        shapes = None
        if program.range_constraints:
            batch = torch.export.Dim("batch", min=1, max=max_batch)
            shapes = (tuple({0: batch} for _ in args),)
            args = tuple(torch.cat([a, a]) for a in args)  # a batch of 2: 1 would be specialized
        return torch.export.export(_named(quantized), args, dynamic_shapes=shapes, strict=False)


def _signature(reference, program, mode: str, max_batch: int) -> str:
    """The JSON the program's signature method returns: the source's input and output names, dtypes
    and value ranges; input shapes as captured, the batch left open where the source's is (the
    session runs a larger batch ``max_batch`` rows at a time)."""
    from ..formats.executorch import signature_entry
    from ..tensors import TensorSpec
    users = {spec.arg.name for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"}
    captured = [n.meta["val"].shape for n in program.graph.nodes if n.op == "placeholder" and n.name in users]
    inputs = [TensorSpec(spec.name, tuple(None if axis == 0 and spec.dynamic_batch else int(size)
                                          for axis, size in enumerate(shape)), spec.dtype, value_range=spec.value_range)
              for spec, shape in zip(reference.inputs, captured)]
    return json.dumps({"inputs": [signature_entry(s) for s in inputs],
                       "outputs": [signature_entry(s) for s in reference.outputs],
                       "max_batch": max_batch, "mode": mode, "writer": "modelport"})


def _lower(program, signature: str) -> tuple[bytes, dict[str, dict[str, int]]]:
    """The ``.pte`` bytes, and per place (XNNPACK, portable) how many of each op run there."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower
    from ..formats.executorch import SIGNATURE_METHOD
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                               constant_methods={SIGNATURE_METHOD: signature})
            _restore_ranges(edge.exported_program(), program)
            table = get_delegation_info(edge.exported_program().graph_module).get_operator_delegation_dataframe()
            buffer = edge.to_executorch().buffer
    except Exception as exc:
        raise ConversionError(f"ExecuTorch's lowering failed: {_lowering_failure(exc)}", hop="edge executorch",
                              hint="rewrite the op named above with ops ExecuTorch has (its Core ATen opset, the "
                                   "XNNPACK and portable kernels), or report it to ExecuTorch") from exc
    placement: dict[str, dict[str, int]] = {"XNNPACK": {}, "portable": {}}
    for row in table.to_dict("records"):
        op = str(row["op_type"])
        if op in _PLUMBING:
            continue
        for where, column in (("XNNPACK", "occurrences_in_delegated_graphs"),
                              ("portable", "occurrences_in_non_delegated_graphs")):
            if int(row[column]):
                placement[where][op] = int(row[column])
    return bytes(buffer), placement


def _lowering_failure(exc: Exception) -> str:
    """ExecuTorch's verifier explains over several lines: the finding, then the op and where the
    model's code calls it; keep those."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = lines[:1] + [line for line in lines[1:] if line.startswith(("Operator:", "stack trace:"))][:2]
    return " ".join(kept)[:600] or first_line(exc)


def _restore_ranges(lowered, captured) -> None:
    """Give the batch symbol back the range it was captured with. The XNNPACK partitioner (ExecuTorch
    1.4) leaves a narrower range in the shape environment (a batch bound of 64 became 15), and memory
    planning sizes the program's buffers from it: a batch past it then fails at run time."""
    from torch.utils._sympy.value_ranges import ValueRanges
    for node in lowered.graph.nodes:
        value = node.meta.get("val")
        if node.op != "placeholder" or not hasattr(value, "shape"):
            continue
        for size in value.shape:
            symbol = getattr(getattr(size, "node", None), "expr", None)
            captured_range = captured.range_constraints.get(symbol) if symbol is not None else None
            if captured_range is not None:
                size.node.shape_env.var_to_range[symbol] = ValueRanges(captured_range.lower, captured_range.upper)
