"""Shutdown under real signals, in real processes: order, deadlines, failures, second signal."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

from tests._proc import Proc, python
from tests.conftest import Spawn

# Every script prints its timeline to stdout ("event KIND NAME OUTCOME"), so a test waits for
# a line instead of sleeping.
PRELUDE = """\
import asyncio, os, sys, threading, time
import warden

def make(**kwargs):
    lc = warden.Lifecycle(**kwargs)
    lc.timeline.subscribe(
        lambda e: print("event", e.kind, e.name, e.outcome, e.detail or "", flush=True)
    )
    return lc
"""


def script(tmp_path: Path, body: str, *args: str) -> list[str]:
    path = tmp_path / "service.py"
    path.write_text(PRELUDE + textwrap.dedent(body))
    return python(str(path), *args)


def ready_service(tmp_path: Path, spawn: Spawn, body: str, *args: str) -> Proc:
    """Start a scripted service and wait until its lifecycle is ready."""
    proc = spawn(script(tmp_path, body, *args))
    proc.wait_line(r"^event state ready")
    return proc


def stop_lines(stdout: str) -> list[str]:
    return [line.split()[2] for line in stdout.splitlines() if line.startswith("event stop ")]


def test_stop_runs_in_reverse_dependency_order_and_independent_ones_concurrently(
    tmp_path: Path, spawn: Spawn
) -> None:
    # cache and queue both need db; http needs both. cache and queue stop concurrently: each
    # waits at a barrier for the other, so a sequential stop would time out instead.
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=10)
        barrier = None
        async def meet():
            global barrier
            barrier = barrier or asyncio.Barrier(2)
            await barrier.wait()
        lc.add("http", stop=lambda: None, depends_on=["cache", "queue"])
        lc.add("cache", stop=meet, depends_on=["db"], stop_timeout=5)
        lc.add("queue", stop=meet, depends_on=["db"], stop_timeout=5)
        lc.add("db", stop=lambda: None)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    order = stop_lines(proc.stdout)
    assert order[0] == "http"
    assert set(order[1:3]) == {"cache", "queue"}
    assert order[3] == "db"
    assert "event stop cache ok" in proc.stdout
    assert "event stop queue ok" in proc.stdout
    starts = [ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("event start ")]
    assert starts.index("db") < starts.index("cache") < starts.index("http")


def test_busy_loop_blocking_the_event_loop_is_cut_at_the_deadline(
    tmp_path: Path, spawn: Spawn
) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=1)
        async def spin():
            while True:  # a sync busy loop inside a coroutine blocks the whole event loop
                pass
        lc.add("db", stop=lambda: print("db stopped", flush=True))
        lc.add("stuck", stop=spin, depends_on=["db"])
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == warden_exit_deadline()
    assert "shutdown deadline of 1s exceeded" in proc.stderr
    assert "still stopping: component 'stuck'" in proc.stderr
    assert "while True:  # a sync busy loop" in proc.stderr  # the culprit's stack
    assert "db stopped" not in proc.stdout  # db depends-on order held: it waited for stuck


def test_a_stuck_threads_stack_reads_as_a_traceback(tmp_path: Path, spawn: Spawn) -> None:
    # Each frame is a "File" line with its source line indented under it, as Python prints
    # them, on the stuck thread and on the loop's thread alike.
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=1)
        def spin():
            while True:  # a sync stop, on its thread
                pass
        lc.add("stuck", stop=spin)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == warden_exit_deadline()
    lines = proc.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if "while True:  # a sync stop" in line)
    assert lines[at - 1].startswith("    File ") and lines[at - 1].endswith(", in spin")
    assert lines[at] == "      while True:  # a sync stop, on its thread"
    loop = lines.index("warden: event loop thread is at:")
    assert lines[loop + 1].startswith("    File ") and lines[loop + 2].startswith("      ")


def test_async_stop_that_never_finishes_is_cut_at_the_deadline(
    tmp_path: Path, spawn: Spawn
) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=0.5)
        async def forever():
            await asyncio.Event().wait()
        lc.add("pool", stop=forever)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == warden_exit_deadline()
    assert "still stopping: component 'pool'" in proc.stderr
    assert "await asyncio.Event().wait()" in proc.stderr


def test_loop_blocked_before_the_signal_still_exits_at_the_deadline(
    tmp_path: Path, spawn: Spawn
) -> None:
    # The loop is stuck in request handling when SIGTERM arrives: the loop never sees the
    # signal, the guard thread arms the deadline by itself.
    proc = spawn(
        script(
            tmp_path,
            """
        lc = make(shutdown_timeout=0.5)
        async def main():
            print("spinning", flush=True)
            while True:
                pass
        sys.exit(lc.run(main))
    """,
        )
    )
    proc.wait_line(r"^spinning")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == warden_exit_deadline()
    assert "event loop thread is at" in proc.stderr


def test_a_stop_signal_delivered_to_another_thread_is_not_lost(
    tmp_path: Path, spawn: Spawn
) -> None:
    # The kernel may deliver a process-directed signal to any thread. The main thread, idle
    # in epoll_wait, must still learn of it: the byte is written by CPython's C-level
    # handler (the wakeup fd), not by a Python handler that only the main thread runs.
    proc = ready_service(
        tmp_path,
        spawn,
        """
        import signal
        lc = make(shutdown_timeout=30)
        lc.add("x", stop=lambda: print("x stopped", flush=True))
        def elsewhere():
            print("thread ready", flush=True)
            sys.stdin.readline()
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread only
        threading.Thread(target=elsewhere, daemon=True).start()
        sys.exit(lc.run())
    """,
    )
    proc.wait_line(r"^thread ready")
    assert proc.popen.stdin is not None
    proc.popen.stdin.write("go\n")
    proc.popen.stdin.flush()
    assert proc.wait(timeout=10) == 0
    assert "x stopped" in proc.stdout


def test_an_event_loops_own_signal_handlers_keep_working(tmp_path: Path, spawn: Spawn) -> None:
    # asyncio's add_signal_handler lives on the same wakeup fd warden takes: warden passes on
    # what it does not handle, and gives the fd back afterwards.
    proc = spawn(
        script(
            tmp_path,
            """
        import signal
        async def main():
            loop = asyncio.get_running_loop()
            seen = []
            def got():
                seen.append(1)
                print(f"loop got USR2 #{len(seen)}", flush=True)
            loop.add_signal_handler(signal.SIGUSR2, got)
            lc = make()
            async with lc:
                print("inside", flush=True)
                await lc.wait_for_stop()
            print("outside", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        asyncio.run(main())
    """,
        )
    )
    proc.wait_line(r"^inside")
    proc.signal(signal.SIGUSR2)
    proc.wait_line(r"^loop got USR2 #1")  # passed on by warden's guard
    proc.signal(signal.SIGTERM)
    proc.wait_line(r"^outside")
    proc.signal(signal.SIGUSR2)
    proc.wait_line(r"^loop got USR2 #2")  # the loop's own wakeup fd is back
    assert proc.popen.stdin is not None
    proc.popen.stdin.write("done\n")
    proc.popen.stdin.flush()
    assert proc.wait() == 0


def test_a_loop_that_takes_the_wakeup_fd_while_running_does_not_swallow_sigterm(
    tmp_path: Path, spawn: Spawn
) -> None:
    # add_signal_handler during the run takes the process's one wakeup fd from warden.
    proc = ready_service(
        tmp_path,
        spawn,
        """
        import signal
        lc = make(shutdown_timeout=10)
        async def start():
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGUSR2, lambda: print("loop got USR2", flush=True))
        lc.add("x", start=start, stop=lambda: print("x stopped", flush=True))
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "x stopped" in proc.stdout


def test_the_deadline_holds_when_stderr_is_a_full_pipe(tmp_path: Path, spawn: Spawn) -> None:
    # A stalled log shipper: the report cannot be written, the exit must still come.
    proc = spawn(
        script(
            tmp_path,
            """
        import fcntl, signal
        r, w = os.pipe()
        os.dup2(w, 2)
        flags = fcntl.fcntl(2, fcntl.F_GETFL)
        fcntl.fcntl(2, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            while True:
                os.write(2, b"x" * 65536)
        except BlockingIOError:
            pass
        fcntl.fcntl(2, fcntl.F_SETFL, flags)  # blocking again, and full
        lc = make(shutdown_timeout=0.5)
        async def hang():
            await asyncio.Event().wait()
        lc.add("stuck", stop=hang)
        async def main():
            os.kill(os.getpid(), signal.SIGTERM)
            await lc.wait_for_stop()
        sys.exit(lc.run(main))
    """,
        )
    )
    assert proc.wait(timeout=10) == warden_exit_deadline()


def test_main_does_not_run_when_a_stop_interrupted_start_up(tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(
        script(
            tmp_path,
            """
        lc = make()
        async def hang():
            print("starting", flush=True)
            await asyncio.Event().wait()
        lc.add("slow", start=hang)
        sys.exit(lc.run(lambda: print("main ran", flush=True)))
    """,
        )
    )
    proc.wait_line(r"^starting")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "main ran" not in proc.stdout


def test_a_signal_after_a_stop_that_began_otherwise_is_not_second(
    tmp_path: Path, spawn: Spawn
) -> None:
    # The guard and the loop count the same thing: a stop that began because main returned
    # does not make the first SIGTERM a second one.
    proc = spawn(
        script(
            tmp_path,
            """
        lc = make(shutdown_timeout=10)
        gate = asyncio.Event()
        async def stop():
            print("stopping", flush=True)
            await gate.wait()
        lc.on_signal(__import__("signal").SIGTERM, lambda s: gate.set())
        lc.add("x", stop=stop)
        sys.exit(lc.run(lambda: 0))
    """,
        )
    )
    proc.wait_line(r"^stopping")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "second stop signal" not in proc.stdout


def test_guard_works_with_more_than_1024_open_files(tmp_path: Path, spawn: Spawn) -> None:
    # select() cannot watch an fd >= 1024: the guard must use poll().
    proc = ready_service(
        tmp_path,
        spawn,
        """
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
        held = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]
        lc = make(shutdown_timeout=5)
        lc.add("x", stop=lambda: print("x stopped", flush=True))
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "x stopped" in proc.stdout


def test_readiness_turns_false_even_while_the_loop_is_blocked(tmp_path: Path, spawn: Spawn) -> None:
    # A health check answered from another thread must say "not ready" at once, although
    # the loop, stuck in a request, has not processed the signal yet.
    proc = spawn(
        script(
            tmp_path,
            """
        lc = make(shutdown_timeout=5)
        release = threading.Event()
        def probe():
            while lc.ready:
                pass
            print("probe saw ready=False; state is", lc.state.value, flush=True)
            release.set()
        async def main():
            threading.Thread(target=probe, daemon=True).start()
            print("blocking the loop", flush=True)
            release.wait()  # blocks the event loop until the probe saw readiness go false
        sys.exit(lc.run(main))
    """,
        )
    )
    proc.wait_line(r"^blocking the loop")
    proc.signal(signal.SIGTERM)
    proc.wait_line(r"^probe saw ready=False; state is ready")
    assert proc.wait() == 0


def test_a_stop_that_raises_does_not_skip_the_others(tmp_path: Path, spawn: Spawn) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make()
        def boom():
            raise RuntimeError("disk on fire")
        lc.add("a", stop=lambda: print("a stopped", flush=True))
        lc.add("b", stop=boom, depends_on=["a"])
        lc.add("c", stop=lambda: print("c stopped", flush=True), depends_on=["b"])
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 1
    assert "event stop b failed RuntimeError: disk on fire" in proc.stdout
    assert "a stopped" in proc.stdout
    assert "c stopped" in proc.stdout
    assert stop_lines(proc.stdout) == ["c", "b", "a"]


def test_a_stop_over_its_own_timeout_is_recorded_and_the_rest_stop(
    tmp_path: Path, spawn: Spawn
) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=10)
        async def slow():
            await asyncio.Event().wait()
        lc.add("db", stop=lambda: print("db stopped", flush=True))
        lc.add("slow", stop=slow, depends_on=["db"], stop_timeout=0.2)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 1
    assert "event stop slow timeout did not stop within its stop_timeout of 0.2s" in proc.stdout
    assert "db stopped" in proc.stdout


def test_second_sigterm_stops_immediately(tmp_path: Path, spawn: Spawn) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=60)
        async def forever():
            print("stopping slowly", flush=True)
            await asyncio.Event().wait()
        lc.add("slow", stop=forever)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    proc.wait_line(r"^stopping slowly")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    assert "second SIGTERM: stopping immediately with code 143" in proc.stderr
    assert "still stopping: component 'slow'" in proc.stderr


def test_second_signal_ignored_when_configured(tmp_path: Path, spawn: Spawn) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(shutdown_timeout=60, on_second_signal="ignore")
        gate = asyncio.Event()
        async def stop():
            print("stopping", flush=True)
            await gate.wait()
        lc.on_signal(__import__("signal").SIGUSR2, lambda s: gate.set())
        lc.add("x", stop=stop)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGTERM)
    proc.wait_line(r"^stopping")
    proc.signal(signal.SIGINT)
    proc.wait_line(r"^event signal SIGINT None second stop signal")
    proc.signal(signal.SIGUSR2)
    assert proc.wait() == 0


def test_sigterm_during_startup_stops_only_what_started(tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(
        script(
            tmp_path,
            """
        lc = make()
        async def hang():
            print("b starting", flush=True)
            await asyncio.Event().wait()
        lc.add("a", start=lambda: None, stop=lambda: print("a stopped", flush=True))
        lc.add("b", start=hang, stop=lambda: print("b stopped", flush=True), depends_on=["a"])
        lc.add("c", start=lambda: print("c started", flush=True), depends_on=["b"])
        sys.exit(lc.run())
    """,
        )
    )
    proc.wait_line(r"^b starting")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "a stopped" in proc.stdout
    assert "b stopped" not in proc.stdout
    assert "c started" not in proc.stdout
    assert "event start b cancelled" in proc.stdout
    assert "event start c skipped" in proc.stdout
    assert "event state ready" not in proc.stdout


def test_failed_start_stops_the_started_and_exits_1(tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(
        script(
            tmp_path,
            """
        lc = make()
        def fail():
            raise OSError("port 80 in use")
        lc.add("a", stop=lambda: print("a stopped", flush=True))
        lc.add("b", start=fail, depends_on=["a"])
        lc.add("c", start=lambda: print("c started", flush=True), depends_on=["b"])
        sys.exit(lc.run())
    """,
        )
    )
    assert proc.wait() == 1
    assert "event start b failed OSError: port 80 in use" in proc.stdout
    assert "a stopped" in proc.stdout
    assert "c started" not in proc.stdout


def test_leak_report_names_task_thread_process_and_socket(tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(
        script(
            tmp_path,
            """
        import socket, subprocess
        lc = make()
        release = threading.Event()
        held = {}
        async def poll_forever():
            await asyncio.Event().wait()
        async def start():
            # Held, as asyncio asks: a task nothing refers to may be garbage-collected first
            # (it waits on an Event only its own frame holds), whenever the collector runs.
            held["task"] = asyncio.create_task(poll_forever(), name="metrics-poller")
            threading.Thread(target=release.wait, name="cache-refresher").start()
            held["child"] = subprocess.Popen(["sleep", "1000"])
            held["sock"] = socket.create_server(("127.0.0.1", 0))
            held["unix"] = socket.socket(socket.AF_UNIX)
            held["unix"].bind(sys.argv[1]); held["unix"].listen()
        lc.add("app", start=start, stop=lambda: None)
        code = lc.run()
        for leak in lc.leaks:
            print("leak", leak.kind, leak.name, "|", " ".join(leak.stack.split()))
        release.set()
        held["child"].kill(); held["child"].wait()
        sys.exit(code)
    """,
            str(tmp_path / "leak.sock"),
        )
    )
    proc.wait_line(r"^event state ready")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    leaks = [line for line in proc.stdout.splitlines() if line.startswith("leak ")]
    assert any(
        ln.startswith("leak task metrics-poller") and "in poll_forever" in ln for ln in leaks
    ), leaks
    assert any(ln.startswith("leak thread cache-refresher") for ln in leaks), leaks
    assert any(ln.startswith("leak process pid ") and "sleep 1000" in ln for ln in leaks), leaks
    assert any(ln.startswith("leak socket fd ") and "127.0.0.1:" in ln for ln in leaks), leaks
    assert any(ln.startswith("leak socket fd ") and "unix:" in ln for ln in leaks), leaks
    assert proc.stdout.count("event leak ") == 5


def test_reload_and_reopen_hooks_run_on_hup_and_usr1(tmp_path: Path, spawn: Spawn) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make()
        lc.on_reload(lambda: print("reloaded", flush=True))
        lc.on_reopen_logs(lambda: print("reopened", flush=True))
        lc.add("x", stop=lambda: None)
        sys.exit(lc.run())
    """,
    )
    proc.signal(signal.SIGHUP)
    proc.wait_line(r"^reloaded")
    proc.wait_line(r"^event reload None ok")
    proc.signal(signal.SIGUSR1)
    proc.wait_line(r"^reopened")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    states = [ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("event state")]
    assert states == ["starting", "ready", "reloading", "ready", "draining", "stopping", "stopped"]


def test_drain_turns_readiness_false_before_anything_stops(tmp_path: Path, spawn: Spawn) -> None:
    proc = ready_service(
        tmp_path,
        spawn,
        """
        lc = make(drain_delay=0.3)
        lc.add("http", stop=lambda: print("ready during stop:", lc.ready, flush=True))
        sys.exit(lc.run())
        """,
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert "ready during stop: False" in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines.index("event state draining None ") < lines.index("event stop http ok ")


def warden_exit_deadline() -> int:
    import warden

    return warden.EXIT_DEADLINE
