"""A real OCI container: ``runc`` with a bundle whose root filesystem is this Debian one, and
warden as PID 1 through ``deploy/container/Containerfile``'s entrypoint (exec form).

The bundle is what an image built from the Containerfile would give: its ``ENTRYPOINT`` and
``CMD`` (or a command in place of ``CMD``, as ``docker run IMAGE CMD...`` does), ``ENV``,
``USER`` and ``WORKDIR``; the app is the repository's example service. Namespaces as Docker
makes them (pid, network, mount, ipc, uts, cgroup); the checks reach the container's ports
with ``runc exec``.

* ``runc kill TERM``: the graceful stop (readiness false, the 5 s drain, exit 0).
* Orphans left to PID 1 are reaped.
* A memory limit in the bundle is what the sentinel reads; a ramp is stopped before the OOM
  kill; a ramp that ignores its stop signal is OOM-killed and named so (exit 137).

Run in the guest (cgroup v2, :func:`check`), and by the host's suite on this machine's
cgroup v1 (:class:`Runtime` with the share as the host sees it, ``tests/system/_runc.py``).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._util import SHARE, Facts, broken, run, wait_for

LIMIT = 300
MiB = 2**20
#: Inside the container, the share is where the guest mounts it (a bind mount of it).
PROGRAMS_INSIDE = "/mnt/host/tests/system/guest/programs"
PROBE = """\
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(r.status)
print(r.read().decode(), end="")
"""


def containerfile(share: Path) -> dict[str, Any]:
    """ENTRYPOINT, CMD (exec form), ENV, USER and WORKDIR of the repository's Containerfile."""
    text = (share / "checkout" / "deploy" / "container" / "Containerfile").read_text()
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


def install_image(rootfs: Path, share: Path, image: dict[str, Any]) -> None:
    """What building the image would add to the Debian root filesystem: the app in WORKDIR
    (owned by USER), and warden (from the share, as the guest's runner installs it)."""
    from .runner import WARDEN_SCRIPT

    app = rootfs / image["workdir"].lstrip("/")
    app.mkdir(parents=True, exist_ok=True)
    shutil.copy(share / "checkout" / "examples" / "http_service.py", app / "app.py")
    shutil.chown(app, int(image["user"]), int(image["user"]))
    warden = rootfs / "usr" / "local" / "bin" / "warden"
    warden.write_text(WARDEN_SCRIPT)
    warden.chmod(0o755)
    site = rootfs / "usr" / "local" / "lib" / "python3.11" / "dist-packages"
    (site / "warden-tests.pth").write_text("/mnt/host\n")


@dataclass(frozen=True)
class Runtime:
    """runc with a bundle in ``bundle`` (its ``rootfs`` ready), the share at ``share``."""

    share: Path
    bundle: Path

    def broken(self, name: str) -> bool:
        return broken(name, self.share)

    def configure(
        self, image: dict[str, Any], name: str, cmd: list[str], *, memory: int | None = None,
        entrypoint: list[str] | None = None, env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """``config.json`` as a runtime makes it from the image and ``docker run``'s options."""
        (self.bundle / "config.json").unlink(missing_ok=True)
        run("runc", "spec", "--bundle", str(self.bundle), check=True)
        spec = json.loads((self.bundle / "config.json").read_text())
        uid = int(image["user"])
        spec["process"].update(
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
            {"destination": "/mnt/host", "type": "bind", "source": str(self.share),
             "options": ["rbind", "ro"]}
        )  # fmt: skip
        linux = spec["linux"]
        if {"type": "cgroup"} not in linux["namespaces"]:  # runc's spec has it on v2 only
            linux["namespaces"].append({"type": "cgroup"})  # as Docker on v2, Kubernetes
        linux["cgroupsPath"] = f"/warden-{name}"
        if memory is not None:
            linux["resources"]["memory"] = {"limit": memory, "swap": memory}
        (self.bundle / "config.json").write_text(json.dumps(spec, indent=1))

    @contextlib.contextmanager
    def container(self, name: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
        """``runc run NAME`` in the foreground (its exit status is the container's)."""
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["runc", "run", "--bundle", str(self.bundle), name],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                run("runc", "kill", name, "KILL")
                proc.wait(30)
            run("runc", "delete", "--force", name)

    def http_get(self, name: str, port: int, path: str) -> tuple[int, str]:
        """A request from inside the container (its own network namespace)."""
        done = run("runc", "exec", name, "python", "-c", PROBE, str(port), path, timeout=30)
        if done.returncode != 0:
            return 0, done.stderr.strip().splitlines()[-1:][0] if done.stderr.strip() else ""
        status, _, body = done.stdout.partition("\n")
        return int(status), body


def check(facts: Facts) -> None:
    """In the guest: the bundle's root filesystem is the guest's own (a bind mount of /)."""
    runtime = Runtime(SHARE, Path("/run/warden-bundle"))
    image = containerfile(runtime.share)
    install_image(Path("/"), runtime.share, image)  # the guest's root is the image's
    rootfs = runtime.bundle / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    # Not recursive: the container sees the root filesystem, not the guest's /run, /proc...
    run("mount", "--bind", "/", str(rootfs), check=True)
    try:
        run_all(facts, runtime, image, logs=Path("/run"))
    finally:
        run("umount", str(rootfs))


def run_all(facts: Facts, runtime: Runtime, image: dict[str, Any], *, logs: Path) -> None:
    facts.note(containerfile=image)
    for step in (graceful, orphans, ramp, oom):
        step(facts, runtime, image, logs)


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


def graceful(facts: Facts, runtime: Runtime, image: dict[str, Any], logs: Path) -> None:
    name = "graceful"
    entrypoint: list[str] | None = None
    if runtime.broken("container.graceful"):  # the shell form: /bin/sh is PID 1, keeps SIGTERM
        entrypoint = ["/bin/sh", "-c", shlex.join(image["entrypoint"]) + ' "$@"; true', "sh"]
    runtime.configure(image, name, image["cmd"], entrypoint=entrypoint)
    log = logs / f"container-{name}.log"
    with runtime.container(name, log) as proc:
        wait_for(
            lambda: runtime.http_get(name, 9000, "/readyz")[0] == 200 or proc.poll() is not None,
            timeout=90,
            what="the container's /readyz",
        )
        ready = proc.poll() is None
        served = runtime.http_get(name, 8000, "/")
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


def orphans(facts: Facts, runtime: Runtime, image: dict[str, Any], logs: Path) -> None:
    name = "orphans"
    cmd = ["python", f"{PROGRAMS_INSIDE}/orphans.py"]
    # broken: no entrypoint, the program is PID 1 itself
    entrypoint: list[str] | None = [] if runtime.broken("container.orphans") else None
    runtime.configure(image, name, cmd, entrypoint=entrypoint)
    log = logs / f"container-{name}.log"
    with runtime.container(name, log) as proc:
        code = proc.wait(60)
    records, lines = _log(log)
    facts.note(
        orphans={
            "exit_code": code,
            "report": [json.loads(line) for line in lines if line.startswith("{")],
            "warden": [(r.get("kind"), r.get("message")) for r in records],
            "program": lines[-20:],
        }
    )


def ramp(facts: Facts, runtime: Runtime, image: dict[str, Any], logs: Path) -> None:
    """A ramp under warden's sentinel: stopped before the OOM kill."""
    env = {"WARDEN_MEMORY_WARN_SIGNAL": "USR1"}  # the sentinel on (warden's own cgroup)
    if runtime.broken("container.ramp"):
        env = {}  # no sentinel: nothing stops the ramp before the kernel does
    facts.note(memory_ramp=_memory(runtime, image, logs, "ramp", [], env))


def oom(facts: Facts, runtime: Runtime, image: dict[str, Any], logs: Path) -> None:
    """A ramp that ignores its stop signal: OOM-killed, and named so."""
    extra = [] if runtime.broken("container.oom") else ["--ignore-term"]
    env = {"WARDEN_MEMORY_WARN_SIGNAL": "USR1"}
    facts.note(memory_oom=_memory(runtime, image, logs, "oom", extra, env))


def _memory(
    runtime: Runtime, image: dict[str, Any], logs: Path, case: str, extra: list[str],
    env: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """A 96 MiB limit in the bundle, a ramp of 16 MiB/s as the command."""
    name = f"memory-{case}"
    cmd = ["python", f"{PROGRAMS_INSIDE}/ramp.py", "--mib-per-second", "16", *extra]
    runtime.configure(image, name, cmd, memory=96 * MiB, env=env)
    log = logs / f"container-{name}.log"
    with runtime.container(name, log) as proc:
        code = proc.wait(120)
    records, lines = _log(log)
    return {
        "exit_code": code,
        "warden": [
            {k: r.get(k) for k in ("kind", "message", "data")}
            for r in records
            if str(r.get("kind")).startswith(("memory.", "child."))
        ],
        "program": lines[-20:],
    }
