"""ONNX -> PyTorch: modelport's converter side by side with onnx2torch.

    .venv/bin/python benchmarks/onnx_torch_bench.py [--repeat 30] [--no-node-suite]

For ResNet-18, MobileNetV2 (image models, BatchNorm calibrated) and a TransformerEncoder from
tests/zoo_torch.py, exported to ONNX at batch 1: the conversion time of each converter (to an
eager nn.Module, in process; modelport's .pt2 export is timed apart), the median eager latency
of each module at batch 1 (no torch.compile; where onnx2torch converts the model, both modules are
timed in turn in one process, round after round), and the largest difference of each from ONNX
Runtime.
Then ONNX's node test cases through both, judged by the same comparison, side by side.

onnx2torch (1.5.15, last released 2024) goes into its own venv, ``benchmarks/.venvs/onnx2torch``,
installed with ``--no-deps``; it sees torch, onnx and numpy of modelport's venv through a .pth file,
so both run on the same torch. Never into modelport's venv. (torchvision: see TORCHVISION_STAND_IN.)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.peer_venv import ensure_peer_venv  # noqa: E402

PEER_VENV = REPO / "benchmarks" / ".venvs" / "onnx2torch"
PEER = ["onnx2torch==1.5.15"]
# onnx2torch imports torchvision (for NMS and RoiAlign only). PyPI's torchvision wheels are CUDA
# builds whose extension cannot load beside the CPU torch, and PyTorch's CPU index is out of reach
# here, so the peer venv gets this stand-in: onnx2torch imports, and its NMS and RoiAlign
# conversions fail when run (counted as failures; the figures say how many cases that is).
TORCHVISION_STAND_IN = '''"""Stand-in for torchvision in onnx2torch's benchmark venv (see onnx_torch_bench.py)."""
from types import SimpleNamespace


def _missing(*args, **kwargs):
    raise NotImplementedError("torchvision's CPU build is not installable here")


ops = SimpleNamespace(nms=_missing, box_convert=_missing, roi_align=_missing)
'''
STAND_IN_OPS = ("NonMaxSuppression", "RoiAlign")
MODELS = {"resnet18_calibrated": "image:1,3,224,224", "mobilenet_v2": "image:1,3,224,224",
          "tiny_transformer": "x:1,7,32"}


def _torchvision_stand_in(peer_site: Path) -> None:
    (peer_site / "torchvision").mkdir(exist_ok=True)
    (peer_site / "torchvision" / "__init__.py").write_text(TORCHVISION_STAND_IN)
    (peer_site / "torchvision" / "ops.py").write_text(
        "from . import _missing as nms, _missing as box_convert, _missing as roi_align  # noqa\n")


def ensure_peer() -> Path:
    return ensure_peer_venv(PEER_VENV, PEER, then=_torchvision_stand_in)


def ours(paths: list[Path], repeat: int) -> dict:
    import onnx
    import torch
    from benchmarks.timing import median_ms
    from modelport.convert.onnx_torch import to_module
    from modelport.convert.onnx_torch.convert import export_program
    out = {}
    for path in paths:
        model = onnx.load(str(path))
        start = time.perf_counter()
        module = to_module(model)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        export_program(module, model)
        export = time.perf_counter() - start
        x = torch.from_numpy(np.load(path.with_suffix(".npy")))
        with torch.no_grad():
            result = module(x)
            latency = median_ms(lambda: module(x), repeat)
        out[str(path)] = {"convert_s": seconds, "export_s": export, "latency_ms": latency,
                          "output": (result if isinstance(result, torch.Tensor) else next(iter(result.values()))).numpy()}
    return out


def our_node_suite() -> tuple[int, int]:
    from modelport.convert.node_suite import failures_of, node_cases
    from modelport.convert.onnx_torch.backend import TorchBackend
    cases = node_cases()
    return len(cases) - len(failures_of(cases, TorchBackend.prepare, "")), len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-node-suite", action="store_true")
    args = parser.parse_args()
    peer = ensure_peer()
    import onnxruntime as ort
    with tempfile.TemporaryDirectory(prefix="onnx_torch_bench-") as tmp:
        work = Path(tmp)
        paths = []
        for (name, shape), opset in [(item, opset) for item in MODELS.items() for opset in (None, 17)]:
            # The exporter's default opset (18+, the dynamo exporter), and 17 (the TorchScript exporter).
            path = work / f"{name}_opset{opset or 'default'}.onnx"
            subprocess.run([str(Path(sys.executable).parent / "modelport"), "convert", f"tests.zoo_torch:{name}",
                            str(path), "--input-shape", shape, "--fixed-batch", "--no-check",
                            *(["--opset", str(opset)] if opset else [])], check=True, cwd=REPO, capture_output=True)
            dims = [int(d) for d in shape.split(":")[1].split(",")]
            np.save(path.with_suffix(".npy"), np.random.default_rng(0).standard_normal(dims).astype(np.float32))
            paths.append(path)
        print("modelport ...", flush=True)
        mine = ours(paths, args.repeat)
        print("onnx2torch (own venv) ...", flush=True)
        request = {"models": [str(p) for p in paths], "repeat": args.repeat, "node_suite": not args.no_node_suite}
        done = subprocess.run([str(peer), str(REPO / "benchmarks" / "onnx2torch_peer.py"), json.dumps(request)],
                              capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            raise SystemExit(f"onnx2torch run failed:\n{done.stderr[-3000:]}")
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"\nONNX -> PyTorch, eager nn.Module at batch 1, median of {args.repeat} runs "
              f"(onnx2torch {theirs['version']})")
        print(f"{'model':<34}{'converter':<14}{'convert s':>10}{'export s':>10}{'latency ms':>12}"
              f"{'vs onnx2torch':>15}{'max |err| vs ORT':>18}")
        for path in paths:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            x = np.load(path.with_suffix(".npy"))
            reference = session.run(None, {session.get_inputs()[0].name: x})[0]
            a, b = mine[str(path)], theirs["models"][str(path)]
            if "modelport_latency_ms" in b:  # timed in turn with onnx2torch's, in one process
                a = {**a, "latency_ms": b["modelport_latency_ms"]}
            name = path.stem
            ratio = f"{a['latency_ms'] / b['latency_ms']:>14.2f}x" if "error" not in b else f"{'-':>15}"
            print(f"{name:<34}{'modelport':<14}{a['convert_s']:>10.2f}{a['export_s']:>10.2f}{a['latency_ms']:>12.2f}"
                  f"{ratio}{np.abs(a['output'] - reference).max():>18.2e}")
            if "error" in b:
                print(f"{'':<34}{'onnx2torch':<14} fails: {b['error']}")
                continue
            peer_out = np.load(path.with_suffix(".onnx2torch.npy"))
            print(f"{'':<34}{'onnx2torch':<14}{b['convert_s']:>10.2f}{'-':>10}{b['latency_ms']:>12.2f}"
                  f"{1.0:>14.2f}x{np.abs(peer_out - reference).max():>18.2e}")
    if theirs["node_suite"] is not None:
        passed, total = our_node_suite()
        peer_passed = len(theirs["node_suite"]["passed"])
        print(f"\nONNX node test cases (onnx {__import__('onnx').__version__}), the same comparison for both:")
        print(f"  modelport   {passed:>5} of {total} ({passed / total:.1%})")
        print(f"  onnx2torch  {peer_passed:>5} of {total} ({peer_passed / total:.1%})")
        from modelport.convert.node_suite import node_cases
        blocked = sum(1 for case in node_cases() if case.name in theirs["node_suite"]["failed"]
                      and any(n.op_type in STAND_IN_OPS for n in case.model.graph.node))
        print(f"  (of onnx2torch's failures, {blocked} are NonMaxSuppression/RoiAlign cases, which need torchvision: "
              f"at most {(peer_passed + blocked) / total:.1%} with it)")


if __name__ == "__main__":
    main()
