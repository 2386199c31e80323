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
