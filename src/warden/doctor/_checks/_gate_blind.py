"""``gate-blind``: an upgrade's readiness gate must be able to see a broken release.

* gunicorn says READY=1 once it has bound its sockets, before any worker has imported the
  app: ``--ready notify`` passes a release that cannot serve, unless gunicorn runs with
  ``-c python:warden.integrations.gunicorn`` (READY=1 once every worker has loaded it).
* ``--ready tcp`` on a socket warden holds connects to that socket: the kernel accepts on it
  whatever the program does, and both releases share it.
* ``--ready http`` on a held port with ``uvicorn --fd N`` (or hypercorn with one ``--bind
  fd://``): the new release serves only the held socket, never warden's private probe socket,
  so every upgrade fails.

Only where upgrades happen: ``--on-hup upgrade`` (the default with a gate) or ``--recycle-at``.
"""

from __future__ import annotations

from .._deployment import Deployment
from .._results import Result, error, ok, warning
from .._warden import WardenRun

ID = "gate-blind"
_INTEGRATION = "python:warden.integrations.gunicorn"


def check(d: Deployment) -> list[Result]:
    warden = d.warden
    if warden is None or not _upgrades(warden):
        return []
    finding = _gunicorn_notify(d, warden) or _tcp_on_held(d, warden) or _http_on_fd(d, warden)
    if finding is not None:
        return [finding]
    gate = warden["ready"].label
    return [ok(ID, d.where, f"{gate} can tell a broken release from a working one")]


def _upgrades(warden: WardenRun) -> bool:
    ready = warden["ready"].value
    on_hup = warden["on_hup"].value
    by_signal = on_hup == "upgrade" or (on_hup is None and ready.kind != "none")
    return by_signal or not warden["recycle_at"].default


def _gunicorn_notify(d: Deployment, warden: WardenRun) -> Result | None:
    server = d.server
    if warden["ready"].value.kind != "notify" or server is None or server.name != "gunicorn":
        return None
    gate = warden["ready"].label
    if server.config == _INTEGRATION:
        return None
    message = (
        f"{gate} with gunicorn: gunicorn says READY=1 before its workers import the app, so "
        "a release that cannot serve passes the gate"
    )
    fix = f"run gunicorn -c {_INTEGRATION}, or gate it with --ready http://HOST:PORT/"
    if server.config:
        unless = f" (unless {server.config} imports warden.integrations.gunicorn)"
        return warning(ID, d.where, message + unless, fix)
    return error(ID, d.where, message, fix)


def _tcp_on_held(d: Deployment, warden: WardenRun) -> Result | None:
    ready = warden["ready"].value
    if ready.kind != "tcp" or (ready.port and ready.port not in _held_ports(d, warden)):
        return None
    return error(
        ID,
        d.where,
        f"{warden['ready'].label} connects to a socket warden holds: the kernel accepts on it "
        "whatever the program does, and both releases share it",
        "gate upgrades with --ready notify, http://... or exec:CMD",
    )


def _http_on_fd(d: Deployment, warden: WardenRun) -> Result | None:
    ready = warden["ready"].value
    server = d.server
    if ready.kind != "http" or server is None or not server.takes_fd:
        return None
    if ready.port not in _held_ports(d, warden):
        return None
    return error(
        ID,
        d.where,
        f"{warden['ready'].label} on a held port with {server.name} serving one handed "
        "socket: the new release never answers warden's private probe socket, so every "
        "upgrade fails",
        f"gate {server.name} with --ready notify (READY=1 from the app's startup)",
    )


def _held_ports(d: Deployment, warden: WardenRun) -> set[int]:
    ports = {spec.port for spec in warden["listen"].value if spec.scheme == "tcp"}
    for address in d.held:  # a .socket unit's ListenStream=: "8000", "0.0.0.0:8000", "[::]:8000"
        text = "" if address.startswith("/") else address.rpartition(":")[2]
        if text.isdigit():
            ports.add(int(text))
    return ports
