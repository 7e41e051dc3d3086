"""Where an integration's server listens: handed sockets, an address, and clear errors."""

from __future__ import annotations

import socket

import pytest

from warden import WardenError
from warden.integrations._errors import ServeError
from warden.integrations._listen import listeners


def test_an_address_in_use_is_a_serve_error_naming_it_and_the_fix() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=rf"'http' cannot listen on '127.0.0.1:{port}'") as err:
            listeners("http", [], f"127.0.0.1:{port}")
    assert isinstance(err.value, WardenError) and isinstance(err.value, OSError)
    assert "warden run --listen" in str(err.value)


def test_nowhere_to_listen_says_what_to_pass() -> None:
    with pytest.raises(ServeError, match="pass sockets="):
        listeners("http", [], None)


def test_an_ipv6_address_binds_ipv6_and_handed_sockets_are_used_as_they_are() -> None:
    [sock] = listeners("http", [], "[::1]:0")
    with sock:
        assert sock.family == socket.AF_INET6
        assert listeners("http", [sock], "ignored:1") == [sock]
