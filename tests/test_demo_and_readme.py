"""`modelport demo` runs end to end, and every example in the README runs as written."""
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _readme_commands() -> list[list[str]]:
    block = re.search(r"## Command line.*?```\n(.*?)```", README, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in joined.splitlines() if line.startswith("modelport ")]


@pytest.mark.slow
def test_demo_then_readme_examples(cli, tmp_path, monkeypatch):
    result = cli("demo", "--workdir", tmp_path / "modelport-demo")
    assert result.code == 0, result.err
    for name in ("cnn.onnx", "cnn_any_size.onnx", "cnn_parity.json", "cnn_validate.html", "two_heads.keras", "two_heads.onnx",
                 "two_heads_parity.json", "lenet.onnx", "lenet_parity.json", "mxnet_cnn.onnx", "classifier.ckpt",
                 "classifier.onnx", "flax_cnn.onnx", "flax_cnn.jax", "flax_cnn_exported.onnx", "pixels.keras", "pixels.onnx",
                 "decoder/model.safetensors", "decoder_onnx/onnx/model.onnx", "decoder_onnx/tokenizer.json",
                 "stripes.pt2", "stripes.onnx", "stripes_int8.onnx", "stripes/1_vertical/00.png",
                 "pipeline_out/stripes/onnx/mlflow/MLmodel"):
        assert (tmp_path / "modelport-demo" / name).is_file(), name
    assert "parity passed" in result.out
    assert "no divergence" in result.out  # the validate step localized module by module

    # The README's paths are relative to a folder holding modelport-demo/; /tmp/ stands for scratch.
    monkeypatch.chdir(tmp_path)
    commands = _readme_commands()
    assert len(commands) >= 4
    for args in commands:
        args = [a.replace("/tmp/", f"{tmp_path}/scratch-") for a in args]
        outcome = cli(*args)
        assert outcome.code == 0, (args, outcome.err)

    monkeypatch.chdir(tmp_path)
    for code in re.findall(r"```python\n(.*?)```", README, re.S):
        if "import tritonclient" in code:  # a client's own environment: tests/serve/test_readme_clients.py runs it
            continue
        exec(compile(code.replace("/tmp/", f"{tmp_path}/api-"), "README.md", "exec"), {})
    assert Path(f"{tmp_path}/api-two_heads.onnx").is_file()
