"""What the CLI says on stdout and stderr, however they are: the exit code must not depend on it.

``>&-`` leaves ``sys.stdout`` (``2>&-``: ``sys.stderr``) None; ``>/dev/full`` makes every
write fail (ENOSPC); a reader that went away makes it fail (EPIPE). A client that raised there
would exit 1, whatever happened (no warden: 3; bad usage: 2; a refusal: 1), or print a
traceback. The text is written straight to the descriptor, so a failed write leaves nothing
in Python's buffer for the interpreter to fail on again at exit (which would turn the exit
code into 120).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

__all__ = ["say", "show"]


def say(text: str) -> None:
    """Write ``text`` to stderr if stderr takes it (a message for the user)."""
    _write(sys.stderr, text)


def show(text: str) -> None:
    """Write ``text`` to stdout if stdout takes it (the answer asked for)."""
    _write(sys.stdout, text)


def _write(stream: TextIO | None, text: str) -> None:
    """``text`` to ``stream``; lost, without raising, if the stream does not take it."""
    if stream is None:
        return
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in without a descriptor
        with contextlib.suppress(Exception):
            stream.write(text)
            stream.flush()
        return
    data = text.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace")
    with contextlib.suppress(OSError):
        stream.flush()  # what Python holds goes first
        while data:
            data = data[os.write(fd, data) :]
