"""``warden run`` on a :class:`~warden.lifecycle.ManualClock` that the test jumps.

Run as a script (``python _jumped.py FD ARGS...``): the whole ``warden run`` (its option
parsing, log, supervisor, exit), with one difference: the supervisor's clock stands still
until the test writes ``SECONDS\\n`` to the pipe whose read end is ``FD``, and then jumps by
that much (every wait on it: the stop ladder's deadline, the readiness gate's timeout, the
upgrade window...) and says so on stderr (:data:`JUMPED`). So a test proves what happens at
a timeout of ten minutes in a moment, with the real program, signals and sockets.

A jump is read on the supervisor's loop, between two of its callbacks: a deadline computed in
the same callback as a fact that was logged is already armed when the jump for it arrives.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from warden.cli import _run
from warden.lifecycle import ManualClock
from warden.supervisor import Supervisor, SupervisorOptions

#: The line on stderr that says a jump was made: ``JUMPED N: TIME`` for the Nth jump.
JUMPED = "test clock jump"


def _listen_for_jumps(clock: ManualClock, fd: int) -> Callable[[], Awaitable[None]]:
    async def start() -> None:
        loop = asyncio.get_running_loop()
        pending = bytearray()
        jumps = 0

        def read() -> None:
            nonlocal jumps
            chunk = os.read(fd, 4096)
            if not chunk:  # the test is gone
                loop.remove_reader(fd)
                return
            pending.extend(chunk)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                clock.jump(float(line))
                jumps += 1
                # Said once the timers that fell due have fired (what they woke runs later).
                sys.stderr.write(f"{JUMPED} {jumps}: {clock.now():.3f}\n")
                sys.stderr.flush()

        loop.add_reader(fd, read)

    return start


def main() -> None:
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)  # the program must not hold the test's pipe
    clock = ManualClock()

    def supervisor(options: SupervisorOptions) -> Supervisor:
        made = Supervisor(options, clock=clock)
        # A component with a start only: the reader stays until the loop closes, so the test
        # can still jump over the stop ladder's deadline while the others stop.
        made.lifecycle.add("test-clock", start=_listen_for_jumps(clock, fd))
        return made

    vars(_run)["Supervisor"] = supervisor  # what `warden run` makes its supervisor with
    sys.exit(_run.main(sys.argv[2:]))


if __name__ == "__main__":
    main()
