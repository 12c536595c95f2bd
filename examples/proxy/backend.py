"""A toy origin for the example proxy: a standard-library HTTP/1.1 server that says who it is.

Every response carries ``X-Backend: NAME``, so a test (or a curious human with ``curl -i``) can
see which backend served it:

* ``GET /healthz`` answers ``ok`` (the proxy's active health check);
* ``GET /hold?key=K`` does not answer until ``GET /release?key=K`` reaches the same backend
  (or 30 seconds have passed), to hold a request in flight for as long as a test needs;
* ``POST`` anything echoes the body back;
* anything else gets a small HTML page naming the backend, the path and the
  ``X-Forwarded-For`` the proxy added.

Run it with ``python examples/proxy/backend.py --name a --port 8081``; ``--port 0`` picks a
free port. Once listening it prints one line, ``listening on HOST:PORT``, and flushes it, so a
parent process can read the port.
"""

from __future__ import annotations

import argparse
import html
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

#: The longest a ``/hold`` request waits for its release, seconds.
MAX_HOLD = 30.0


class Handler(BaseHTTPRequestHandler):
    """Answers every request of the toy origin (see the module docstring)."""

    protocol_version = "HTTP/1.1"  # keep-alive, and a Content-Length on every response
    server_version = "lbkit-toy-backend"
    backend_name = "backend"  # set per server by make_server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8")
            return
        if url.path in ("/hold", "/release"):
            key = parse_qs(url.query).get("key", [""])[0]
            assert isinstance(self.server, ToyServer)
            event = self.server.hold(key)
            if url.path == "/release":
                event.set()
                self._reply(200, b"released\n", "text/plain; charset=utf-8")
                return
            event.wait(MAX_HOLD)
        forwarded = self.headers.get("X-Forwarded-For", "")
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>origin "
            f"{html.escape(self.backend_name)}</title></head><body>"
            f"<h1 id='origin'>Welcome to the origin, served by {html.escape(self.backend_name)}"
            f"</h1><p>path: <code>{html.escape(self.path)}</code></p>"
            f"<p>X-Forwarded-For: <code>{html.escape(forwarded)}</code></p></body></html>\n"
        )
        self._reply(200, page.encode(), "text/html; charset=utf-8")

    def do_HEAD(self) -> None:
        self._reply(200, b"", "text/html; charset=utf-8", length=0)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or "0")
        body = self.rfile.read(length)
        self._reply(200, body, self.headers.get("Content-Type", "application/octet-stream"))

    def _reply(
        self, status: int, body: bytes, content_type: str, *, length: int | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("X-Backend", self.backend_name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a toy origin under a load test would flood the terminal."""


class ToyServer(ThreadingHTTPServer):
    """The server, with the events its ``/hold`` requests wait on."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[Handler]) -> None:
        super().__init__(address, handler)
        self._holds: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def hold(self, key: str) -> threading.Event:
        """The event of ``key`` (made on first use, by a hold or a release)."""
        with self._lock:
            return self._holds.setdefault(key, threading.Event())


def make_server(name: str, host: str = "127.0.0.1", port: int = 0) -> ToyServer:
    """A server named ``name`` bound to ``host:port`` (0: a free port), not yet serving."""
    handler = type("NamedHandler", (Handler,), {"backend_name": name})
    return ToyServer((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="backend", help="the name in X-Backend and pages")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="the port (0: a free one)")
    args = parser.parse_args(argv)
    server = make_server(args.name, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"listening on {host!s}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
