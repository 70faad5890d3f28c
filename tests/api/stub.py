"""A small real HTTP(S) server for transport and client tests.

It listens on a real socket and answers from a Python callable, so tests
exercise the real transport (sockets, TLS handshakes, headers) while deciding
exactly what the far end says: a counting token endpoint, a 429 with a given
``Retry-After``, a connection dropped before any answer, an answer that never
comes.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DROP = "drop"  # close the connection without answering
HANG = "hang"  # read the request, never answer


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    tls_version: str | None = None

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            return b"", headers
        if isinstance(self.body, bytes):
            return self.body, headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode(), headers


Responder = Callable[[Received], "Reply | str"]


class StubServer:
    """``with StubServer(responder) as server: server.url`` -- a live HTTP(S) server."""

    def __init__(
        self,
        responder: Responder,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.responder = responder
        self.received: list[Received] = []
        self.connections = 0
        self.handshake_failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle's
            # algorithm and delayed ACKs add 40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                version = self.connection.version() if hasattr(self.connection, "version") else None
                request = Received(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    tls_version=version,
                )
                with stub._lock:
                    stub.received.append(request)
                reply = stub.responder(request)
                if reply == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply == HANG:
                    stub._stop.wait(30)
                    self.close_connection = True
                    return
                assert isinstance(reply, Reply)
                payload, headers = reply.encode()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, address = self.socket.accept()
                with stub._lock:
                    stub.connections += 1
                if ssl_context is None:
                    return sock, address
                try:
                    return ssl_context.wrap_socket(sock, server_side=True), address
                except (ssl.SSLError, OSError):
                    with stub._lock:
                        stub.handshake_failures += 1
                    sock.close()
                    raise

        self._server = Server((host, 0), Handler)
        self.port = self._server.server_address[1]
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for_connections(self, count: int, timeout: float = 2.0) -> int:
        """Wait until ``count`` connections were accepted (handshakes happen after)."""
        deadline = time.monotonic() + timeout
        while self.connections < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.connections


def json_reply(body: Any = None, status: int = 200, **headers: str) -> Reply:
    return Reply(status=status, body=body, headers=dict(headers))
