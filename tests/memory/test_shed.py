"""Shedding load at ``high``: 503 with Retry-After from the ASGI and WSGI helpers."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from warden.memory import ShedLoadASGI, ShedLoadWSGI


class _Sentinel:
    accepting = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def wsgi_server() -> Iterator[tuple[int, _Sentinel]]:
    sentinel = _Sentinel()
    server = make_server(
        "127.0.0.1", 0, ShedLoadWSGI(_hello, sentinel, retry_after=7), handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, sentinel
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _get(port: int) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.getheader("Retry-After"), response.read()
    finally:
        conn.close()


def test_wsgi_sheds_only_while_not_accepting(wsgi_server: tuple[int, _Sentinel]) -> None:
    port, sentinel = wsgi_server
    assert _get(port) == (200, None, b"ok")
    sentinel.accepting = False
    status, retry_after, body = _get(port)
    assert (status, retry_after) == (503, "7") and b"memory" in body
    sentinel.accepting = True
    assert _get(port)[0] == 200


async def test_asgi_sheds_http_and_passes_lifespan() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    sentinel = _Sentinel()
    sentinel.accepting = False
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request"}

    shed = ShedLoadASGI(app, sentinel, retry_after=3)
    await shed({"type": "lifespan"}, receive, send)
    await shed({"type": "http"}, receive, send)
    assert calls == ["lifespan"]
    assert sent[0]["status"] == 503 and (b"retry-after", b"3") in sent[0]["headers"]
    await shed({"type": "websocket"}, receive, send)
    assert sent[-1] == {"type": "websocket.close", "code": 1013}
