"""Items 6 and 7: no signal but SIGKILL ends warden without its ladder, and a signal during
warden's own teardown does not replace the program's exit code."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.supervisor.conftest import Processes

# Reports each signal it gets; exits 0 on SIGTERM (after "bye").
PROGRAM = """
import os, signal, sys
def report(signum, frame):
    print("got", signum, flush=True)
def bye(signum, frame):
    print("bye", flush=True)
    sys.exit(0)
for s in [signal.SIGUSR1, signal.SIGHUP, *range(signal.SIGRTMIN, signal.SIGRTMAX + 1)]:
    signal.signal(s, report)
signal.signal(signal.SIGTERM, bye)
print("ready", os.getpid(), flush=True)
while True:
    signal.pause()
"""


def test_a_real_time_signal_goes_to_the_program(procs: Processes) -> None:
    script = procs.script("program.py", PROGRAM)
    warden = procs.warden("--", script)
    procs.track(int(warden.out.wait_for(r"^ready (\d+)$").group(1)))
    for offset in (3, 7):
        signum = signal.SIGRTMIN + offset
        warden.kill(signum)
        warden.out.wait_for(f"^got {signum}$")
    warden.kill(signal.SIGRTMAX)
    warden.out.wait_for(f"^got {int(signal.SIGRTMAX)}$")
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0
    assert warden.out.count("^bye$") == 1


@pytest.mark.parametrize(
    "signum", [signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGSYS, signal.SIGXCPU]
)
def test_a_fault_signal_sent_with_kill_does_not_end_warden(procs: Processes, signum: int) -> None:
    script = procs.script("program.py", PROGRAM)
    warden = procs.warden("--", script)
    procs.track(int(warden.out.wait_for(r"^ready (\d+)$").group(1)))
    warden.kill(signum)
    # Still serving: a forwarded signal goes through, and the ladder still runs.
    warden.kill(signal.SIGUSR1)
    warden.out.wait_for(f"^got {int(signal.SIGUSR1)}$")
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 0


# Ignores the storm (an ignored signal stays ignored through the interpreter's exit, unlike a
# handled one) and leaves with exactly 0 on SIGTERM: any other code is warden's doing.
QUIET = """
import os, signal
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
print("ready", os.getpid(), flush=True)
while True:
    signal.pause()
"""


@pytest.mark.parametrize("storm", [signal.SIGUSR1, signal.SIGHUP])
def test_a_signal_storm_during_the_stop_keeps_the_exit_code(procs: Processes, storm: int) -> None:
    script = procs.script("quiet.py", QUIET)
    for _ in range(5):
        warden = procs.warden("--on-hup", "forward", "--", script)
        procs.track(int(warden.out.wait_for(r"^ready (\d+)$").group(1)))
        warden.kill(signal.SIGTERM)
        # Signals until warden is gone: some land after the lifecycle restored its handlers.
        while warden.proc.poll() is None:
            try:
                warden.kill(storm)
            except ProcessLookupError:
                break
        code = warden.wait()
        # The log's last lines say what ended warden when it is not the program's 0.
        assert code == 0, "\n".join(warden.err.lines[-6:])


def test_the_stop_signal_must_be_one_that_ends_a_program(procs: Processes) -> None:
    for name in ("CHLD", "CONT", "TSTP", "URG"):
        warden = procs.warden("--stop-signal", name, "--", "true")
        assert warden.wait() == 2
        assert "cannot end the program" in warden.err.text()
    # Apache httpd's graceful stop is SIGWINCH: ignored by default, but allowed.
    warden = procs.warden("--stop-signal", "WINCH", "--", "true")
    assert warden.wait() == 0


# An inner lifecycle ends inside an outer one on the same loop; then the loop takes the
# wakeup fd (add_signal_handler), and SIGTERM must still reach the outer lifecycle.
NESTED = """
import asyncio, os, signal
import warden

async def main():
    loop = asyncio.get_running_loop()
    async with warden.Lifecycle(shutdown_timeout=5) as outer:
        async with warden.Lifecycle(shutdown_timeout=5):
            pass
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await asyncio.wait_for(outer.wait_for_stop(), 10)
            print("outer stopped", flush=True)
        except TimeoutError:
            print("SIGTERM lost", flush=True)
            outer.request_stop()

asyncio.run(main())
"""


def test_sigterm_reaches_the_outer_lifecycle_after_an_inner_one_ended() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NESTED], capture_output=True, text=True, timeout=30, check=False
    )
    assert "outer stopped" in done.stdout, (done.stdout, done.stderr)
