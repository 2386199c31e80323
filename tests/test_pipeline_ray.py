"""modelport pipeline --ray: the jobs as tasks on a real local Ray head (started on 127.0.0.1 by the
test, stopped with it): the same results as the local executor, artifacts back in the driver's
output folder, a worker killed mid-job retried, and an address where no head answers refused."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ray_head import free_port, local_head
from tests.test_pipeline import MINIMAL, REPO, _project, keras_model  # noqa: F401  (keras_model: a fixture)

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_head():
    with local_head(cpus=2) as address:
        yield address


def _pipeline(*args, cwd=REPO, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli", "pipeline", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, **kwargs)


def _outputs(onnx_path: Path, feed: dict) -> list[np.ndarray]:
    import onnxruntime as ort
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, feed)


def test_the_same_pipeline_gives_the_same_results_locally_and_on_ray(ray_head, tmp_path, keras_model):
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local, remote = _project(tmp_path / "local", keras_model), _project(tmp_path / "ray", keras_model)
    here = _pipeline(local, "--jobs", "2", "--json")
    assert here.returncode == 0, here.stderr
    there = _pipeline(remote, "--ray", ray_head, "--json")
    assert there.returncode == 0, there.stderr
    assert "2 CPUs" in there.stderr
    local_jobs = {(j["model"], j["target"]): j for j in json.loads(here.stdout)["jobs"]}
    ray_jobs = {(j["model"], j["target"]): j for j in json.loads(there.stdout)["jobs"]}
    assert set(local_jobs) == set(ray_jobs) and len(ray_jobs) == 4
    for cell, job in ray_jobs.items():
        assert job["executor"] == "ray" and local_jobs[cell]["executor"] == "local"
        assert job["status"] == local_jobs[cell]["status"] == "pass"
        assert job["figures"]["worst"] == pytest.approx(local_jobs[cell]["figures"]["worst"], rel=1e-3, abs=1e-9)
        out = tmp_path / "ray" / "out"
        assert (out / job["artifact"]).is_file()  # back in the driver's output folder
        answer = json.loads((out / job["result"]).read_text())
        assert answer["passed"] and answer["destination"] == str(out / job["artifact"])  # the task's scratch paths renamed
        assert "modelport-ray-" not in (out / job["log"]).read_text()
    # The ONNX files from both executors compute the same thing.
    feed = {"image": np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)}
    for side in ("local", "ray"):
        assert (tmp_path / side / "out" / "cnn" / "onnx" / "report.html").is_file()
    np.testing.assert_allclose(_outputs(tmp_path / "local" / "out" / "cnn" / "onnx" / "model.onnx", feed)[0],
                               _outputs(tmp_path / "ray" / "out" / "cnn" / "onnx" / "model.onnx", feed)[0],
                               rtol=1e-5, atol=1e-6)
    # A rerun through Ray takes every job from the records.
    again = _pipeline(remote, "--ray", ray_head, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["cached"] == 4


def test_a_ray_worker_killed_mid_job_is_retried(ray_head, tmp_path, keras_model):
    import psutil
    pipeline = _project(tmp_path, keras_model, MINIMAL.replace("[onnx, tflite]", "[tflite]"))
    run = subprocess.Popen([sys.executable, "-m", "modelport.cli", "pipeline", str(pipeline), "--ray", ray_head,
                            "--only", "cnn", "--json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        for process in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            # The task's worker, once its job runs (a child of the worker's fork server).
            if cmdline.startswith("ray::modelport cnn/tflite") and any(
                    len(child.children()) for child in process.children()):
                process.kill()
                killed = process.info["pid"]
                break
        time.sleep(0.2)
    out, err = run.communicate(timeout=600)
    assert killed is not None, err
    assert run.returncode == 0, err
    job = json.loads(out)["jobs"][0]  # stdout is the JSON alone: Ray's message of the dead worker is on stderr
    assert job["status"] == "pass" and job["executor"] == "ray"
    assert (tmp_path / "out" / job["artifact"]).is_file()


def test_a_ray_address_where_no_head_answers_is_refused_at_once(tmp_path, keras_model):
    pipeline = _project(tmp_path, keras_model)
    began = time.monotonic()
    result = _pipeline(pipeline, "--ray", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2 and time.monotonic() - began < 30
    assert "no Ray head answers" in result.stderr and "127.0.0.1:" in result.stderr
    assert not (tmp_path / "out").exists()
