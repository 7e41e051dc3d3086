"""``configmap-subpath``: a file that is reloaded must not be mounted with ``subPath``.

The kubelet updates a ConfigMap (or Secret) volume by swapping a symlink in the volume's
directory; a ``subPath`` mount is a bind mount of one file taken once, at the container's
start, and never updates. A file warden watches (``--reload-on-change``) or the program
reloads (a path in its environment: a ``warden.ConfigStore`` reloads it on change) then
never changes.
"""

from __future__ import annotations

from .._deployment import Deployment, Mount
from .._results import Result, error, ok, warning
from ._unknown import cannot_check

ID = "configmap-subpath"

_UPDATED = ("configMap", "secret", "projected", "downwardAPI")


def check(d: Deployment) -> list[Result]:
    if d.platform != "kubernetes":
        return []
    results: list[Result] = []
    watched = [] if d.warden is None else list(d.warden.reload_on_change)
    sub_paths = [m for m in d.mounts if m.sub_path is not None and m.volume in _UPDATED]
    if d.warden is not None and d.warden.reload_unknown and sub_paths:
        mounts = ", ".join(f"{m.path} (subPath {m.sub_path!r})" for m in sub_paths)
        results.append(
            cannot_check(
                ID,
                d.where,
                [d.warden.reload_unknown],
                f"a file it names mounted with subPath is never updated: {mounts}",
                "make sure no file warden watches is mounted with subPath",
            )
        )
    for path in watched:
        mount = _mounted_at(d, path)
        if mount is None:
            continue
        where = d.at(mount.where)
        if mount.sub_path is None:
            results.append(
                ok(ID, where, f"--reload-on-change {path}: a {mount.volume} volume, updated")
            )
            continue
        results.append(
            error(
                ID,
                where,
                f"--reload-on-change {path} is mounted with subPath {mount.sub_path!r}: the "
                f"{mount.volume} is never updated there, so no change is ever seen",
                f"mount the whole {mount.volume} as a directory (no subPath) and watch the "
                "file in it",
            )
        )
    for name, var in d.env.items():
        value = var.value or ""
        if not value.startswith("/") or value in watched:
            continue
        mount = _mounted_at(d, value)
        if mount is None or mount.sub_path is None:
            continue
        results.append(
            warning(
                ID,
                d.at(mount.where),
                f"{name}={value} is mounted with subPath {mount.sub_path!r}: if the program "
                "reloads it (a warden.ConfigStore does), it never sees a change",
                f"mount the whole {mount.volume} as a directory (no subPath) and point "
                f"{name} at the file in it",
            )
        )
    return results


def _mounted_at(d: Deployment, path: str) -> Mount | None:
    for mount in d.mounts:
        if mount.volume not in _UPDATED:
            continue
        if path == mount.path or path.startswith(mount.path.rstrip("/") + "/"):
            return mount
    return None
