"""A program whose stop takes long (a flush of N seconds after SIGTERM), then exits 0.

slowstop.py SECONDS
"""

from __future__ import annotations

import signal
import sys
import time

from tests.system.guest.programs._notify import notify


def main() -> int:
    flush = float(sys.argv[1])
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    notify("READY=1\n")
    signal.sigwait({signal.SIGTERM})
    print(f"stopping: flushing for {flush:g} s", flush=True)
    time.sleep(flush)  # stands for the flush of a service's buffers
    print("flushed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
