"""``gate-blind``: an upgrade's gate and window must be able to see a broken release.

What the supervisor does (docs/supervisor.md, "Zero-downtime upgrades";
``supervisor/sockets/_steering.py``, ``supervisor/release/_steps.py``): during an upgrade
every new connection to a TCP socket warden holds goes to the old release, except warden's own
probes, which reach the new release alone through the same port. So ``--ready http://`` on a
held port asks the new release whatever the server (gunicorn, ``uvicorn --fd 3``, ``hypercorn
--bind fd://3``), in the gate and in the ``--upgrade-confirm`` window, and so does
``--upgrade-confirm-url``. What is blind:

* gunicorn with ``--ready notify`` and neither ``-c python:warden.integrations.gunicorn`` nor
  ``--upgrade-confirm-url``: gunicorn says READY=1 once it has bound its sockets, before any
  worker imported the app; only a crash in the window is seen (an error);
* ``--ready tcp`` on a held socket: warden's sibling socket accepts the handshake whatever
  the program does (an error; warden warns at each upgrade);
* an ``exec:`` gate whose command connects to a held port: its connection is steered to the
  old release (an error);
* an ``http`` gate or ``--upgrade-confirm-url`` that cannot be steered: its port is not one
  warden holds, or the sockets come from a ``.socket`` unit without ``ReusePort=yes`` (no
  ``SO_REUSEPORT``), or only UNIX sockets are held: whichever release accepts first answers,
  usually the old one (a warning; warden warns at each upgrade); a ``tcp`` gate on a port
  warden does not hold likewise;
* ``--upgrade-confirm 0`` with a ``notify`` gate: no window, READY=1 is all the upgrade sees
  (a warning).

Only where upgrades happen: ``--on-hup upgrade`` (the default with a gate; also what
``--reload-on-change`` does) or ``--recycle-at``.
"""

from __future__ import annotations

import dataclasses
import re

from .._deployment import Deployment
from .._results import Result, error, ok, warning
from .._warden import Setting, WardenRun
from ._unknown import cannot_check

ID = "gate-blind"
_INTEGRATION = "python:warden.integrations.gunicorn"
_HOST_PORT = re.compile(r"(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})(?![0-9])")
_SETTINGS = ("ready", "on_hup", "recycle_at", "listen", "upgrade_confirm", "upgrade_confirm_url")


@dataclasses.dataclass(frozen=True, slots=True)
class _Sockets:
    """The TCP ports warden holds for the program, and whether an upgrade can steer its
    probes through them (``why_not`` says why not)."""

    ports: frozenset[int]
    steerable: bool
    why_not: str


def check(d: Deployment) -> list[Result]:
    warden = d.warden
    if warden is None:
        return []
    unknown = warden.unknown(*_SETTINGS)
    forwards = warden["on_hup"].value == "forward" and not warden["on_hup"].unknown
    if unknown and (not forwards or not warden["recycle_at"].default):
        return [
            cannot_check(
                ID,
                d.where,
                unknown,
                "the gate and the window that decide an upgrade are not known",
                "make sure upgrades are gated by --ready http:// on a port warden holds, or "
                "--ready notify with a program that says READY=1 when it can serve",
            )
        ]
    if unknown or not _upgrades(warden):
        return []
    sockets = _sockets(d, warden)
    findings = [
        *_gate(d, warden, sockets),
        *_unsteered(d, warden["upgrade_confirm_url"], sockets),
        *_no_window(d, warden),
    ]
    return findings or [ok(ID, d.where, _protected(warden))]


def _upgrades(warden: WardenRun) -> bool:
    ready = warden["ready"].value
    if ready.kind == "none":
        return False  # warden refuses every upgrade without a gate
    on_hup = warden["on_hup"].value
    by_signal = on_hup in ("upgrade", None)
    return by_signal or not warden["recycle_at"].default


def _sockets(d: Deployment, warden: WardenRun) -> _Sockets:
    own = {spec.port for spec in warden["listen"].value if spec.scheme == "tcp" and spec.port}
    inherited = [held for held in d.held if held.tcp_port is not None]
    ports = frozenset(own | {held.tcp_port for held in inherited if held.tcp_port is not None})
    unsteered = sorted({held.unit for held in inherited if not held.reuse_port})
    if unsteered:
        why = f"the sockets of {', '.join(unsteered)} have no SO_REUSEPORT (no ReusePort=yes)"
        return _Sockets(ports, False, why)
    if not ports:
        return _Sockets(ports, False, "warden holds no TCP socket (only UNIX sockets, or none)")
    return _Sockets(ports, True, "")


def _gate(d: Deployment, warden: WardenRun, sockets: _Sockets) -> list[Result]:
    ready = warden["ready"]
    kind = ready.value.kind
    if kind == "notify":
        return _gunicorn_notify(d, warden)
    if kind == "tcp":
        port = ready.value.port
        if not port or port in sockets.ports:
            return [
                error(
                    ID,
                    d.where,
                    f"{ready.label} connects to a socket warden holds: the kernel accepts the "
                    "connection on the listening socket whatever the program does, so the gate "
                    "cannot tell a broken release from a working one (warden warns at each "
                    "upgrade)",
                    "gate upgrades with --ready http://HOST:PORT/ on the held port (warden's "
                    "probe reaches the new release alone), --ready notify or exec:CMD",
                )
            ]
        return _unsteered(d, ready, sockets)
    if kind == "http":
        return _unsteered(d, ready, sockets)
    if kind == "exec":
        return _exec_on_held(d, ready, sockets)
    return []


def _gunicorn_notify(d: Deployment, warden: WardenRun) -> list[Result]:
    server = d.server
    if server is None or server.name != "gunicorn" or server.config == _INTEGRATION:
        return []
    if warden["upgrade_confirm_url"].value is not None:
        return []  # asked of the new release alone in the window (or unsteered: said below)
    gate = warden["ready"].label
    window = float(warden["upgrade_confirm"].value)
    seen = (
        f"only its crash in the {window:g} s --upgrade-confirm window is seen, not a release "
        "that answers 500 or hangs"
        if window > 0
        else "and with --upgrade-confirm 0 not even its crash is seen"
    )
    message = (
        f"{gate} with gunicorn: gunicorn says READY=1 once it has bound its sockets, before "
        f"any worker imported the app, so the gate passes a release that cannot serve; {seen}"
    )
    fix = (
        f"run gunicorn -c {_INTEGRATION} (READY=1 once every worker has loaded the app), add "
        "--upgrade-confirm-url http://HOST:PORT/PATH on the port warden holds, or gate it with "
        "--ready http://HOST:PORT/"
    )
    if server.config:
        unless = f" (unless {server.config} imports warden.integrations.gunicorn)"
        return [warning(ID, d.where, message + unless, fix)]
    return [error(ID, d.where, message, fix)]


def _unsteered(d: Deployment, check: Setting, sockets: _Sockets) -> list[Result]:
    """An ``http`` check (the gate, ``--upgrade-confirm-url``) or a ``tcp`` gate that cannot
    reach the new release alone."""
    spec = check.value
    if spec is None:
        return []
    if spec.port in sockets.ports and sockets.steerable:
        return []
    why = (
        f"its port {spec.port} is not a TCP socket warden holds (--listen)"
        if spec.port not in sockets.ports
        else sockets.why_not
    )
    fix = (
        "set ReusePort=yes in the .socket unit"
        if spec.port in sockets.ports
        else "probe the port warden holds (--listen tcp://HOST:PORT), or gate upgrades with "
        "--ready notify"
    )
    warns = "" if spec.kind == "tcp" else " (warden warns at each upgrade)"
    return [
        warning(
            ID,
            d.where,
            f"{check.label} cannot reach the new release alone: {why}, so whichever release "
            "accepts first answers it, usually the old one: a release that answers 500 or "
            f"hangs may pass; only its crash is seen{warns}",
            fix,
        )
    ]


def _exec_on_held(d: Deployment, ready: Setting, sockets: _Sockets) -> list[Result]:
    words = " ".join(ready.value.command)
    ports = sorted({int(m.group(1)) for m in _HOST_PORT.finditer(words)} & sockets.ports)
    if not ports or not sockets.steerable:
        return []
    port = ports[0]
    return [
        error(
            ID,
            d.where,
            f"{ready.label} connects to port {port}, which warden holds: during an upgrade "
            "every connection but warden's own probes goes to the old release until the new "
            "one is promoted, so the command asks the old release",
            f"gate with --ready http://127.0.0.1:{port}/PATH: warden's probe reaches the new "
            "release alone through the same port",
        )
    ]


def _no_window(d: Deployment, warden: WardenRun) -> list[Result]:
    window = warden["upgrade_confirm"]
    if warden["ready"].value.kind != "notify" or float(window.value) > 0:
        return []
    server = d.server
    if server is not None and server.name == "gunicorn" and server.config != _INTEGRATION:
        return []  # the gunicorn finding says it already
    return [
        warning(
            ID,
            d.where,
            f"{window.label} with {warden['ready'].label}: no confirmation window, READY=1 is "
            "all an upgrade sees, so a release that crashes, hangs or answers 500 right after "
            "it is promoted",
            "keep a window (--upgrade-confirm 5s, the default), with --upgrade-confirm-url "
            "http://HOST:PORT/PATH on the port warden holds",
        )
    ]


def _protected(warden: WardenRun) -> str:
    ready = warden["ready"]
    window = float(warden["upgrade_confirm"].value)
    url = warden["upgrade_confirm_url"].value
    asked = f" and --upgrade-confirm-url {url} asked of it alone" if url is not None else ""
    in_window = f"; in the {window:g} s window its crash is seen{asked}" if window > 0 else ""
    kind = ready.value.kind
    if kind == "http":
        after = f", and in the {window:g} s window" if window > 0 else ""
        return (
            f"{ready.label} on port {ready.value.port}, which warden holds: warden's probe "
            f"reaches the new release alone, in the gate{after}"
        )
    if kind == "notify":
        return f"{ready.label}: READY=1 comes from the new release{in_window}"
    return f"{ready.label} is run for the new release{in_window}"
