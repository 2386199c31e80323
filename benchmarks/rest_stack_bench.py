"""REST stack: the same raw-body handler on Starlette (what modelport serve uses) and on FastAPI.

    .venv/bin/python benchmarks/rest_stack_bench.py [--seconds 5]

Both apps run under uvicorn (httptools) in their own process, in the serving tests' clients venv
(.venv/peers/clients: kserve brings FastAPI there, at the same Starlette and uvicorn versions as
modelport's; FastAPI is not one of modelport's dependencies), and answer POST /echo by reading the
body (a ResNet-18 image, 602 KiB, as the binary tensor extension sends it) and returning a small
JSON object: the whole cost of the framework layer with no model behind it. Printed: requests/s
and p50 latency at concurrency 1 and 32, and FastAPI's figures as a ratio of Starlette's.
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

APPS = {
    "starlette": '''
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def echo(request):
    body = await request.body()
    return Response(b'{"size": %d}' % len(body), media_type="application/json")
app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
''',
    "fastapi": '''
from fastapi import FastAPI, Request
from fastapi.responses import Response
app = FastAPI()
@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return Response(b'{"size": %d}' % len(body), media_type="application/json")
''',
}


def start(name: str, port: int) -> subprocess.Popen:
    code = APPS[name] + f"\nimport uvicorn\nuvicorn.run(app, host='127.0.0.1', port={port}, http='httptools', " \
                        "log_level='warning', access_log=False)\n"
    python = REPO / ".venv" / "peers" / "clients" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make install`")
    process = subprocess.Popen([str(python), "-c", code], cwd=REPO)
    import urllib.request
    for _ in range(100):
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/echo", b"x"), timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{name} did not start")


async def run(args) -> dict:
    from benchmarks.serve_bench import Http, free_port, load, stop
    body = b"\0" * (3 * 224 * 224 * 4)
    results = {}
    for name in APPS:
        port = free_port()
        process = start(name, port)
        try:
            for concurrency in (1, 32):
                def make():
                    return Http("127.0.0.1", port, "/echo", body, {"Content-Type": "application/octet-stream"},
                                lambda data, headers: data).open()
                results[(name, concurrency)] = await load(make, concurrency, args.seconds, 1.0)
        finally:
            stop(process)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print("| stack | c=1 req/s | c=1 p50 ms | c=32 req/s | c=32 p50 ms |\n|---|---|---|---|---|")
    for name in APPS:
        one, many = results[(name, 1)], results[(name, 32)]
        print(f"| {name} | {one['throughput']:.0f} | {one['p50_ms']:.3f} | {many['throughput']:.0f} | {many['p50_ms']:.2f} |")
    for c in (1, 32):
        ratio = results[("fastapi", c)]["throughput"] / results[("starlette", c)]["throughput"]
        print(f"FastAPI / Starlette throughput at c={c}: {ratio:.2f}")


if __name__ == "__main__":
    main()
