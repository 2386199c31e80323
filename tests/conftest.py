"""Shared fixtures: run the CLI in-process, and build small real models on disk."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # factories are given as tests.zoo_torch:NAME


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``modelport ARGS...`` in this process (frameworks stay imported between tests)."""
    from modelport.cli import main
    monkeypatch.chdir(REPO)

    def run(*args) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)
    return run


def listing(folder: Path) -> list[str]:
    """Every entry under ``folder``, hidden temp files included, to prove nothing was written."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory):
    """Keras models saved as .keras, .h5, SavedModel and TFLite, built once per test session."""
    from tests import zoo_keras
    folder = tmp_path_factory.mktemp("keras")
    return zoo_keras.save_all(folder)


# -- guard: every registered op handler and converter edge ran in this suite --------------------------
# Each test process records what it used (modelport.convert.ops.USED, pipeline.EDGES_RUN) and writes
# it down at its end; the controlling process joins the records and fails the run when the whole
# suite ran and a registered handler or edge was never exercised. A handler existing proves nothing.
GUARD_ENV = "MODELPORT_GUARD_DIR"


def pytest_configure(config):
    if not hasattr(config, "workerinput") and GUARD_ENV not in os.environ:  # the controller, before workers start
        import tempfile
        os.environ[GUARD_ENV] = config._modelport_guard_dir = tempfile.mkdtemp(prefix="modelport-guard-")


def pytest_unconfigure(config):
    made = getattr(config, "_modelport_guard_dir", None)
    if made:  # the controller made the records' folder; nothing reads it after the run
        import shutil
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(GUARD_ENV, None)


def _record_use(config) -> None:
    import modelport.convert  # noqa: F401  (registers edges and handlers)
    from modelport.convert import ops, pipeline
    name = getattr(config, "workerinput", {}).get("workerid", "main")
    record = {"handlers": sorted(map(list, ops.USED)), "edges": sorted(pipeline.EDGES_RUN)}
    (Path(os.environ[GUARD_ENV]) / f"{name}.json").write_text(json.dumps(record))


def _whole_suite(config) -> bool:
    option = config.option
    if option.keyword or option.markexpr or getattr(option, "lf", False) or getattr(option, "deselect", None):
        return False
    chosen = [Path(a.split("::")[0]).resolve() for a in config.args] or [REPO / "tests"]
    return all(path == REPO / "tests" for path in chosen) and not any("::" in a for a in config.args)


def pytest_sessionfinish(session, exitstatus):
    if GUARD_ENV not in os.environ:
        return
    _record_use(session.config)
    if hasattr(session.config, "workerinput") or not _whole_suite(session.config) or exitstatus != 0:
        return
    from modelport.convert import EDGES, ops
    used_handlers, used_edges = set(), set()
    for path in Path(os.environ[GUARD_ENV]).glob("*.json"):
        record = json.loads(path.read_text())
        used_handlers |= {tuple(h) for h in record["handlers"]}
        used_edges |= set(record["edges"])
    missing = [f"{r.name} handler {k.domain}:{k.op_type} (since {k.since})" for r in ops.REGISTRIES
               for k in r.keys() if (r.name, k.domain, k.op_type, k.since) not in used_handlers]
    missing += [f"converter edge {e.name}" for e in EDGES.values() if e.name not in used_edges]
    registered = sum(len(r.keys()) for r in ops.REGISTRIES)
    session.config._modelport_guard = (registered, len(EDGES), missing)
    if missing:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    guard = getattr(config, "_modelport_guard", None)
    if guard is None:
        return
    handlers, edges, missing = guard
    if missing:
        terminalreporter.section("modelport guard: registered but never exercised", red=True)
        for item in missing:
            terminalreporter.line(f"  {item}")
        terminalreporter.line("Add a test that runs each of these (a registration alone proves nothing).")
    else:
        terminalreporter.line(f"modelport guard: all {handlers} op handlers and {edges} converter edges ran")
