"""A Ray head on this machine only (every port on 127.0.0.1), for the tests and the pipeline
benchmark: ``with local_head(cpus=2) as address: ...``; stopped, its folder removed, on exit."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

# Ray keeps a head started on 127.0.0.1 on loopback only with this (on Linux it would use the
# machine's own address); the pipeline's driver sets it itself for such a head.
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def local_head(cpus: int = 2) -> Iterator[str]:
    """``ray start --head --block`` on 127.0.0.1; yields its address (HOST:PORT) once it answers."""
    port = free_port()
    # A short folder: Ray's unix sockets live under it, and a socket path has at most 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
         "--object-store-memory=300000000", f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}",
         f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}"],
        env={**os.environ, **LOOPBACK}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("ray start --head did not come up") from None
                time.sleep(0.5)
        time.sleep(2)  # the raylet registers after the GCS answers
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(head.pid, sig)
                head.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        shutil.rmtree(temp, ignore_errors=True)
