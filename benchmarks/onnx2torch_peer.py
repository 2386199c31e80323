"""Run by benchmarks/onnx_torch_bench.py inside onnx2torch's own venv (never modelport's): converts
the given ONNX models with onnx2torch (timing the conversion and the eager latency) and runs ONNX's
node test cases through it, judged by the same comparison modelport's cases use. Prints JSON."""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class Onnx2TorchRep:
    def __init__(self, model):
        from onnx2torch import convert
        self.module = convert(model)
        initializers = {init.name for init in model.graph.initializer}
        self.inputs = [value.name for value in model.graph.input if value.name not in initializers]

    def run(self, inputs):
        from onnx import TensorProto, numpy_helper
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in self.inputs]
        inputs = [numpy_helper.to_array(i) if isinstance(i, TensorProto) else i for i in inputs]
        with torch.no_grad():
            result = self.module(*[torch.from_numpy(np.array(i)) for i in inputs])
        results = result if isinstance(result, (tuple, list)) else [result]
        return [r.numpy() if isinstance(r, torch.Tensor) else r for r in results]


def node_suite() -> dict:
    from modelport.convert.node_suite import node_cases, run_case
    passed, failed = [], []
    for case in node_cases():
        try:
            run_case(case, Onnx2TorchRep)
            passed.append(case.name)
        except Exception:  # noqa: BLE001  (a failure is a count)
            failed.append(case.name)
    return {"passed": passed, "failed": failed}


def models(paths: list[str], repeat: int) -> dict:
    from onnx2torch import convert
    out = {}
    for path in paths:
        model = onnx.load(path)
        start = time.perf_counter()
        try:
            module = convert(model).eval()
        except Exception as exc:  # noqa: BLE001  (reported as the peer's result for this model)
            out[path] = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
            continue
        seconds = time.perf_counter() - start
        feed = np.load(Path(path).with_suffix(".npy"))
        x = torch.from_numpy(feed)
        # modelport's module too, in this same process, timed in turn with onnx2torch's round after
        # round: both see the same machine state (separate processes drift by tens of percent).
        from modelport.convert.onnx_torch import to_module
        ours = to_module(model)
        with torch.no_grad():
            result = module(x)
            module(x), ours(x)  # warm-up
            times: dict[str, list[float]] = {"onnx2torch": [], "modelport": []}
            for _ in range(repeat):
                for label, run in (("onnx2torch", module), ("modelport", ours)):
                    start = time.perf_counter()
                    run(x)
                    times[label].append((time.perf_counter() - start) * 1000)
        np.save(Path(path).with_suffix(".onnx2torch.npy"), (result[0] if isinstance(result, (tuple, list)) else result).numpy())
        out[path] = {"convert_s": seconds, "latency_ms": statistics.median(times["onnx2torch"]),
                     "modelport_latency_ms": statistics.median(times["modelport"])}
    return out


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    from importlib.metadata import version
    print(json.dumps({"version": version("onnx2torch"),
                      "models": models(request["models"], request["repeat"]),
                      "node_suite": node_suite() if request["node_suite"] else None}))
