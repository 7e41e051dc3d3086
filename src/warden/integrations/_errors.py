"""The integrations' errors, in warden's tree (see ``warden/_exceptions.py``)."""

from __future__ import annotations

from warden._exceptions import WardenError


class ServeError(WardenError, OSError):
    """A server cannot listen where it was told to (address in use, bad address)."""
