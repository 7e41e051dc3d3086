"""The kernel's log, and the OOM kills in it.

Read from ``/dev/kmsg`` as root (each ``read`` returns one record, ``PRI,SEQ,USEC,FLAGS;TEXT``;
non-blocking, so the read ends at the last record), else from ``journalctl -k``, else from
``dmesg``. Times are seconds since boot on the clock the kernel stamps its records with
(``local_clock``, which ``CLOCK_MONOTONIC`` follows: ``time.monotonic()`` is "now").

An OOM kill leaves these lines, in this order (mm/oom_kill.c, mm/memcontrol.c)::

    python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
    memory: usage 65536kB, limit 65536kB, failcnt 20          (a memory cgroup's kill)
    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/a/b,task_memcg=/a/b,task=python3,pid=27886,uid=0
    Memory cgroup out of memory: Killed process 27886 (python3) total-vm:9140kB, anon-rss:896kB, ...

(``Out of memory: Killed process ...`` for a kill when the whole machine ran out.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import subprocess

KMSG = "/dev/kmsg"

_KILLED = re.compile(
    r"(?P<scope>Memory cgroup out of memory|Out of memory[^:]*): Killed process (?P<pid>\d+) "
    r"\((?P<task>[^)]*)\)(?P<rest>.*)"
)
_OOM_KILL = re.compile(r"oom-kill:(?P<fields>\S+)")
_USAGE = re.compile(r"^memory: usage (?P<usage>\d+)kB, limit (?P<limit>\d+)kB")
_RSS = re.compile(r"(anon|file|shmem)-rss:(\d+)kB")
_STAMPED = re.compile(r"^\[\s*(?P<at>\d+\.\d+)\]\s*(?:\S+ kernel: )?(?P<text>.*)$")


@dataclasses.dataclass(frozen=True, slots=True)
class KernelLine:
    """One line of the kernel's log: seconds since boot, and its text."""

    at: float
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class OomKill:
    """An OOM kill, as the kernel logged it.

    Attributes:
        at: seconds since boot.
        pid: the victim, as the kernel numbers it (the host's pid namespace).
        task: its command name.
        rss: its resident memory when killed (anon + file + shmem), bytes.
        memcg: the victim's memory cgroup (``task_memcg``), if logged.
        constraint: ``CONSTRAINT_MEMCG`` (a cgroup's limit) or ``CONSTRAINT_NONE`` (the whole
            machine), if logged.
        usage, limit: the cgroup's usage and limit at the kill (bytes), if logged.
        lines: the kernel's own lines for it (``oom-kill:`` and ``Killed process``).
    """

    at: float
    pid: int
    task: str
    rss: int
    memcg: str | None
    constraint: str | None
    usage: int | None
    limit: int | None
    lines: tuple[str, ...]


#: The commands tried after /dev/kmsg, and how the report names them.
COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("journalctl", "-k", "-o", "short-monotonic", "--no-pager", "-q"), "journalctl -k"),
    (("dmesg",), "dmesg"),
)


def read_kernel_log(
    kmsg: str = KMSG, commands: tuple[tuple[tuple[str, ...], str], ...] = COMMANDS
) -> tuple[list[KernelLine], str]:
    """The kernel's log and where it was read (``/dev/kmsg``, ``journalctl -k``, ``dmesg``).

    Raises:
        OSError: none of them can be read here (not root, ``dmesg_restrict``; a container
            without the privilege); its ``strerror`` is the sentence to show.
    """
    with contextlib.suppress(OSError):
        return _kmsg(kmsg), kmsg
    for command, name in commands:
        if shutil.which(command[0]) is None:
            continue
        try:
            done = subprocess.run(
                list(command), capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = _stamped(done.stdout)
        if done.returncode == 0 and lines:
            return lines, name
    raise OSError(
        errno.EACCES,
        f"cannot read the kernel's log: {kmsg} needs root, and journalctl -k and dmesg gave "
        "nothing (kernel.dmesg_restrict=1?)",
    )


def _kmsg(path: str) -> list[KernelLine]:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    lines: list[KernelLine] = []
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break  # the end of the buffer
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # overwritten while we read: go on
                    continue
                raise
            if not record:
                break
            head, _, body = record.decode("utf-8", "replace").partition(";")
            fields = head.split(",")
            if len(fields) < 3:
                continue
            text = body.split("\n", 1)[0]  # continuation lines (" KEY=value") follow
            with contextlib.suppress(ValueError):
                lines.append(KernelLine(int(fields[2]) / 1e6, text))
    finally:
        os.close(fd)
    return lines


def _stamped(output: str) -> list[KernelLine]:
    lines = []
    for raw in output.splitlines():
        match = _STAMPED.match(raw)
        if match is not None:
            lines.append(KernelLine(float(match.group("at")), match.group("text")))
    return lines


def oom_kills(lines: list[KernelLine]) -> list[OomKill]:
    """The OOM kills in ``lines``, oldest first."""
    found: list[OomKill] = []
    fields: dict[str, str] = {}
    oom_line = ""
    usage: tuple[int, int] | None = None
    for line in lines:
        match = _USAGE.match(line.text)
        if match is not None:
            usage = (int(match.group("usage")) * 1024, int(match.group("limit")) * 1024)
            continue
        match = _OOM_KILL.search(line.text)
        if match is not None:
            fields = dict(
                part.partition("=")[::2] for part in match.group("fields").split(",") if "=" in part
            )
            oom_line = line.text
            continue
        match = _KILLED.search(line.text)
        if match is None:
            continue
        pid = int(match.group("pid"))
        same = fields.get("pid") == str(pid)
        rss = sum(int(kb) * 1024 for _, kb in _RSS.findall(match.group("rest")))
        found.append(
            OomKill(
                at=line.at,
                pid=pid,
                task=match.group("task"),
                rss=rss,
                memcg=fields.get("task_memcg") if same else None,
                constraint=fields.get("constraint") if same else None,
                usage=usage[0] if usage else None,
                limit=usage[1] if usage else None,
                lines=((oom_line,) if same else ()) + (line.text,),
            )
        )
        fields, oom_line, usage = {}, "", None
    return found
