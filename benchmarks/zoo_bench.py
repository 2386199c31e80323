"""The model zoo: modelport's routes on the world's architectures, the peers beside them.

    .venv/bin/python benchmarks/zoo_bench.py [--family timm,hf,keras] [--model NAME ...]
        [--route onnx,tflite,tfjs,pytorch] [--no-peers] [--fresh] [--timeout 900]

Models (random weights, nothing downloaded): every timm architecture of tests/zoo_timm.py (BatchNorm
calibrated, residual branches and heads live), every transformers architecture of tests/zoo_hf.py
(tiny configs), every keras.applications model (96 px where it allows, BatchNorm calibrated on the
pixels its preprocessing expects).

Routes, each run as a user would run it (the CLI in a subprocess, ``--json``) and judged by
modelport's default check:

    onnx     the source -> ONNX                     (modelport convert SRC m.onnx)
    tflite   that ONNX -> SavedModel -> TFLite      (modelport convert m.onnx m.tflite; LiteRT runs it)
    tfjs     that ONNX -> a TF.js graph model       (modelport edge tfjs m.onnx DIR; TF.js in Node runs it)
    pytorch  that ONNX -> PyTorch                   (modelport convert m.onnx m.pt2)

A cell is ``pass`` (with the worst max |error| / output scale), ``parity`` (the check failed: the
figure), ``refused`` (exit 2: the reason), ``crash`` (exit 3, a timeout or a signal) or ``-`` (its
input, the ONNX model, was not produced).

Peers, on the same models, judged by the same ``modelport validate`` against the same source:
torch's exporter called directly (``torch.onnx.export(dynamo=True)``, torch sources), tf2onnx
called directly (``tf2onnx.convert.from_keras``, Keras sources; run in modelport's venv, where the
project installs it), onnx2tf 1.29 (ONNX -> TFLite, in ``benchmarks/.venvs/onnx2tf``), onnx2torch 1.5.15
(ONNX -> PyTorch, in ``benchmarks/.venvs/onnx2torch``), litert-torch 0.10 (PyTorch -> TFLite, torch
sources, in ``benchmarks/.venvs/litert_torch``; its column compares with modelport's tflite route).

Every cell is kept in ``benchmarks/results/zoo.json`` as it finishes, so an interrupted run goes on
where it stopped (``--fresh`` starts over); the table, the pass rates and ``docs/zoo-coverage.md``
are made from that file.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results" / "zoo.json"
WORK = REPO / "benchmarks" / ".work" / "zoo"
DOC = REPO / "docs" / "zoo-coverage.md"
MODELPORT = [str(REPO / ".venv" / "bin" / "modelport")]
PYTHON = str(REPO / ".venv" / "bin" / "python")
ROUTES = ("onnx", "tflite", "tfjs", "pytorch")
COLUMNS = [*ROUTES, "peer:onnx", "peer:tflite", "peer:pytorch", "peer:torch-tflite"]
PEER_ROUTES = {"onnx": "torch.onnx.export / tf2onnx", "tflite": "onnx2tf", "pytorch": "onnx2torch",
               "torch-tflite": "litert-torch"}
LITERT_VENV = REPO / "benchmarks" / ".venvs" / "litert_torch"
# litert-torch 0.10 (torch < 2.15, ai-edge-litert 2.3: the pinned ones) and what it needs beyond
# modelport's venv, installed --no-deps into its own venv (modelport's packages seen through a .pth).
LITERT = ["litert-torch==0.10.0", "multipledispatch", "ai-edge-quantizer==0.10.*", "litert-converter==0.5.*",
          "torchao", "jaxtyping", "wadler-lindig", "fire", "tabulate", "sentencepiece", "kagglehub",
          "litert-lm-builder", "immutabledict"]
# keras.applications at 96 px unless the architecture needs more (NASNetLarge's fixed stem).
KERAS_SIZES = {"NASNetLarge": 331, "NASNetMobile": 224, "InceptionV3": 96, "InceptionResNetV2": 96, "Xception": 96}


# -- the models -------------------------------------------------------------------------------------
def zoo(families: set[str]) -> list[dict]:
    """Each model: family, name, source (factory spec or file, made on demand), modelport arguments."""
    models = []
    if "timm" in families:
        from tests import zoo_timm
        for name, _, size in zoo_timm.ARCHITECTURES:
            models.append({"family": "timm", "name": name, "source": f"tests.zoo_timm:{name.replace('.', '_')}",
                           "args": ["--input-shape", f"x:1,3,{size},{size}"]})
    if "hf" in families:
        from tests import zoo_hf
        for name, (_, args) in zoo_hf.ARCHITECTURES.items():
            models.append({"family": "transformers", "name": name, "source": f"tests.zoo_hf:{name}", "args": list(args)})
    if "keras" in families:
        for name in keras_applications():
            models.append({"family": "keras", "name": name, "source": str(WORK / f"{name}.keras"), "args": [],
                           "make": name})
    return models


def keras_applications() -> list[str]:
    listing = subprocess.run([PYTHON, "-c", "import keras, inspect; print(' '.join(n for n, f in "
                              "inspect.getmembers(keras.applications, inspect.isfunction) if n[0].isupper()))"],
                             capture_output=True, text=True, env=_env())
    return listing.stdout.split()


def _make_keras(name: str, path: Path) -> str | None:
    """Build and save the application (a subprocess: Keras stays out of the benchmark's process)."""
    if path.exists():
        return None
    size = KERAS_SIZES.get(name, 96)
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from tests import zoo_keras; "
            f"zoo_keras.application({name!r}, {size}).save({str(path)!r})")
    done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=_env(), timeout=1800)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1][:200]


# -- one cell ---------------------------------------------------------------------------------------
def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


def run_cli(args: list[str], timeout: int) -> dict:
    """Run ``modelport ARGS --json``: the cell (status, figure, message, seconds)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(MODELPORT + [*map(str, args), "--json"], capture_output=True, text=True,
                              timeout=timeout, env=_env(), cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"status": "crash", "message": f"timed out after {timeout} s", "seconds": timeout}
    seconds = round(time.perf_counter() - start, 1)
    try:
        data = json.loads(done.stdout)
    except ValueError:
        data = {}
    figure = worst_error(data)
    if done.returncode == 0:
        return {"status": "pass", "figure": figure, "seconds": seconds, "warnings": data.get("warnings", [])[:3]}
    if done.returncode == 1:
        return {"status": "parity", "figure": figure, "seconds": seconds, "message": _message(data, done)}
    status = "refused" if done.returncode == 2 else "crash"
    message = _message(data, done)
    if done.returncode < 0:  # a signal: -9 on this machine is the kernel's out-of-memory killer
        message = f"killed by signal {-done.returncode}" + (" (out of memory)" if done.returncode == -9 else "")
    return {"status": status, "seconds": seconds, "message": message, "code": done.returncode}


def _message(data: dict, done) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))[:300]
    tail = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
    return (tail[-1] if tail else f"exit {done.returncode}")[:300]


def worst_error(data) -> float | None:
    """The largest max |error| / output scale of every parity report in a JSON result."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if "max_abs" in value and "scale" in value and value.get("max_abs") is not None:
                scale = value.get("scale") or 0.0
                found.append(value["max_abs"] / scale if scale else value["max_abs"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(data)
    return max(found) if found else None


# -- the routes -------------------------------------------------------------------------------------
def run_model(model: dict, routes: list[str], peers: bool, timeout: int, cells: dict) -> None:
    name = model["name"]
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "model.onnx"
    if model.get("make"):
        problem = _make_keras(model["make"], Path(model["source"]))
        if problem:
            cells["onnx"] = {"status": "crash", "message": f"building the model: {problem}", "seconds": 0}
            return
    todo = {
        "onnx": lambda: run_cli(["convert", model["source"], onnx_path, *model["args"]], timeout),
        "tflite": lambda: run_cli(["convert", onnx_path, folder / "model.tflite", *_dims(model)], timeout),
        "tfjs": lambda: run_cli(["edge", "tfjs", onnx_path, folder / "tfjs", *_dims(model)], timeout),
        "pytorch": lambda: run_cli(["convert", onnx_path, folder / "model.pt2", *_dims(model)], timeout),
    }
    # A later column of a model whose folder was tidied away (a rerun with --again) needs its ONNX again:
    # rebuilt, not re-recorded, when the kept onnx cell says it converted.
    wanted = [r for r in routes if r not in cells]
    if peers:
        wanted += [c for c in ("peer:tflite", "peer:pytorch") if c not in cells]
    if (any(r != "onnx" for r in wanted) and not onnx_path.exists()
            and cells.get("onnx", {}).get("status") in ("pass", "parity")):
        todo["onnx"]()
    for route in routes:
        if route in cells:
            continue
        if route != "onnx" and not onnx_path.exists():
            cells[route] = {"status": "-", "message": "no ONNX model"}
            continue
        cells[route] = todo[route]()
        print(f"  {name:32} {route:8} {_cell_text(cells[route])}", flush=True)
    if peers:
        run_peers(model, folder, onnx_path, timeout, cells)


def _input_shapes(model: dict) -> list[tuple[str, list[str], str]]:
    """(name, dims as written, dtype) of each --input-shape of a model's arguments."""
    args, shapes = model["args"], []
    for i, value in enumerate(args):
        if value == "--input-shape":
            name, dims, *dtype = args[i + 1].split(":")
            shapes.append((name, dims.split(","), dtype[0] if dtype else "float32"))
    return shapes


def _dims(model: dict) -> list[str]:
    """The --dim arguments of a model, which later hops need as the first did."""
    args, out = model["args"], []
    for i, value in enumerate(args):
        if value == "--dim":
            out += ["--dim", args[i + 1]]
    return out


def run_peers(model: dict, folder: Path, onnx_path: Path, timeout: int, cells: dict) -> None:
    if "peer:onnx" not in cells:
        peer_onnx = folder / "peer.onnx"
        built = _peer_to_onnx(model, peer_onnx, timeout)
        cells["peer:onnx"] = built if built else run_cli(["validate", model["source"], peer_onnx, *model["args"]], timeout)
        print(f"  {model['name']:32} {'peer:onnx':8} {_cell_text(cells['peer:onnx'])}", flush=True)
    if "peer:tflite" not in cells and onnx_path.exists():
        peer_tflite = folder / "onnx2tf" / "model_float32.tflite"
        built = _onnx2tf(onnx_path, folder / "onnx2tf", timeout)
        cells["peer:tflite"] = built if built else run_cli(["validate", onnx_path, peer_tflite, *_dims(model)], timeout)
        print(f"  {model['name']:32} {'peer:tfl':8} {_cell_text(cells['peer:tflite'])}", flush=True)
    if "peer:torch-tflite" not in cells and model["family"] != "keras":
        peer = folder / "litert_torch.tflite"
        built = _litert_torch(model, peer, timeout)
        cells["peer:torch-tflite"] = built if built else run_cli(["validate", model["source"], peer, *model["args"]],
                                                                 timeout)
        print(f"  {model['name']:32} {'peer:lt':8} {_cell_text(cells['peer:torch-tflite'])}", flush=True)
    if "peer:pytorch" not in cells and onnx_path.exists():
        peer_pt2 = folder / "peer.pt2"
        for stale in (peer_pt2, peer_pt2.with_suffix(".pt")):
            stale.unlink(missing_ok=True)
        built = _onnx2torch(onnx_path, peer_pt2, model, timeout)
        written = peer_pt2 if peer_pt2.exists() else peer_pt2.with_suffix(".pt")
        cells["peer:pytorch"] = built if built else run_cli(["validate", onnx_path, written, *_dims(model)], timeout)
        print(f"  {model['name']:32} {'peer:pt':8} {_cell_text(cells['peer:pytorch'])}", flush=True)


# A Hugging Face decoder's cache is no tensor: a user exporting one turns it off first.
NO_CACHE = """if getattr(getattr(model, "config", None), "use_cache", False):
    model.config.use_cache = False
"""
PEER_TORCH = """
import sys, torch, importlib
sys.path.insert(0, {repo!r})
module, name = {source!r}.split(":")
model = getattr(importlib.import_module(module), name)()
{no_cache}specs = {specs!r}
args, shapes = [], []
for shape, dtype, names in specs:
    args.append(torch.randint(0, 10, [2 if d is None else d for d in shape]) if dtype == "int64"
                else torch.randn([2 if d is None else d for d in shape]))
    shapes.append({{i: torch.export.Dim.DYNAMIC for i, d in enumerate(shape) if d is None}})
torch.onnx.export(model, tuple(args), {dst!r}, dynamo=True, input_names=[n for _, _, n in specs],
                  dynamic_shapes=tuple(shapes), external_data=False)
"""
PEER_KERAS = """
import tf2onnx, keras
model = keras.saving.load_model({source!r}, compile=False)
tf2onnx.convert.from_keras(model, output_path={dst!r})
"""


def _peer_to_onnx(model: dict, dst: Path, timeout: int) -> dict | None:
    """torch's exporter (torch sources) or tf2onnx (Keras sources), called directly; None when the
    artifact was written (then judged), else the failure cell."""
    if model["family"] == "keras":
        code = PEER_KERAS.format(source=model["source"], dst=str(dst))
    else:
        specs = [([None if j == 0 or not d.isdigit() else int(d) for j, d in enumerate(dims)], dtype, name)
                 for name, dims, dtype in _input_shapes(model)]
        code = PEER_TORCH.format(repo=str(REPO), source=model["source"], specs=specs, dst=str(dst), no_cache=NO_CACHE)
    return _run_python(code, timeout, [PYTHON])


def _onnx2torch(onnx_path: Path, dst: Path, model: dict, timeout: int) -> dict | None:
    """onnx2torch in its venv: the module, saved with torch.export at the ONNX model's batch of 1 (or,
    where torch.export cannot follow it, traced with torch.jit.trace and saved as TorchScript). The
    model is first brought down to opset 17 by onnx's own version converter, the newest onnx2torch
    1.5.15 knows (at 18 it refuses every ReduceMean), and Reshape's allowzero=1, which it refuses, is
    cleared where the shape asks for no 0 (the same op then): the peer is judged on what it can read."""
    from benchmarks.onnx_torch_bench import PEER, PEER_VENV, _torchvision_stand_in
    from benchmarks.peer_venv import ensure_peer_venv
    python = ensure_peer_venv(PEER_VENV, PEER, then=_torchvision_stand_in)
    code = f"""
import onnx, torch, onnxruntime as ort, numpy as np
from onnx2torch import convert
from onnx import version_converter
model = onnx.load({str(onnx_path)!r})
if max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) > 17:  # onnx2torch 1.5.15 has no converters for opset 18's Reduce*/Split forms
    try:
        model = version_converter.convert_version(model, 17)
    except Exception:
        pass
for node in model.graph.node:  # nor Reshape's allowzero=1 (torch's exporter writes it): the same where no 0 is asked
    shape = next((i for i in model.graph.initializer if node.op_type == "Reshape" and i.name == node.input[1]), None)
    if shape is not None and 0 not in onnx.numpy_helper.to_array(shape).tolist():
        for attribute in node.attribute:
            if attribute.name == "allowzero":
                attribute.i = 0
module = convert(model).eval()
session = ort.InferenceSession({str(onnx_path)!r})
args = []
for spec in session.get_inputs():
    shape = [d if isinstance(d, int) else (1 if i == 0 else 16) for i, d in enumerate(spec.shape)]
    args.append(torch.randint(0, 10, shape) if "int" in spec.type else torch.randn(shape))
try:
    torch.export.save(torch.export.export(module, tuple(args), strict=False), {str(dst)!r})
except Exception:  # its modules read shapes out of tensors, which torch.export cannot follow: a trace then
    torch.jit.trace(module, tuple(args)).save({str(dst.with_suffix(".pt"))!r})
"""
    return _run_python(code, timeout, [str(python)])


def _onnx2tf(onnx_path: Path, out: Path, timeout: int) -> dict | None:
    """onnx2tf in its venv (benchmarks/onnx_tf_bench.py installs it): ``onnx2tf -i m.onnx -o out``,
    whose float32 TFLite (channels-last, as onnx2tf writes it) is then judged."""
    import numpy as np
    from benchmarks.onnx_tf_bench import CALIBRATION, ensure_peer
    command = ensure_peer()
    shutil.rmtree(out, ignore_errors=True)
    work = out.parent / "onnx2tf_work"
    work.mkdir(exist_ok=True)
    if not (work / CALIBRATION).exists():  # onnx2tf would fetch this sample from the network
        np.save(work / CALIBRATION, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    start = time.perf_counter()
    try:
        # its venv's bin on PATH: onnx2tf simplifies the model with the onnxsim command first
        env = {**_env(), "PATH": f"{command.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run([str(command), "-i", str(onnx_path.resolve()), "-o", str(out.resolve())],
                              capture_output=True, text=True, timeout=timeout, cwd=work, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "crash", "message": f"timed out after {timeout} s", "seconds": timeout}
    if done.returncode == 0 and (out / "model_float32.tflite").exists():
        return None
    return {"status": "refused", "message": _onnx2tf_reason(done.stdout + done.stderr, done.returncode),
            "seconds": round(time.perf_counter() - start, 1)}


def _onnx2tf_reason(log: str, code: int) -> str:
    """The op onnx2tf stopped at and the exception it raised (its log ends with generic advice)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    op = re.findall(r"ERROR: onnx_op_name: (\S+)", plain)
    raised = _raised(plain)
    parts = ([f"at {op[-1]}"] if op else []) + ([raised[0]] if raised else [])
    return ("; ".join(parts) or f"exit {code}")[:300]


PEER_LITERT = """
import sys, torch, importlib
sys.path.insert(0, {repo!r})
import litert_torch
module, name = {source!r}.split(":")
model = getattr(importlib.import_module(module), name)().eval()
{no_cache}args = tuple(torch.randint(0, 10, shape) if dtype == "int64" else torch.randn(shape) for shape, dtype in {specs!r})
litert_torch.convert(model, args).export({dst!r})
"""


def _litert_torch(model: dict, dst: Path, timeout: int) -> dict | None:
    """litert-torch (PyTorch -> TFLite) in its venv, at the shapes --input-shape gives (batch 1;
    named dims at 16)."""
    from benchmarks.peer_venv import ensure_peer_venv
    python = ensure_peer_venv(LITERT_VENV, LITERT)
    specs = [([int(d) if d.isdigit() else 16 for d in dims], dtype) for _, dims, dtype in _input_shapes(model)]
    return _run_python(PEER_LITERT.format(repo=str(REPO), source=model["source"], specs=specs, dst=str(dst),
                                          no_cache=NO_CACHE),
                       timeout, [str(python)])


def _raised(log: str) -> list[str]:
    """The lines of a log that state an exception (``ValueError: ...``), in order."""
    return re.findall(r"^[\w.]+(?:Error|Exception)\b.*$", log, flags=re.M)


def _run_python(code: str, timeout: int, python: list[str]) -> dict | None:
    start = time.perf_counter()
    try:
        done = subprocess.run([*python, "-c", code], capture_output=True, text=True, timeout=timeout, env=_env(),
                              cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"status": "crash", "message": f"timed out after {timeout} s", "seconds": timeout}
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip() and not line.startswith(" ")]
    raised = _raised(done.stderr)
    reason = raised[-1] if raised else lines[-1] if lines else f"exit {done.returncode}"
    return {"status": "refused", "message": reason[:300],
            "seconds": round(time.perf_counter() - start, 1)}


# -- the table --------------------------------------------------------------------------------------
def _cell_text(cell: dict | None) -> str:
    if not cell:
        return ""
    status, figure = cell["status"], cell.get("figure")
    if status == "pass":
        return "pass" + (f" {figure:.1e}" if figure is not None else "") + f" ({cell.get('seconds', 0):.0f}s)"
    if status == "parity":
        return f"PARITY {figure:.1e}" if figure is not None else "PARITY"
    if status == "-":
        return "-"
    return f"{status.upper()}: {cell.get('message', '')[:90]}"


def rates(results: dict, models: list[dict]) -> dict[str, tuple[int, int]]:
    counts = {}
    for column in COLUMNS:
        ran = [results.get(m["name"], {}).get(column) for m in models]
        ran = [c for c in ran if c]
        counts[column] = (sum(c["status"] == "pass" for c in ran), len(ran))
    return counts


def render_rates(results: dict, models: list[dict]) -> str:
    """Pass rates per route, modelport's beside the peers' on the same models."""
    counts = rates(results, models)
    peers_of = {"onnx": ["onnx"], "tflite": ["tflite", "torch-tflite"], "tfjs": [], "pytorch": ["pytorch"]}
    lines = ["| route | modelport | peers (same models, same check) |", "|---|---|---|"]
    for route in ROUTES:
        passed, ran = counts[route]
        peers = [(PEER_ROUTES[p], counts.get(f"peer:{p}")) for p in peers_of[route]]
        peer_text = "; ".join(f"{name} {c[0]}/{c[1]} ({100 * c[0] / c[1]:.0f} %)" for name, c in peers
                              if c and c[1]) or "-"
        mine = f"{passed}/{ran} ({100 * passed / ran:.0f} %)" if ran else "-"
        lines.append(f"| {route} | {mine} | {peer_text} |")
    return "\n".join(lines)


def render(results: dict, models: list[dict]) -> str:
    lines = ["| family | model | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    for model in models:
        cells = results.get(model["name"], {})
        lines.append(f"| {model['family']} | {model['name']} | "
                     + " | ".join(_cell_text(cells.get(c)).replace("|", "/") for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n\n" + render_rates(results, models)


HOW = """\
## How it was run

- **Models**: random weights, nothing downloaded. timm (tests/zoo_timm.py: BatchNorm calibrated, residual
  branches and heads live), transformers from tiny configs (tests/zoo_hf.py; dynamic sequence lengths),
  every keras.applications model (BatchNorm calibrated on the pixels its preprocessing expects).
- **modelport's routes**, each the CLI in a subprocess, judged by its default check: `convert SRC m.onnx`;
  `convert m.onnx m.tflite` (through a SavedModel; LiteRT runs it); `edge tfjs m.onnx DIR` (TF.js in Node);
  `convert m.onnx m.pt2`.
- **Peers**, each judged by the same `modelport validate` against the same source:
  - *torch.onnx.export* (dynamo, dynamic batch) and *tf2onnx* (`from_keras`) called directly; a
    Hugging Face decoder gets `use_cache=False`, as a user exporting it would set.
  - *onnx2tf 1.29* on modelport's ONNX, in its own venv with onnxsim on its PATH (it simplifies first),
    TensorFlow 2.21; its float32 TFLite judged. Its refusals name the op it stopped at.
  - *onnx2torch 1.5.15* on modelport's ONNX brought down to opset 17 (the newest it converts) with
    Reshape's `allowzero=1` cleared where no 0 is asked; its module saved with torch.export, or with
    torch.jit.trace where torch.export cannot follow it.
  - *litert-torch 0.10* (PyTorch -> TFLite) on the torch sources, at batch 1 and the named dims at 16.
"""


# Why the largest keras.applications models crash on their way to ONNX (measured apart from the run,
# with tracemalloc and the process's peak RSS, on ConvNeXtTiny): the cells say only "crash".
TF2ONNX_MEMORY = (
    "The keras -> onnx crashes are tf2onnx running out of memory: the kernel kills the process (signal 9). "
    "Its conversion peaks at about 50x the weights' size (ConvNeXtTiny, 115 MB of weights: 5.8 GB; about 0.9 GB "
    "in convert_variables_to_constants_v2, 0.3 GB in Grappler, 3.7 GB in tf2onnx's own graph processing), so "
    "ConvNeXtLarge (0.8 GB of weights), ConvNeXtXLarge (1.4 GB) and EfficientNetV2L (0.5 GB) need more than this "
    "machine's 24 GiB.")


def write_doc(results: dict, models: list[dict]) -> None:
    mine, theirs = [], []
    for model in models:
        for route, cell in results.get(model["name"], {}).items():
            if cell["status"] not in ("pass", "-"):
                line = (f"- **{model['name']}** ({model['family']}), {route}: {cell['status']}"
                        + (f", {cell['figure']:.2e} of the output scale" if cell.get("figure") else "")
                        + (f": {cell.get('message', '')}" if cell.get("message") else ""))
                (theirs if route.startswith("peer:") else mine).append(line)
    DOC.write_text(
        "# The model zoo: coverage\n\n"
        "Generated by `make bench-zoo` (`benchmarks/zoo_bench.py`) from `benchmarks/results/zoo.json`; do not edit.\n"
        "Each cell: the route's verdict by modelport's default check, with the worst max |error| / output scale,\n"
        "and seconds. Peers are judged by the same `modelport validate` against the same source.\n\n"
        + render_rates(results, models) + "\n\n" + HOW + "\n## Every model\n\n" + render(results, models).split("\n\n")[0]
        + "\n\n## modelport's failures, with their reasons\n\n" + ("\n".join(mine) or "none")
        + (f"\n\n{TF2ONNX_MEMORY}" if any("keras -> onnx" in line for line in mine) else "")
        + "\n\n## The peers' failures\n\n" + ("\n".join(theirs) or "none") + "\n")


def _save(name: str, cells: dict) -> dict:
    """Merge one model's cells into the results file (re-read first: another run may have written
    other models meanwhile) and write it whole, atomically."""
    import fcntl
    with open(RESULTS.with_suffix(".lock"), "w") as lock:  # runs of other families may write meanwhile
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[name] = cells
        staged = RESULTS.with_suffix(f".json.{os.getpid()}.partial")
        staged.write_text(json.dumps(results, indent=1, sort_keys=True))
        staged.replace(RESULTS)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="timm,hf,keras")
    parser.add_argument("--model", action="append", help="only these models (repeatable)")
    parser.add_argument("--route", default=",".join(ROUTES))
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="forget the kept results")
    parser.add_argument("--redo", action="store_true", help="run the chosen models again (their kept cells are dropped)")
    parser.add_argument("--again", default="", help="run these columns again for the chosen models (e.g. tflite,peer:pytorch)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep each model's converted files in benchmarks/.work/zoo (removed by default)")
    parser.add_argument("--report-only", action="store_true", help="print the table and write the doc, run nothing")
    args = parser.parse_args(argv)
    models = zoo(set(args.family.split(",")))
    if args.model:
        models = [m for m in models if m["name"] in args.model]
    results = {} if args.fresh or not RESULTS.exists() else json.loads(RESULTS.read_text())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for index, model in enumerate(models, 1):
            print(f"[{index}/{len(models)}] {model['family']} {model['name']}", flush=True)
            if args.redo:
                results.pop(model["name"], None)
            cells = results.setdefault(model["name"], {})
            for column in filter(None, args.again.split(",")):
                cells.pop(column, None)
            try:
                run_model(model, args.route.split(","), not args.no_peers, args.timeout, cells)
            finally:
                results = _save(model["name"], cells)
                if not args.keep_work:  # the whole zoo's artifacts come to ~50 GB
                    shutil.rmtree(WORK / model["name"], ignore_errors=True)
                    if model.get("make"):
                        Path(model["source"]).unlink(missing_ok=True)
    all_models = zoo({"timm", "hf", "keras"})  # the table and the doc show every model run so far
    print(render(results, [m for m in all_models if m["name"] in results]))
    write_doc(results, [m for m in all_models if m["name"] in results])
    return 0


if __name__ == "__main__":
    sys.exit(main())
