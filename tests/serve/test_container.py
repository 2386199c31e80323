"""The serving container: `make container` builds the image (a local Debian base from debootstrap
when none is there), and the image serves a model repository to tritonclient and a TF Serving call,
healthy by its own HEALTHCHECK, as user 1000, and drains and exits 0 on `docker stop`.

Needs a Docker daemon: `.ci/run` installs Debian's docker.io and starts dockerd (no bridge, no
iptables: the container shares the host's network and listens on 127.0.0.1)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from tests.serve.conftest import REPO, ort_outputs, run_client

IMAGE = "modelport:0.1.0"


def _docker(*args, timeout=120, check=True):
    result = subprocess.run(["docker", *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(map(str, args))}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def image():
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("the container test needs a running Docker daemon (.ci/run installs docker.io and starts dockerd)")
    build = subprocess.run(["make", "container"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return IMAGE


def _logs(name) -> str:
    result = _docker("logs", name)
    return result.stdout + result.stderr   # the server reports on stderr


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_container_serves_tritonclient_and_drains(image, serve_models, tmp_path):
    models = tmp_path / "models"
    for name in ("cnn", "multi"):
        (models / name / "1").mkdir(parents=True)
        shutil.copy(serve_models[name], models / name / "1" / "model.onnx")
    for path in [models, *models.rglob("*")]:   # readable by the image's user 1000
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    http_port, grpc_port = _free_port(), _free_port()
    name = f"modelport-smoke-{os.getpid()}"
    _docker("run", "-d", "--name", name, "--network", "host", "-e", "MODELPORT_HOST=127.0.0.1",
            "-e", f"MODELPORT_HTTP_PORT={http_port}", "-e", f"MODELPORT_GRPC_PORT={grpc_port}",
            "-v", f"{models}:/models:ro", image)
    try:
        deadline = time.monotonic() + 120
        while "\nready" not in "\n" + _logs(name):
            assert time.monotonic() < deadline, _logs(name)
            time.sleep(0.5)
        feeds = {"image": np.random.default_rng(9).standard_normal((2, 3, 32, 32)).astype(np.float32)}
        np.savez(tmp_path / "in.npz", **feeds)
        run_client("infer", f"127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", "cnn", tmp_path / "in.npz",
                   tmp_path / "out.npz")
        outputs = dict(np.load(tmp_path / "out.npz"))
        want = ort_outputs(serve_models["cnn"], feeds)["output"]
        for mode in ("http-binary", "grpc", "grpc-aio", "http-aio"):
            np.testing.assert_array_equal(outputs[f"{mode}/output"], want, err_msg=mode)
        np.testing.assert_array_equal(outputs["tfserving-row/output"].astype(np.float32), want)
        assert _docker("exec", name, "id", "-u").stdout.strip() == "1000"
        while _docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
            assert time.monotonic() < deadline + 60, _docker("inspect", name).stdout
            time.sleep(1)
        _docker("stop", "--time", "40", name, timeout=60)
        assert _docker("wait", name).stdout.strip() == "0"
        assert "draining" in _logs(name)
    finally:
        _docker("rm", "-f", name, check=False)
