"""Serve an ONNX Runtime Web bundle (the folder `modelport edge web` writes, page included) on
127.0.0.1 only.

    modelport edge web model.pt2 bundle/ --labels labels.txt --mean 127.5 --std 127.5
    python examples/ort-web/serve.py bundle/ [--port 8000] [--image picture.png] [--no-isolation]

then open http://127.0.0.1:8000/ (with --image: http://127.0.0.1:8000/?image=image.png).

What ORT Web pages trip on, done here: .wasm is served as application/wasm and .mjs as JavaScript,
a file that is not in the bundle is a 404 (never the page in its place), and every response carries
Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, which make
the page cross-origin isolated: only then may ORT Web use WebAssembly threads (SharedArrayBuffer).
A site serving the bundle needs the same headers for threads; without them the page runs on one.
"""
from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
         ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream",
         ".txt": "text/plain; charset=utf-8", ".npy": "application/octet-stream", ".png": "image/png"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


def routes(bundle: Path, image: Path | None = None) -> dict[str, Path]:
    """URL path -> file, fixed when the server starts: a request can reach nothing else."""
    if not (bundle / "index.html").is_file() or not (bundle / "model.onnx").is_file():
        raise SystemExit(f"{bundle} is not an ORT Web bundle (no index.html and model.onnx): "
                         "write one with `modelport edge web SRC OUT_DIR`")
    table = {"/": bundle / "index.html"}
    for path in sorted(bundle.rglob("*")):
        if path.is_file():
            table["/" + path.relative_to(bundle).as_posix()] = path
    if image is not None:
        table["/image.png"] = image
    return table


def make_server(bundle: Path, *, port: int = 0, image: Path | None = None, isolation: bool = True,
                table: dict[str, Path] | None = None) -> ThreadingHTTPServer:
    table = table if table is not None else routes(Path(bundle), image)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = table.get(unquote(urlsplit(self.path).path))
            if path is None:
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (ISOLATION.items() if isolation else ()):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: the page reports its own state
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve_in_background(bundle: Path, **options) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a free port in a daemon thread; return it and its base URL."""
    server = make_server(bundle, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the folder `modelport edge web` wrote")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--image", type=Path, help="an image to classify at load time (?image=image.png)")
    parser.add_argument("--no-isolation", action="store_true", help="leave out COOP/COEP (the page then runs one thread)")
    args = parser.parse_args()
    server = make_server(args.bundle, port=args.port, image=args.image, isolation=not args.no_isolation)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/ "
          f"({'cross-origin isolated: WebAssembly threads on' if not args.no_isolation else 'one thread'}; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
