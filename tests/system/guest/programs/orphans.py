"""Leave orphans to PID 1 and see whether they are reaped.

Each of N grandchildren is started by a child that exits at once, so the grandchild's
parent becomes PID 1 (the container's). A grandchild exits after a moment; a PID 1 that
reaps leaves no trace of it, one that does not leaves a zombie. Prints one JSON line:
``{"orphans": [...], "zombies": [...]}``, then exits 0.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tests.system.guest.programs._notify import notify

N = 5


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None  # gone: reaped


def main() -> int:
    notify("READY=1\n")  # under warden run --ready notify (the Containerfile's entrypoint)
    read, write = os.pipe()
    for _ in range(N):
        child = os.fork()
        if child == 0:
            if os.fork() == 0:  # the grandchild, soon an orphan
                os.write(write, f"{os.getpid()}\n".encode())
                time.sleep(0.5)
                os._exit(0)
            os._exit(0)
        os.waitpid(child, 0)
    os.close(write)
    with os.fdopen(read) as pipe:
        orphans = [int(line) for line in pipe]  # each closes its copy of the pipe as it exits
    deadline = time.monotonic() + 10
    while any(state(pid) is not None for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for PID 1 to reap them (a zombie stays till the deadline)
    zombies = [pid for pid in orphans if state(pid) == "Z"]
    print(json.dumps({"pid": os.getpid(), "orphans": orphans, "zombies": zombies}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
