"""The README's tritonclient example runs as written, in the clients' venv, against `modelport serve`."""
from __future__ import annotations

import re
import subprocess

from tests.serve.conftest import CLIENTS_PYTHON, REPO


def test_readme_tritonclient_example(cnn_server):
    readme = (REPO / "README.md").read_text()
    blocks = [code for code in re.findall(r"```python\n(.*?)```", readme, re.S) if "import tritonclient" in code]
    assert len(blocks) == 1
    code = blocks[0].replace("127.0.0.1:8000", cnn_server.http).replace("127.0.0.1:8001", cnn_server.grpc)
    result = subprocess.run([str(CLIENTS_PYTHON), "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    first, second, third = result.stdout.splitlines()
    assert first == second and first.isdigit()           # HTTP and gRPC agree on the class
    assert "'image'" in third
