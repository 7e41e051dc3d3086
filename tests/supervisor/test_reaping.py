"""PID 1 duties: every zombie reaped, its own child and adopted orphans alike."""

from __future__ import annotations

import signal

from .conftest import Processes, children_of, proc_state, wait_until

# The program orphans N grandchildren: an intermediate process forks them and exits, so the
# kernel re-parents them to warden (the subreaper). They block on a pipe until the program,
# on SIGUSR1 (forwarded by warden), closes its end: then all N exit at once, a storm of
# SIGCHLDs that coalesce into a few deliveries.
STORM = """
import os, signal, sys
N = int(sys.argv[1])
r, w = os.pipe()
mid = os.fork()
if mid == 0:
    os.close(w)
    pids = []
    for _ in range(N):
        pid = os.fork()
        if pid == 0:
            os.read(r, 1)
            os._exit(0)
        pids.append(pid)
    os.write(1, (" ".join(map(str, pids)) + "\\n").encode())
    os._exit(0)
os.close(r)
def release(signum, frame):
    os.close(w)
    print("released", flush=True)
signal.signal(signal.SIGUSR1, release)
os.waitpid(mid, 0)
print("orphaned", flush=True)
while True:
    signal.pause()
"""


def test_zombie_storm_of_2000_orphans_leaves_no_zombie(procs: Processes) -> None:
    script = procs.script("storm.py", STORM)
    warden = procs.warden("--", script, "2000")
    grandchildren = [int(p) for p in warden.out.wait_for(r"^[\d ]+$", timeout=40).group(0).split()]
    procs.track(*grandchildren)
    warden.out.wait_for("^orphaned$")
    assert len(grandchildren) == 2000
    # Every orphan is now warden's child (the subreaper), not init's.
    adopted = set(children_of(warden.pid))
    assert set(grandchildren) <= adopted

    warden.kill(signal.SIGUSR1)
    warden.out.wait_for("^released$")

    def none_left() -> bool:
        return all(proc_state(pid) is None for pid in grandchildren)

    wait_until(none_left, "all 2000 orphans reaped (gone from /proc, not zombies)", timeout=40)
    assert not [pid for pid in children_of(warden.pid) if proc_state(pid) == "Z"]
    assert warden.proc.poll() is None  # the program itself still runs

    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM  # the program dies of the TERM it got


def test_orphans_left_when_the_program_exits_are_stopped_and_reaped(procs: Processes) -> None:
    # The program starts a helper in its process group and exits 5 without waiting for it.
    script = procs.script(
        "leaves.py",
        """
import os, time
pid = os.fork()
if pid == 0:
    time.sleep(3600)
    os._exit(0)
print("helper", pid, flush=True)
raise SystemExit(5)
""",
    )
    warden = procs.warden("--stop-timeout", "20", "--", script)
    helper = int(warden.out.wait_for(r"^helper (\d+)$").group(1))
    procs.track(helper)
    assert warden.wait() == 5
    # warden waited for it: after the stop signal it was reaped before warden exited.
    assert proc_state(helper) is None
    ladder = [e["detail"] for e in warden.events("stop_ladder")]
    assert any("left behind by the program" in str(d) for d in ladder), ladder
