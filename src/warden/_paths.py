"""Where warden keeps its runtime files; stdlib only, so the CLI clients can use it cheaply.

One rule, used by everything that puts a file at run time: the supervisor's notify socket
directories, the control socket the supervisor binds, and the one ``warden status`` connects
to. The supervisor and its clients must agree on the default control path without either
being told, so the rule depends only on the user and the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_control_path", "private_directory", "runtime_dir"]


def _usable(directory: str) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _private_runtime_dir() -> str | None:
    """``$XDG_RUNTIME_DIR`` (a per-user 0700 tmpfs under systemd), else ``/run`` (root's)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    # systemd sets it absolute; anything else is not a runtime directory.
    if runtime and runtime.startswith("/") and _usable(runtime):
        return runtime.rstrip("/") or "/"
    if _usable("/run"):
        return "/run"
    return None


def runtime_dir() -> str:
    """The first of ``$XDG_RUNTIME_DIR``, ``/run`` and the temporary directory we may write.

    The temporary directory is shared with other users: put a private (0700) directory of
    your own in it, never a file directly.
    """
    private = _private_runtime_dir()
    if private is not None:
        return private
    # tempfile costs 5 ms of imports; only this last resort needs it.
    import tempfile

    return tempfile.gettempdir()


def default_control_path() -> str:
    """The control socket's path when ``--control`` and ``$WARDEN_CONTROL`` say nothing.

    ``$XDG_RUNTIME_DIR/warden/control.sock``, else ``/run/warden/control.sock`` (for root, the
    one who may write ``/run``), else ``<tempdir>/warden-<uid>/control.sock``: the
    :func:`runtime_dir` rule.
    """
    private = _private_runtime_dir()
    if private is not None:
        return f"{private.rstrip('/')}/warden/control.sock"
    return f"{runtime_dir()}/warden-{os.getuid()}/control.sock"


def private_directory(parent: str, prefix: str = "warden-") -> str:
    """Create a new 0700 directory with an unguessable name in ``parent``; return its path.

    What ``tempfile.mkdtemp`` does, without its imports (tempfile loads shutil, random and,
    through shutil, zlib, bz2 and lzma: about 1 MiB of a PID 1's resident memory). ``mkdir``
    fails on any name that exists, a planted symlink included, so nothing another user
    prepared is ever used. The name has 48 random bits (mkdtemp's has 41): short, as a
    socket inside it must fit in 107 bytes.

    Raises:
        OSError: the directory cannot be created.
    """
    for _ in range(8):  # a name taken (by chance, or planted): draw another, as mkdtemp does
        path = Path(parent).absolute() / f"{prefix}{os.urandom(6).hex()}"
        try:
            path.mkdir(0o700)
        except FileExistsError:
            continue
        return str(path)
    raise FileExistsError(f"no free name for a private directory in {parent}")
