"""Running the server: REST (uvicorn) and gRPC (grpc.aio) on one event loop over one data plane.

Start-up binds both ports first (so a taken port is a clear error at once), reports them, then
loads the models: the server is live while they load and ready once they all are (Kubernetes'
probes see exactly that). SIGTERM or SIGINT drains: readiness turns false, new requests get 503 /
UNAVAILABLE, the listeners close, requests already accepted get their answers, then the process
exits 0.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import uvicorn

from .. import __version__
from ..errors import UsageError
from .dataplane import DataPlane
from .grpc_service import create_server, update_health
from .repository import Repository, ServeOptions
from .rest import create_app, metrics_app

log = logging.getLogger("modelport.serve")


@dataclass
class Listen:
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    drain_timeout_s: float = 30.0
    metrics_port: int | None = None   # /metrics on a port of its own too (it is always on the HTTP port)


def _bind(host: str, port: int, flag: str = "--http-port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response with a body waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} for HTTP: {exc.strerror}",
                         hint=f"choose another port with {flag} (0 picks a free one)") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(sources: list[str | Path], options: ServeOptions, listen: Listen,
                report: Callable[[str], None] = print, *, stop: asyncio.Event | None = None,
                on_ready: Callable[[int, int], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or until ``stop`` is set, when given: no signal handlers are
    installed then, as in a thread), then drain and return. ``on_ready(http_port, grpc_port)`` is
    called once the models are loaded."""
    repository = Repository(sources, options)
    dataplane = DataPlane(repository, version=__version__)
    http_socket = _bind(listen.host, listen.http_port)
    grpc_address = f"[{listen.host}]:{listen.grpc_port}" if ":" in listen.host else f"{listen.host}:{listen.grpc_port}"
    try:
        grpc_server, checker, grpc_port = create_server(dataplane, grpc_address)
    except Exception:
        http_socket.close()
        raise

    # log_config=None: uvicorn must not dictConfig the process (that clears and closes every logging
    # handler, the host application's included, when the server runs in-process via serving()).
    config = uvicorn.Config(create_app(dataplane), lifespan="off", log_config=None, log_level="warning", access_log=False,
                            http="httptools", loop="none", timeout_graceful_shutdown=listen.drain_timeout_s,
                            timeout_keep_alive=30)
    http = _Uvicorn(config)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

    metrics_server = metrics_socket = None
    if listen.metrics_port is not None:
        metrics_socket = _bind(listen.host, listen.metrics_port, "--metrics-port")
        metrics_server = _Uvicorn(uvicorn.Config(metrics_app(dataplane), lifespan="off", log_config=None, log_level="warning",
                                                 access_log=False, http="httptools", loop="none"))
    await grpc_server.start()
    http_task = asyncio.create_task(http.serve(sockets=[http_socket]))
    tasks = [http_task]
    host, http_port = http_socket.getsockname()[:2]
    where = f"HTTP on {host}:{http_port}, gRPC on {listen.host}:{grpc_port}"
    if metrics_server is not None:
        tasks.append(asyncio.create_task(metrics_server.serve(sockets=[metrics_socket])))
        where += f", metrics on {listen.host}:{metrics_socket.getsockname()[1]}"
    report(f"modelport serve {__version__}: {where}")

    await repository.load_all()
    await update_health(checker, dataplane)
    for row in repository.index():
        report(f"  model {row['name']!r} version {row['version']}: {row['state']}"
               + (f" ({row['reason']})" if row["reason"] else ""))
    report("ready" if dataplane.ready() else "serving (some models are not ready)")
    if on_ready is not None:
        on_ready(http_port, grpc_port)

    health_task = asyncio.create_task(_watch_health(checker, dataplane, stop))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([stopping, http_task], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    report("draining: refusing new requests, finishing accepted ones")
    dataplane.draining = True
    await update_health(checker, dataplane)
    http.should_exit = True
    if metrics_server is not None:
        metrics_server.should_exit = True
    await asyncio.gather(grpc_server.stop(listen.drain_timeout_s), *tasks, return_exceptions=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(dataplane.drain(), listen.drain_timeout_s)
    health_task.cancel()
    await repository.close()
    report("stopped")


async def _watch_health(checker, dataplane: DataPlane, stop: asyncio.Event) -> None:
    """Keep grpc.health.v1 in step with loads and unloads through the repository API."""
    while not stop.is_set():
        await update_health(checker, dataplane)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


class _Uvicorn(uvicorn.Server):
    """uvicorn's server without its own signal handling (serve() drains on signals)."""

    def capture_signals(self):
        return contextlib.nullcontext()
