"""``modelport edge tfjs``: a TF.js graph model for browsers, written by modelport (graph_model.py)
from the source's TensorFlow graph, and run in real TF.js (Node, WebAssembly backend) against the
source before the bundle is handed over.

The weight encoding is the one choice (``WEIGHT_MODES``): float32 as the source, or float16,
uint16, uint8 storage that TF.js expands to float32 when it loads the model. Float encodings must
match the source within a tolerance; uint8 cannot, so it is judged by agreement as integer TFLite
modes are.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._atomic import atomic_output
from .._console import Steps
from ..errors import ParityError, UsageError
from ..validate.tolerances import Tolerance
from .bundle import BundleFile, EdgeResult, latency_ms, to_json, write_goldens, write_manifest
from .graph_model import QUANTIZATIONS, Quantization, freeze, write_graph_model
from .tfjs_rewrites import rewrite_for_tfjs
from .source import (AGREEMENT_RULE, agrees, bundle_folder, check_data, in_candidate_layout, input_entry,
                     input_layout, output_entry, read_labels, tensorflow_source)

CHECK_SAMPLES = 100  # at most, from an image folder


@dataclass(frozen=True)
class WeightMode:
    name: str
    summary: str
    quantization: Quantization | None
    tolerance: Tolerance | None  # None: judged by agreement

    @property
    def rule(self) -> str:
        return f"every value within {self.tolerance.describe()}" if self.tolerance else AGREEMENT_RULE


# TF.js's WebAssembly kernels (XNNPACK) sum in another order than TensorFlow's: a relative
# tolerance on the output's scale, as for TFLite fp32. float16 and uint16 weights carry ~1e-4 of
# each tensor's range as error, which a deep net keeps within 1e-3 of its output's scale.
WEIGHT_MODES: dict[str, WeightMode] = {m.name: m for m in (
    # fp32 as the conversion hops judge it: raised to 10x the source's own noise floor where that is higher
    WeightMode("float32", "float32 weights, as the source", None, Tolerance(1e-5, 1e-4, "scale", adaptive=True)),
    WeightMode("float16", QUANTIZATIONS["float16"].summary, QUANTIZATIONS["float16"], Tolerance(1e-5, 1e-3, "scale")),
    WeightMode("uint16", QUANTIZATIONS["uint16"].summary, QUANTIZATIONS["uint16"], Tolerance(1e-5, 1e-3, "scale")),
    WeightMode("uint8", QUANTIZATIONS["uint8"].summary, QUANTIZATIONS["uint8"], None),
)}
BACKENDS = ("wasm", "cpu")


def weight_mode(name: str | None) -> WeightMode:
    """The mode ``--quantize`` names (none: float32); UsageError otherwise."""
    key = (name or "float32").strip().lower()
    if key not in WEIGHT_MODES:
        raise UsageError(f"--quantize {name!r}: TF.js stores weights as one of {', '.join(WEIGHT_MODES)}",
                         hint="one mode per bundle (TF.js loads one model.json per folder), e.g. --quantize uint8")
    return WEIGHT_MODES[key]


def export_tfjs(source: str | Path, out_dir: str | Path, *, quantize: str | None = None,
                inputs: Mapping[str, np.ndarray] | str | Path | None = None,
                image_size: tuple[int, int] | None = None, labels: str | Path | None = None,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                backend: str = "wasm", input_specs=None, weights=None, dims: Mapping[str, int] | None = None,
                trust_pickle: bool = False, seed: int = 0, steps: Steps | None = None) -> EdgeResult:
    """Write a TF.js graph-model bundle of ``source`` to ``out_dir`` (``model.json``, its weight
    shards, manifest, golden data, labels) and check it in TF.js against the source.

    ``quantize`` picks the weight storage (float32, float16, uint16, uint8). ``inputs`` (arrays by
    input name, batch first; an .npz; or a folder of images, resized to ``image_size`` and
    normalized by ``mean``/``std``) are the check's data, else generated ones. ``labels`` and
    ``mean``/``std`` are recorded in the manifest for the page that classifies with the model.
    Image inputs are channels-last (what a browser's pixels are), whatever the source's layout.

    Raises:
        UsageError: bad options, data or labels (nothing written). UnsupportedOpError: the graph
            needs an op TF.js lacks (nothing written). ParityError: the bundle was written but
            failed its check, and its manifest says so.
    """
    from .. import __version__
    from ..formats import open_model
    from ..formats._tf import import_tf, named_function
    from ..formats.tfjs import TfjsSession
    from ..validate.parity import check_artifact
    steps = steps or Steps(enabled=False)
    start = time.perf_counter()
    mode = weight_mode(quantize)
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend!r}: TF.js backends here are {', '.join(BACKENDS)}")
    out_dir = bundle_folder(out_dir, mean, std)
    label_lines = read_labels(labels) if labels is not None else None
    result = EdgeResult(str(out_dir), str(source))
    with steps.step(f"Loading {Path(str(source)).name}"):
        reference = open_model(source, weights=weights, input_specs=input_specs, trust_pickle=trust_pickle, dims=dims)
    try:
        _, feeds, labelled = check_data(reference, inputs, image_size=image_size, mean=mean, std=std,
                                        limit=CHECK_SAMPLES, labels=label_lines, seed=seed, dims=dims)
        tf = import_tf()
        with tempfile.TemporaryDirectory(prefix="modelport-edge-") as scratch, \
                atomic_output(out_dir, directory=True) as folder:
            folder.mkdir()
            tf_source = tensorflow_source(source, reference, Path(scratch), result, weights, input_specs,
                                          trust_pickle, steps, dims)
            with steps.step("Freezing the TensorFlow graph and optimizing it (Grappler)"):
                graph_def, signature = freeze(named_function(tf, tf_source))
                rewrites = rewrite_for_tfjs(graph_def, [t["name"] for t in signature["outputs"].values()])
            with steps.step(f"Writing the TF.js graph model ({mode.summary})"):
                written = write_graph_model(graph_def, signature, folder, quantization=mode.quantization,
                                            generated_by=f"TensorFlow {tf.__version__}",
                                            converted_by=f"modelport {__version__}")
            one = {k: v[:1] for k, v in feeds.items()}
            with TfjsSession(folder, backend=backend) as candidate:
                with steps.step(f"Checking model.json in TF.js {candidate.tfjs_version} ({backend} backend)"):
                    tolerance = mode.tolerance or Tolerance(np.inf, 0.0)  # agreement: every value "within"
                    layout = input_layout(reference, candidate)
                    report = check_artifact(reference, candidate, feeds=feeds, tolerance=tolerance, samples=1,
                                              seed=seed, input_layout=layout)
                passed = report.passed if mode.tolerance is not None else agrees(report)
                golden = in_candidate_layout(reference, candidate, one)
                classes = len(label_lines) if label_lines else None
                result.files.append(BundleFile(
                    "model.json", mode.name, [s.to_dict() | input_entry(s, mean, std) for s in candidate.inputs],
                    [s.to_dict() | output_entry(s, classes) for s in candidate.outputs],
                    sorted(candidate.op_names()), sum((folder / name).stat().st_size for name in written),
                    latency_ms(candidate, golden), passed, mode.rule, report.to_dict()))
                details = {"tfjs": candidate.tfjs_version, "backend": backend, "weights": mode.name,
                           "rewrites": rewrites,
                           "source_inputs": [s.to_dict() for s in reference.inputs],
                           "source_outputs": [s.to_dict() for s in reference.outputs], "labels_annotate": labelled}
            extra = written[1:] + write_goldens(folder, golden, reference.run(one))
            if label_lines:
                (folder / "labels.txt").write_text("\n".join(label_lines) + "\n", encoding="utf-8")
                extra.append("labels.txt")
            (folder / "reports").mkdir()
            (folder / "reports" / "model.json").write_text(to_json(report.to_dict()))
            extra.append("reports/model.json")
            write_manifest(folder, target="tfjs", source=str(source), files=result.files, extra=extra,
                           details=details)
    finally:
        reference.close()
    result.seconds = time.perf_counter() - start
    if not result.passed:
        raise ParityError(None, f"model.json failed the check against the source in TF.js; the bundle was written "
                                f"to {str(out_dir)!r} and its manifest says so", result=result)
    return result
