"""Schemathesis fuzzes the REST API from the server's own /openapi.json (examples, coverage,
fuzzing and stateful phases): no request may get a 5xx, every answer must match the document,
and the server must log no internal error.

`positive_data_acceptance` is left out: a schema-valid body can still name inputs the served model
does not have, which is a 400 by design (the document describes every model at once)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve.conftest import start_server


@pytest.mark.slow
def test_fuzzed_requests_get_no_server_error(serve_models, tmp_path):
    server = start_server([serve_models["cnn"], serve_models["multi"], "--no-model-control"], tmp_path / "server.log")
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/openapi.json",
             "--max-examples", "20", "--seed", "0", "--generation-database", "none",
             "--exclude-checks", "positive_data_acceptance", "--request-timeout", "30"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays out of the repository
        summary = result.stdout[-3000:]
        assert result.returncode == 0, summary
        assert " passed" in summary and "failures" not in summary.split("SUMMARY")[-1], summary
    finally:
        assert server.stop() == 0, server.log()
    assert "internal error" not in server.log(), server.log()
