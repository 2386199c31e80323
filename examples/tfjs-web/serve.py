"""Serve the example page with a TF.js bundle, on 127.0.0.1 only.

    modelport edge tfjs model.keras bundle/ --labels labels.txt --mean 127.5 --std 127.5
    python examples/tfjs-web/serve.py bundle/ [--port 8000] [--image picture.png]

then open http://127.0.0.1:8000/ (with --image: http://127.0.0.1:8000/?image=image.png).

What is served, and nothing else: the page (index.html, app.js), TF.js and its WebAssembly
backend from the npm packages the TF.js runner pins (modelport/edge/tfjs_runner), the bundle's
files under /model/, and the optional image as /image.png.
"""
from __future__ import annotations

import argparse
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PAGE = Path(__file__).resolve().parent
NODE_MODULES = PAGE.parent.parent / "modelport" / "edge" / "tfjs_runner" / "node_modules" / "@tensorflow"
LIBRARIES = {
    "tf.min.js": NODE_MODULES / "tfjs" / "dist" / "tf.min.js",
    "tf-backend-wasm.min.js": NODE_MODULES / "tfjs-backend-wasm" / "dist" / "tf-backend-wasm.min.js",
    **{name: NODE_MODULES / "tfjs-backend-wasm" / "dist" / name
       for name in ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm")},
}
TYPES = {".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
         ".bin": "application/octet-stream", ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8"}


def routes(bundle: Path, image: Path | None = None) -> dict[str, Path]:
    """URL path -> file, fixed when the server starts: a request can reach nothing else."""
    table = {"/": PAGE / "index.html", "/index.html": PAGE / "index.html", "/app.js": PAGE / "app.js"}
    table.update({f"/lib/{name}": path for name, path in LIBRARIES.items()})
    for path in sorted(bundle.rglob("*")):
        if path.is_file():
            table["/model/" + path.relative_to(bundle).as_posix()] = path
    if image is not None:
        table["/image.png"] = image
    missing = [str(path) for path in LIBRARIES.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"TF.js is not installed beside modelport: npm ci --prefix {NODE_MODULES.parent.parent} "
                         f"(missing {missing[0]})")
    return table


def make_server(bundle: Path, *, port: int = 0, image: Path | None = None) -> ThreadingHTTPServer:
    table = routes(Path(bundle), image)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = table.get(unquote(urlsplit(self.path).path))
            if path is None:
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", TYPES.get(path.suffix, mimetypes.guess_type(path.name)[0]
                                                  or "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: the page reports its own state
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve_in_background(bundle: Path, *, image: Path | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a free port in a daemon thread; return it and its base URL."""
    server = make_server(bundle, image=image)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the folder `modelport edge tfjs` wrote")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--image", type=Path, help="an image to classify at load time (?image=image.png)")
    args = parser.parse_args()
    server = make_server(args.bundle, port=args.port, image=args.image)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
