"""``modelport edge ort``: ONNX Runtime Mobile's format. The source is planned to ONNX (every hop
checked), converted with ONNX Runtime's own tool to ``model.ort`` (optimizations fixed for the
CPU, as the tool advises without NNAPI or CoreML) with the ``required_operators.config`` a
reduced ORT build takes, and the ``.ort`` file is run in ONNX Runtime against the source."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from .._atomic import atomic_output
from .._console import Steps
from ..errors import ConversionError, ParityError, UsageError
from ..validate.tolerances import Tolerance
from .bundle import BundleFile, EdgeResult, check_feeds, latency_ms, to_json, write_goldens, write_manifest

OPS_CONFIG = "required_operators.config"


def export_ort(source: str | Path, out_dir: str | Path, *, inputs: Mapping[str, np.ndarray] | None = None,
               input_specs=None, weights=None, trust_pickle: bool = False, seed: int = 0,
               steps: Steps | None = None) -> EdgeResult:
    """Write ``out_dir`` with ``model.ort``, its operator config, a manifest, golden data and the
    parity report of the ``.ort`` model against ``source`` (on ``inputs`` when given).

    Raises:
        UsageError: bad input (nothing written). ParityError: the file was written but differs.
    """
    from ..formats import open_model
    from ..formats.ort import OrtFormatSession
    from ..validate.parity import check_artifact
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{str(out_dir)!r} exists and is a file; a bundle is a folder")
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle)
    try:
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            scratch = Path(scratch)
            folder.mkdir()
            onnx_path = scratch / "model.onnx"
            if reference.format_name == "onnx":
                shutil.copyfile(reference.path, onnx_path)
            else:
                from ..convert import convert as run_convert
                converted = run_convert(source, onnx_path, to="onnx", weights=weights, input_specs=input_specs,
                                        trust_pickle=trust_pickle, steps=steps)
                result.conversion = [hop.to_dict() for hop in converted.hops]
            with steps.step("Converting to the ORT format (onnxruntime.tools.convert_onnx_models_to_ort)"):
                _convert(onnx_path, scratch / "ort")
            shutil.copyfile(scratch / "ort" / "model.ort", folder / "model.ort")
            shutil.copyfile(scratch / "ort" / f"model.{OPS_CONFIG}", folder / OPS_CONFIG)
            feeds = check_feeds(reference, inputs, seed)
            one = {k: v[:1] for k, v in feeds.items()}  # the golden sample, and the latency's
            with OrtFormatSession(folder / "model.ort", threads=1) as candidate, \
                    steps.step("Checking model.ort in ONNX Runtime"):
                report = check_artifact(reference, candidate, feeds=feeds, samples=1, seed=seed)
                rule = Tolerance(report.atol, report.rtol, report.relative_to).describe()
                result.files.append(BundleFile(
                    "model.ort", "ort", [s.to_dict() for s in candidate.inputs],
                    [s.to_dict() for s in candidate.outputs], _operators(folder / OPS_CONFIG),
                    (folder / "model.ort").stat().st_size, latency_ms(candidate, one), report.passed,
                    f"every value within {rule}", report.to_dict()))
            extra = write_goldens(folder, one, reference.run(one)) + [OPS_CONFIG, "reports/model.json"]
            (folder / "reports").mkdir()
            (folder / "reports" / "model.json").write_text(to_json(report.to_dict()))
            write_manifest(folder, target="ort", source=str(source), files=result.files, extra=extra,
                           details={"source_inputs": [s.to_dict() for s in reference.inputs],
                                    "source_outputs": [s.to_dict() for s in reference.outputs]})
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    if not result.passed:
        raise ParityError(None, f"model.ort failed the check against the source; the bundle was written to "
                                f"{str(out_dir)!r} and its manifest says so", result=result)
    return result


def _convert(onnx_path: Path, out: Path) -> None:
    """ONNX Runtime's converter in its own process (it logs freely and imports its tools)."""
    run = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
                          "--output_dir", str(out), "--optimization_style", "Fixed"],
                         capture_output=True, text=True, timeout=1800)
    if run.returncode != 0 or not (out / "model.ort").is_file():
        tail = " ".join((run.stderr or run.stdout).split())[-400:]
        raise ConversionError(f"ONNX Runtime's ORT-format converter failed: {tail}", hop="edge ort")


def _operators(config: Path) -> list[str]:
    """``domain;opset;Op1,Op2`` lines of the operator config as ``domain:Op`` names."""
    ops = []
    for line in config.read_text().splitlines():
        if line and not line.startswith("#") and line.count(";") >= 2:
            domain, _, names = line.split(";", 2)
            ops += [f"{domain}:{name}" for name in names.split(",") if name]
    return sorted(ops)
