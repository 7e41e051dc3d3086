"""One line for the user on stderr, however stderr is: the exit code must not depend on it.

``2>&-`` leaves ``sys.stderr`` None; ``2>/dev/full`` makes every write fail (ENOSPC); a reader
that went away makes it fail (EPIPE). A client that raised there would exit 1, whatever
happened (no warden: 3; bad usage: 2). The line is written straight to the descriptor, so a
failed write leaves nothing in Python's buffer for the interpreter to fail on again at exit
(which would turn the exit code into 120).
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["say"]


def say(text: str) -> None:
    """Write ``text`` to stderr if stderr takes it; lose it, without raising, if not."""
    stream = sys.stderr
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
