"""modelport pipeline: the issue's minimal file as written, cached reruns, an interrupted run that
resumes, a failing job that stops nothing else, the dashboard in headless Chromium, and pipeline
files refused by line before any work."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

MINIMAL = """\
output: out/                  # results.json, index.html and one folder per model/target
models:
  - name: cnn
    source: tests.zoo_torch:small_cnn
    input_shape: ["image:1,3,32,32"]
  - name: kmodel
    source: models/k.keras
targets: [onnx, tflite]       # convert targets; edge targets as e.g. "edge:tflite:int8"
"""


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    from tests import zoo_keras
    folder = tmp_path_factory.mktemp("pipeline_models")
    model = zoo_keras.cnn_batchnorm()
    zoo_keras.calibrate_batchnorm(model, np.random.default_rng(0).uniform(0, 1, (32, 16, 16, 3)).astype(np.float32))
    model.save(folder / "k.keras")
    return folder / "k.keras"


def _project(tmp_path: Path, keras_model: Path, text: str = MINIMAL) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    shutil.copy(keras_model, tmp_path / "models" / "k.keras")
    (tmp_path / "pipeline.yaml").write_text(text)
    return tmp_path / "pipeline.yaml"


def test_the_minimal_file_runs_as_written_then_a_rerun_is_taken_from_the_records(cli, tmp_path, keras_model):
    pipeline = _project(tmp_path, keras_model)
    first = cli("pipeline", pipeline, "--jobs", "2", "--json")
    assert first.code == 0, first.err
    summary = first.json()
    assert summary["counts"]["pass"] == 4 and summary["cached"] == 0
    jobs = {(j["model"], j["target"]): j for j in summary["jobs"]}
    assert set(jobs) == {("cnn", "onnx"), ("cnn", "tflite"), ("kmodel", "onnx"), ("kmodel", "tflite")}
    out = tmp_path / "out"
    for job in jobs.values():
        assert (out / job["artifact"]).is_file() and job["figures"]["bytes"] > 0
        answer = json.loads((out / job["result"]).read_text())  # the command's own --json
        assert answer["passed"] and answer["hops"][-1]["parity"]["passed"]
    assert (out / "cnn" / "tflite" / "report.html").is_file()
    assert json.loads((out / "results.json").read_text())["counts"] == summary["counts"]
    # Unchanged: nothing runs again. A changed input (the Keras file) reruns only that model's jobs.
    again = cli("pipeline", pipeline, "--json")
    assert again.code == 0 and again.json()["cached"] == 4
    from tests import zoo_keras
    import keras
    model = keras.models.load_model(tmp_path / "models" / "k.keras")
    zoo_keras.calibrate_batchnorm(model, np.random.default_rng(1).uniform(0, 2, (32, 16, 16, 3)).astype(np.float32))
    model.save(tmp_path / "models" / "k.keras")
    changed = cli("pipeline", pipeline, "--json").json()
    assert {(j["model"], j["cached"]) for j in changed["jobs"]} == {("cnn", True), ("kmodel", False)}
    forced = cli("pipeline", pipeline, "--only", "cnn", "--force", "--json").json()
    assert {(j["model"], j["cached"]) for j in forced["jobs"]} == {("cnn", False), ("kmodel", True)}


def test_a_heavy_job_runs_alone(cli, tmp_path, keras_model, monkeypatch):
    """Jobs whose inputs weigh more than HEAVY_BYTES never overlap another job, even with --jobs 2."""
    from modelport.pipeline import runner
    pipeline = _project(tmp_path, keras_model)
    heavy_source = str((tmp_path / "models" / "k.keras").resolve())
    monkeypatch.setattr(runner, "_is_heavy", lambda job: heavy_source in job.inputs)
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    original = runner.LocalExecutor.run

    def timed(self, job, *args):
        started[job.id] = time.monotonic()
        try:
            return original(self, job, *args)
        finally:
            ended[job.id] = time.monotonic()
    monkeypatch.setattr(runner.LocalExecutor, "run", timed)
    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.5)
    run = cli("pipeline", pipeline, "--jobs", "2")
    assert run.code == 0
    assert "] running kmodel/onnx (" in run.err  # while a job runs, a line says so every HEARTBEAT_S
    spans = {job: (started[job], ended[job]) for job in started}
    for heavy in ("kmodel/onnx", "kmodel/tflite"):
        for other, (begin, end) in spans.items():
            if other != heavy:
                assert end <= spans[heavy][0] or begin >= spans[heavy][1], (heavy, other, spans)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, keras_model):
    pipeline = _project(tmp_path, keras_model)
    records = tmp_path / "out" / ".modelport-pipeline"
    run = subprocess.Popen([sys.executable, "-m", "modelport.cli", "pipeline", str(pipeline)], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (records.is_dir() and any(records.glob("*.json"))):
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group, the running job too
    assert run.wait(timeout=120) == 130
    finished = sorted(p.name for p in records.glob("*.json"))
    assert 1 <= len(finished) < 4
    leftovers = [p for p in (tmp_path / "out").rglob("*") if ".partial" in p.name]
    assert not leftovers  # the interrupted job's staged output went with it
    resumed = subprocess.run([sys.executable, "-m", "modelport.cli", "pipeline", str(pipeline), "--json"], cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["counts"]["pass"] == 4 and summary["cached"] == len(finished)


def test_a_failing_job_stops_nothing_else_and_the_dashboard_shows_it(cli, tmp_path, keras_model):
    np.savez(tmp_path / "wrong.npz", not_an_input=np.zeros((2, 16, 16, 3), np.float32))
    pipeline = _project(tmp_path, keras_model, """\
output: out/
models:
  - name: kmodel
    source: models/k.keras
  - name: broken
    source: models/k.keras
    calibration: wrong.npz
targets: [onnx, "edge:ort"]
""")
    result = cli("pipeline", pipeline, "--json")
    assert result.code == 1
    jobs = {(j["model"], j["target"]): j for j in result.json()["jobs"]}
    assert jobs[("kmodel", "onnx")]["status"] == jobs[("kmodel", "edge:ort")]["status"] == "pass"
    assert jobs[("broken", "edge:ort")]["status"] == "error" and jobs[("broken", "edge:ort")]["exit_code"] == 2
    assert "not_an_input" in jobs[("broken", "edge:ort")]["message"]
    if CHROMIUM is None and not os.environ.get("CI"):
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto((tmp_path / "out" / "index.html").as_uri())
            cells = page.eval_on_selector_all("td[data-model]", "cells => cells.map(c => [c.dataset.model, "
                                              "c.dataset.target, c.className, getComputedStyle(c).backgroundColor])")
            summary = page.inner_text("#summary")
        finally:
            browser.close()
    by_cell = {(m, t): (status, colour) for m, t, status, colour in cells}
    assert by_cell[("broken", "edge:ort")][0] == "error" and by_cell[("kmodel", "onnx")][0] == "pass"
    assert by_cell[("broken", "edge:ort")][1] != by_cell[("kmodel", "onnx")][1]
    assert "4 jobs" in summary and "2 error" in summary  # broken's conversion refuses the data too


@pytest.mark.parametrize("text, says", [
    ("output: out/\nmodels:\n  - name: a\n    source: models/k.keras\n    weigths: w.pt\ntargets: [onnx]\n",
     "pipeline.yaml line 5: unknown key 'weigths'"),
    ("output: out/\nmodels:\n  - name: a\n    source: models/missing.onnx\ntargets: [onnx]\n",
     "pipeline.yaml line 4: no such model 'models/missing.onnx'"),
    ("output: out/\nmodels:\n  - name: a\n    source: models/k.keras\ntargets: [onnx, caffe]\n",
     "no conversion reaches 'caffe'"),
    ("output: out/\nmodels:\n  - name: a\n    source: models/k.keras\ntargets: [onnx, 'edge:tflite:int8']\n",
     "calibrates on data, and the model has no calibration"),
    ("output: out/\nmodels:\n  - name: a\n    source: models/k.keras\n    input_shape: 3\ntargets: [onnx]\n",
     "pipeline.yaml line 5: models/0/input_shape: 3 is not of type 'array'"),
    ("output: out/\nmodels: [\n", "not valid YAML"),
])
def test_bad_pipeline_files_are_exit_2_naming_the_line_and_nothing_runs(cli, tmp_path, keras_model, text, says):
    pipeline = _project(tmp_path, keras_model, text)
    result = cli("pipeline", pipeline)
    assert result.code == 2 and says in result.err, result.err
    assert not (tmp_path / "out").exists()


def test_the_schema_is_printed_and_is_a_json_schema(cli):
    import jsonschema
    result = cli("pipeline", "--schema")
    assert result.code == 0
    schema = json.loads(result.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"output", "models", "targets"}
