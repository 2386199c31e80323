"""``modelport edge web``: an ONNX Runtime Web bundle for browsers. The source is planned to ONNX
(every hop checked); the folder holds ``model.onnx`` (float32, float16 weights, or uint8 weights
with activations quantized on the fly), the ORT Web files a page needs for its WebAssembly backend
(``ort.wasm.min.mjs``, ``ort-wasm-simd-threaded.mjs`` and ``.wasm``, from the pinned
``onnxruntime-web``), a page (``index.html`` + ``app.js``) that classifies an image with the model,
``manifest.json``, golden data and the parity report. The model is checked in the same ORT Web
build, in Node (``formats/ort_web.py``), against the source.

The page is served from the folder as it is (``examples/ort-web/serve.py`` serves one on 127.0.0.1
with the MIME types and the cross-origin isolation headers ORT Web's threads need).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .._atomic import atomic_output
from .._console import Steps, captured_output
from ..errors import ConversionError, ParityError, UsageError, first_line
from ..validate.tolerances import Tolerance
from .bundle import BundleFile, EdgeResult, latency_ms, to_json, write_goldens, write_manifest
from .source import (AGREEMENT_RULE, agrees, bundle_folder, check_data, input_entry, onnx_source, output_entry,
                     read_labels)

PAGE_DIR = Path(__file__).resolve().parent / "ortweb_page"
# What the page loads from ORT Web's package: the WebAssembly-only build and its wasm.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
CHECK_SAMPLES = 64


def _float32(source: Path, destination: Path) -> None:
    shutil.copyfile(source, destination)


def _float16(source: Path, destination: Path) -> None:
    from ..convert.quantize import MODES as QUANTIZE_MODES, WriteOptions
    QUANTIZE_MODES["fp16"].write(source, destination, None, WriteOptions(keep_io_types=True))


def _uint8(source: Path, destination: Path) -> None:
    # uint8 weights: ORT's ConvInteger takes uint8 weights only (MatMulInteger either), in wasm as on CPUs.
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(source), str(destination), weight_type=QuantType.QUInt8)


@dataclass(frozen=True)
class WeightMode:
    name: str
    summary: str
    write: Callable[[Path, Path], None]
    tolerance: Tolerance | None  # None: judged by agreement

    @property
    def rule(self) -> str:
        return f"every value within {self.tolerance.describe()}" if self.tolerance is not None else AGREEMENT_RULE


WEIGHT_MODES = {mode.name: mode for mode in (
    WeightMode("fp32", "float32 weights, as the source", _float32, Tolerance(1e-5, 1e-4, "scale", adaptive=True)),
    WeightMode("fp16", "float16 weights and compute, float32 inputs and outputs", _float16,
               Tolerance(1e-3, 1e-2, "scale")),
    WeightMode("uint8", "uint8 weights, activations quantized on the fly (a quarter of the size)", _uint8, None),
)}


def weight_mode(name: str | None) -> WeightMode:
    key = (name or "fp32").strip().lower()
    if key not in WEIGHT_MODES:
        raise UsageError(f"--quantize {name!r}: an ORT Web bundle holds one model, fp32, fp16 or uint8",
                         hint="e.g. --quantize fp16 (half the download)")
    return WEIGHT_MODES[key]


def export_web(source: str | Path, out_dir: str | Path, *, quantize: str | None = None,
               inputs: Mapping[str, np.ndarray] | str | Path | None = None,
               image_size: tuple[int, int] | None = None, labels: str | Path | None = None,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None, input_specs=None,
               weights=None, dims: Mapping[str, int] | None = None, trust_pickle: bool = False, seed: int = 0,
               steps: Steps | None = None) -> EdgeResult:
    """Write an ONNX Runtime Web bundle of ``source`` to ``out_dir`` and check its model in ORT Web
    (WebAssembly, in Node) against the source. ``quantize``: fp32, fp16 or uint8 weights.
    ``inputs`` (arrays by input name; an .npz; or a folder of images, resized to ``image_size`` and
    normalized by ``mean``/``std``) are the check's data, else generated ones; ``labels`` and
    ``mean``/``std`` go to the manifest the page reads.

    Raises:
        UsageError: bad options, data or labels; the ORT Web runner not installed (nothing written).
        ParityError: the bundle was written but its model failed the check; the manifest says so.
    """
    from ..formats import open_model
    from ..formats.ort_web import BUNDLE_TARGET, RUNNER_DIR, OrtWebSession
    from ..validate.parity import check_artifact
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    mode = weight_mode(quantize)
    dist = RUNNER_DIR / "node_modules" / "onnxruntime-web" / "dist"
    missing = [name for name in ORT_FILES if not (dist / name).is_file()]
    if missing:
        raise UsageError(f"ONNX Runtime Web is not installed beside modelport (no {missing[0]})",
                         hint=f"npm ci --prefix {RUNNER_DIR}")
    out_dir = bundle_folder(out_dir, mean, std)
    label_lines = read_labels(labels) if labels is not None else None
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle, dims=dims)
    try:
        _, feeds, labelled = check_data(reference, inputs, image_size=image_size, mean=mean, std=std,
                                        limit=CHECK_SAMPLES, labels=label_lines, seed=seed, dims=dims)
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            folder.mkdir()
            onnx_path = onnx_source(source, reference, Path(scratch), result, weights, input_specs, trust_pickle,
                                     steps, dims)
            with steps.step(f"Writing model.onnx ({mode.summary})"):
                try:
                    with captured_output():
                        mode.write(onnx_path, folder / "model.onnx")
                except Exception as exc:
                    raise ConversionError(f"ONNX Runtime's tools could not write {mode.name} weights: {first_line(exc)}",
                                          hop=f"edge web {mode.name}") from exc
            for name in ORT_FILES:
                shutil.copyfile(dist / name, folder / name)
            for page in ("index.html", "app.js"):
                shutil.copyfile(PAGE_DIR / page, folder / page)
            with OrtWebSession(folder / "model.onnx", threads=1) as candidate:
                with steps.step(f"Checking model.onnx in ONNX Runtime Web {candidate.version} (WebAssembly, Node)"):
                    tolerance = mode.tolerance or Tolerance(np.inf, 0.0)  # agreement: every value "within"
                    report = check_artifact(reference, candidate, feeds=feeds, tolerance=tolerance, samples=1,
                                            seed=seed, precision="fp16" if mode.name == "fp16" else None)
                passed = report.passed if mode.tolerance is not None else agrees(report)
                one = {k: v[:1] for k, v in feeds.items()}
                classes = len(label_lines) if label_lines else None
                result.files.append(BundleFile(
                    "model.onnx", mode.name, [s.to_dict() | input_entry(s, mean, std) for s in candidate.inputs],
                    [s.to_dict() | output_entry(s, classes) for s in candidate.outputs], _op_types(folder / "model.onnx"),
                    (folder / "model.onnx").stat().st_size, latency_ms(candidate, one), passed, mode.rule,
                    report.to_dict()))
                details = {"onnxruntime_web": candidate.version, "backend": "wasm", "weights": mode.name,
                           "source_inputs": [s.to_dict() for s in reference.inputs],
                           "source_outputs": [s.to_dict() for s in reference.outputs], "labels_annotate": labelled}
            extra = [*ORT_FILES, "index.html", "app.js", *write_goldens(folder, one, reference.run(one))]
            if label_lines:
                (folder / "labels.txt").write_text("\n".join(label_lines) + "\n", encoding="utf-8")
                extra.append("labels.txt")
            (folder / "reports").mkdir()
            (folder / "reports" / "model.json").write_text(to_json(report.to_dict()))
            extra.append("reports/model.json")
            write_manifest(folder, target=BUNDLE_TARGET, source=str(source), files=result.files, extra=extra,
                           details=details)
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    if not result.passed:
        raise ParityError(None, f"model.onnx failed the check against the source in ONNX Runtime Web; the bundle was "
                                f"written to {str(out_dir)!r} and its manifest says so", result=result)
    return result


def _op_types(path: Path) -> list[str]:
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    return sorted({f"{node.domain or 'ai.onnx'}:{node.op_type}" for node in model.graph.node})
