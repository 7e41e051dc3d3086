"""Where warden keeps its runtime files; stdlib only, so the CLI clients can use it cheaply.

The supervisor (which binds the control socket) and ``warden status`` (which connects to it)
must agree on the default path without either being told, so both call
:func:`default_control_path` and it depends only on the user and the environment.
"""

from __future__ import annotations

import os


def default_control_path() -> str:
    """The control socket's path when ``--control`` and ``$WARDEN_CONTROL`` say nothing.

    ``/run/warden/control.sock`` for root (the one who may write ``/run``), else
    ``$XDG_RUNTIME_DIR/warden/control.sock`` (a per-user 0700 tmpfs under systemd), else
    ``<tempdir>/warden-<uid>/control.sock``.
    """
    if os.access("/run", os.W_OK | os.X_OK):
        return "/run/warden/control.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and runtime.startswith("/"):  # systemd sets it absolute; ignore anything else
        return f"{runtime.rstrip('/')}/warden/control.sock"
    # tempfile costs 5 ms of imports; only this last resort needs it.
    import tempfile

    return f"{tempfile.gettempdir()}/warden-{os.getuid()}/control.sock"
