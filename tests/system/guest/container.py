"""A real OCI container: ``runc`` with a bundle whose root filesystem is this Debian one, and
warden as PID 1 through ``deploy/container/Containerfile``'s entrypoint (exec form).

The bundle is what an image built from the Containerfile would give: its ``ENTRYPOINT`` and
``CMD`` (or a command in place of ``CMD``, as ``docker run IMAGE CMD...`` does), ``ENV``,
``USER`` and ``WORKDIR``; the app is the repository's example service. Namespaces as Docker
on cgroup v2 makes them (pid, mount, ipc, uts, cgroup) but the host's network, so the guest
reaches ports 8000 and 9000 directly.

* ``runc kill TERM``: the graceful stop (readiness false, the 5 s drain, exit 0).
* Orphans left to PID 1 are reaped.
* A memory limit in the bundle is what the sentinel reads; a ramp is stopped before the OOM
  kill; a ramp that ignores its stop signal is OOM-killed and named so (exit 137).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._util import CHECKOUT, PROGRAMS, Facts, broken, http_get, run, wait_for

LIMIT = 300
BUNDLE = Path("/run/warden-bundle")
APP = Path("/srv/app")
MiB = 2**20


def containerfile() -> dict[str, Any]:
    """ENTRYPOINT, CMD (exec form), ENV, USER and WORKDIR of the repository's Containerfile."""
    text = (CHECKOUT / "deploy" / "container" / "Containerfile").read_text()
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    found: dict[str, Any] = {"env": {}}
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        if word in ("ENTRYPOINT", "CMD"):
            found[word.lower()] = json.loads(rest)  # exec form: a JSON array
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                found["env"][key] = value
        elif word in ("USER", "WORKDIR"):
            found[word.lower()] = rest.strip()
    return found


def check(facts: Facts) -> None:
    image = containerfile()
    facts.note(containerfile=image)
    _prepare_rootfs(image)
    try:
        graceful(facts, image)
        orphans(facts, image)
        memory(facts, image, "ramp")
        memory(facts, image, "oom")
    finally:
        run("umount", str(BUNDLE / "rootfs"))


def _prepare_rootfs(image: dict[str, Any]) -> None:
    """The image's app in WORKDIR (owned by its USER); the rootfs: this Debian's own."""
    uid = int(image["user"])
    APP.mkdir(parents=True, exist_ok=True)
    shutil.copy(CHECKOUT / "examples" / "http_service.py", APP / "app.py")
    shutil.chown(APP, uid, uid)
    (BUNDLE / "rootfs").mkdir(parents=True, exist_ok=True)
    # Not recursive: the container sees the root filesystem, not the guest's /run, /proc...
    run("mount", "--bind", "/", str(BUNDLE / "rootfs"), check=True)


def bundle(
    image: dict[str, Any], name: str, cmd: list[str], *, memory: int | None = None,
    entrypoint: list[str] | None = None, env: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """``config.json`` as a runtime makes it from the image and ``docker run``'s options."""
    (BUNDLE / "config.json").unlink(missing_ok=True)
    run("runc", "spec", "--bundle", str(BUNDLE), check=True)
    spec = json.loads((BUNDLE / "config.json").read_text())
    process = spec["process"]
    uid = int(image["user"])
    process.update(
        terminal=False,
        user={"uid": uid, "gid": uid},
        cwd=image["workdir"],
        args=(image["entrypoint"] if entrypoint is None else entrypoint) + cmd,
        env=[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"HOSTNAME={name}",
            *(f"{k}={v}" for k, v in {**image["env"], **(env or {})}.items()),
        ],
    )
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["hostname"] = name
    spec["mounts"].append(
        {"destination": "/mnt/host", "type": "bind", "source": "/mnt/host",
         "options": ["rbind", "ro"]}
    )  # fmt: skip
    linux = spec["linux"]
    linux["namespaces"] = [
        {"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")
    ]  # the guest's network: its loopback reaches the container's ports
    linux["cgroupsPath"] = f"/warden-{name}"
    if memory is not None:
        linux["resources"]["memory"] = {"limit": memory, "swap": memory}
    (BUNDLE / "config.json").write_text(json.dumps(spec, indent=1))


@contextlib.contextmanager
def container(name: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``runc run NAME`` in the foreground (its exit status is the container's)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["runc", "run", "--bundle", str(BUNDLE), name],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            run("runc", "kill", name, "KILL")
            proc.wait(30)
        run("runc", "delete", "--force", name)


def _log(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """warden's JSON lines, and the other lines (the program's own)."""
    facts, other = [], []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            other.append(line)
            continue
        if isinstance(record, dict) and record.get("logger") == "warden":
            facts.append(record)
        else:
            other.append(line)
    return facts, other


def graceful(facts: Facts, image: dict[str, Any]) -> None:
    name = "graceful"
    entrypoint: list[str] | None = None
    if broken("container.graceful"):  # the shell form: /bin/sh is PID 1 and keeps SIGTERM
        entrypoint = ["/bin/sh", "-c", shlex.join(image["entrypoint"]) + ' "$@"; true', "sh"]
    bundle(image, name, image["cmd"], entrypoint=entrypoint)
    log = Path(f"/run/container-{name}.log")
    with container(name, log) as proc:
        ready = wait_for(
            lambda: http_get(9000, "/readyz", timeout=2)[0] == 200 or proc.poll() is not None,
            timeout=90,
            what="the container's /readyz",
        )
        served = http_get(8000, "/")
        begin = time.monotonic()
        run("runc", "kill", name, "TERM")
        try:
            code: int | None = proc.wait(40)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - begin
    records, lines = _log(log)
    facts.note(
        graceful={
            "ready": ready,
            "served": served,
            "exit_code": code,
            "seconds": took,
            "warden": [(r.get("kind"), r.get("message")) for r in records],
            "program": lines[-20:],
        }
    )


def orphans(facts: Facts, image: dict[str, Any]) -> None:
    name = "orphans"
    cmd = ["python", f"{PROGRAMS}/orphans.py"]
    entrypoint: list[str] | None = [] if broken("container.orphans") else None  # PID 1 itself
    bundle(image, name, cmd, entrypoint=entrypoint)
    log = Path(f"/run/container-{name}.log")
    with container(name, log) as proc:
        code = proc.wait(60)
    records, lines = _log(log)
    report = [json.loads(line) for line in lines if line.startswith("{")]
    facts.note(
        orphans={
            "exit_code": code,
            "report": report,
            "warden": [(r.get("kind"), r.get("message")) for r in records],
            "program": lines[-20:],
        }
    )


def memory(facts: Facts, image: dict[str, Any], case: str) -> None:
    """A 96 MiB limit in the bundle; a ramp under warden's sentinel (--memory-warn-signal)."""
    name = f"memory-{case}"
    cmd = ["python", f"{PROGRAMS}/ramp.py", "--mib-per-second", "16"]
    if case == "oom" and not broken("container.oom"):
        cmd.append("--ignore-term")
    env = {"WARDEN_MEMORY_WARN_SIGNAL": "USR1"}  # the sentinel on (warden's own cgroup)
    if broken("container.ramp") and case == "ramp":
        env = {}  # no sentinel: nothing stops the ramp before the kernel does
    bundle(image, name, cmd, memory=96 * MiB, env=env)
    log = Path(f"/run/container-{name}.log")
    with container(name, log) as proc:
        code = proc.wait(120)
    records, lines = _log(log)
    facts.note(
        **{
            f"memory_{case}": {
                "exit_code": code,
                "warden": [
                    {k: r.get(k) for k in ("kind", "message", "data")}
                    for r in records
                    if str(r.get("kind")).startswith(("memory.", "child."))
                ],
                "program": lines[-20:],
            }
        }
    )
