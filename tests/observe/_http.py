"""Small HTTP helpers for the observe tests: one GET, and waiting for a status."""

from __future__ import annotations

import socket
import time

import httpx


def get(url: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(url, timeout=timeout)


def wait_status(url: str, status: int, timeout: float = 10.0) -> httpx.Response:
    """GET ``url`` until it answers ``status`` (each try a real request), up to ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=timeout)
        except httpx.TransportError as exc:
            last = exc
            continue
        if response.status_code == status:
            return response
        last = response.status_code
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def free_port() -> int:
    """A loopback TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
