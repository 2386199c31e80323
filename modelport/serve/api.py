"""``modelport.serving(...)``: the server in a background thread, for tests and notebooks.

The same server as ``modelport serve`` (REST and gRPC on one event loop), started in a thread of
this process on free ports of 127.0.0.1 unless told otherwise, and stopped (drained) when the
``with`` block ends.
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ..errors import InternalError
from .repository import ServeOptions
from .server import Listen, serve


class RunningServer:
    """A server running in a background thread: its addresses, and ``stop()``."""

    def __init__(self, models: list[str | Path], options: ServeOptions, listen: Listen, timeout: float):
        self.host = listen.host
        self.http_port = self.grpc_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._up = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(models, options, listen), name="modelport-serve",
                                        daemon=True)
        self._thread.start()
        if not self._up.wait(timeout):
            self.stop()
            raise InternalError(f"the server did not load its models within {timeout:g} s")
        if self._error is not None:
            raise self._error

    def _run(self, models, options, listen) -> None:
        async def main():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(http_port: int, grpc_port: int) -> None:
                self.http_port, self.grpc_port = http_port, grpc_port
                self._up.set()
            await serve(models, options, listen, report=lambda line: None, stop=self._stop, on_ready=ready)
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller of serving()
            self._error = exc
        finally:
            self._up.set()

    @property
    def url(self) -> str:
        """The REST base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        """The gRPC address, e.g. ``127.0.0.1:40124``."""
        return f"{self.host}:{self.grpc_port}"

    def stop(self) -> None:
        """Drain (accepted requests get their answers) and stop; waits for the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serving(*models: str | Path, host: str = "127.0.0.1", http_port: int = 0, grpc_port: int = 0,
            timeout: float = 300.0, **options) -> RunningServer:
    """Start ``modelport serve`` on ``models`` (paths, or one Triton-layout repository folder) in a
    background thread and return once every model has loaded.

    Args:
        models: model files or folders, or one repository folder.
        host, http_port, grpc_port: where to listen; port 0 picks a free one (see ``.url`` and
            ``.grpc_address``).
        timeout: seconds to wait for the models to load.
        **options: the ``ServeOptions`` fields (``max_batch_size``, ``batch_delay_ms``,
            ``max_queue_size``, ``instances``, ``threads``, ``request_timeout_s``, ``max_body_bytes``,
            ``model_control``, ``cache_bytes``: the response cache's size, 0 for none,
            ``allow_client_shm``: clients may register system shared memory).

    Use it as a context manager; leaving the block drains and stops the server.
    """
    return RunningServer(list(models), ServeOptions(**options), Listen(host, http_port, grpc_port), timeout)
