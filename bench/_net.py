"""Loopback helpers for the benchmarks: a free port, and whether a server answers on it."""

from __future__ import annotations

import http.client
import socket


def free_port() -> int:
    """A loopback TCP port nobody listens on now (the kernel's choice for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int) -> bool:
    """``GET /`` on 127.0.0.1:``port`` is answered with 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
