"""Server logs: start-up lines and, when asked for, one access line per request (REST and gRPC).

``--log-format json`` writes every line as a JSON object (``ts``, ``level``, ``logger``,
``message``; access lines add ``protocol``, ``method``, ``target``, ``model``, ``status``,
``latency_ms`` and ``request_id``), the shape log pipelines (Loki, Cloud Logging, ELK) index
without a parser; it turns access lines on. ``--access-log`` turns them on in text format.
"""
from __future__ import annotations

import logging
import re
import sys
import time

import orjson

LOG = logging.getLogger("modelport.serve")
ACCESS = logging.getLogger("modelport.serve.access")
_MODEL_IN_PATH = re.compile(r"^/v[12]/models/([^/:]+)")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data).decode()


def configure(log_format: str = "text", access: bool = False) -> None:
    """Send modelport.serve's logs to stderr in ``log_format``; access lines only when ``access``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter("%(message)s"))
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    ACCESS.disabled = not access


def access_enabled() -> bool:
    return not ACCESS.disabled and bool(LOG.handlers)


def access(protocol: str, method: str, target: str, status, started: float, request_id: str, model: str) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    ACCESS.info("%s %s %s %s %.1f ms model=%s id=%s", protocol, method, target, status, latency_ms, model or "-",
                request_id or "-", extra={"fields": {
                    "protocol": protocol, "method": method, "target": target, "model": model, "status": status,
                    "latency_ms": latency_ms, "request_id": request_id}})


def model_in_path(path: str) -> str:
    match = _MODEL_IN_PATH.match(path)
    return match.group(1) if match and match.group(1) != "stats" else ""
