"""The bundle folder an app team receives: the model files, ``manifest.json`` (what each file is,
its inputs and outputs, its sha256), golden inputs and expected outputs for an on-device test, and
one parity report per file. It is staged beside the destination and renamed into place whole."""
from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class BundleFile:
    """One model file of the bundle and what was measured on it."""
    name: str
    mode: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    ops: list[str]
    size: int
    latency_ms: float | None = None
    passed: bool | None = None  # None: not checked
    rule: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    # Where each op runs, for runtimes that split a model between a delegate and their own kernels
    # (ExecuTorch: {"XNNPACK": {op: count}, "portable": {op: count}}).
    placement: dict[str, dict[str, int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = {"file": self.name, "mode": self.mode, "bytes": self.size, "latency_ms": self.latency_ms,
                 "passed": self.passed, "rule": self.rule, "inputs": self.inputs, "outputs": self.outputs,
                 "ops": self.ops}
        if self.placement is not None:
            entry["placement"] = self.placement
        return entry


@dataclass
class EdgeResult:
    """What an edge export wrote and measured: its files, and the conversion hops before them."""
    out_dir: str
    source: str
    files: list[BundleFile] = field(default_factory=list)
    conversion: list[dict[str, Any]] = field(default_factory=list)  # the hops to the format the target starts from
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(f.passed is not False for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "source": self.source, "passed": self.passed,
                "seconds": round(self.seconds, 3), "conversion": self.conversion,
                "models": [f.to_dict() | {"report": f.report} for f in self.files]}


def write_goldens(folder: Path, inputs: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> list[str]:
    """``inputs.npy`` / ``expected.npy`` for a single tensor, ``.npz`` by name for several."""
    written = []
    for stem, values in (("inputs", inputs), ("expected", expected)):
        if len(values) == 1:
            np.save(folder / f"{stem}.npy", next(iter(values.values())))
            written.append(f"{stem}.npy")
        else:
            np.savez(folder / f"{stem}.npz", **values)
            written.append(f"{stem}.npz")
    return written


def write_manifest(folder: Path, *, target: str, source: str, files: list[BundleFile], extra: list[str],
                   details: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest.json``: the bundle's table of contents, with a sha256 for every file in it."""
    from .. import __version__
    manifest = {
        "modelport": __version__, "target": target, "source": source, **details,
        "models": [f.to_dict() | {"sha256": sha256_of(folder / f.name)} for f in files],
        "files": {name: sha256_of(folder / name) for name in extra},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def to_json(value) -> str:
    return json.dumps(value, indent=1, default=str) + "\n"


def check_feeds(reference, calibration, seed: int, dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """The data every file is checked on: the calibration (or given) inputs, else 8 generated ones
    (dynamic dims other than the batch sized by ``dims``, by dim or input name)."""
    if calibration is not None:
        missing = [spec.name for spec in reference.inputs if spec.name not in calibration]
        if missing:
            from ..errors import UsageError
            raise UsageError(f"the data holds {sorted(calibration)}; the model's inputs are "
                             f"{[spec.name for spec in reference.inputs]}",
                             hint="save the arrays under the input names: np.savez('inputs.npz', **{name: batch})")
        return {spec.name: np.asarray(calibration[spec.name], dtype=spec.dtype) for spec in reference.inputs}
    from ..validate.inputs import generate_feeds
    return generate_feeds(reference.inputs, seed=seed, batch=8, dims=dims)


def latency_ms(session, feed: Mapping[str, np.ndarray], runs: int = 20) -> float:
    """Median latency of one inference of ``feed`` in ``session`` (its runtime), after a warm-up run."""
    session.run(feed)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        session.run(feed)
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def write_reports(folder: Path, files: list[BundleFile]) -> list[str]:
    """``reports/<file stem>.json``, each file's parity report; returns their names for the manifest."""
    (folder / "reports").mkdir(exist_ok=True)
    names = []
    for bundle_file in files:
        name = f"reports/{Path(bundle_file.name).stem}.json"
        (folder / name).write_text(to_json(bundle_file.report))
        names.append(name)
    return names


def raise_if_failed(result: EdgeResult, out_dir) -> None:
    """ParityError naming the files that failed their check (the bundle stays, its manifest marks them)."""
    if not result.passed:
        from ..errors import ParityError
        failed = [f.name for f in result.files if f.passed is False]
        raise ParityError(None, f"{', '.join(failed)} failed the check against the source; the bundle was written "
                                f"to {str(out_dir)!r} and its manifest marks them", result=result)

