"""The lifecycle in-process: bad input, the entry points, signal handler hygiene."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import signal
import threading
from types import FrameType

import pytest

import warden
from warden._durations import parse_duration


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "shutdown_timeout=-1 is negative"),
        (0, "shutdown_timeout=0 must be more than 0 seconds"),
        (math.nan, "shutdown_timeout=nan must be a finite number"),
        (math.inf, "shutdown_timeout=inf must be a finite number"),
        ("soon", "shutdown_timeout='soon' is not a duration"),
        (True, "shutdown_timeout must be a duration in seconds, got True"),
    ],
)
def test_bad_shutdown_timeout_is_a_clear_error(value: object, message: str) -> None:
    with pytest.raises(warden.ConfigurationError, match=message):
        warden.Lifecycle(shutdown_timeout=value)  # type: ignore[arg-type]


def test_bad_timeout_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARDEN_SHUTDOWN_TIMEOUT", "-3")
    with pytest.raises(ValueError, match="WARDEN_SHUTDOWN_TIMEOUT='-3' is negative"):
        warden.Lifecycle()


def test_shutdown_timeout_defaults_to_25s_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WARDEN_SHUTDOWN_TIMEOUT", raising=False)
    assert warden.Lifecycle().shutdown_timeout == 25.0
    monkeypatch.setenv("WARDEN_SHUTDOWN_TIMEOUT", "1500ms")
    assert warden.Lifecycle().shutdown_timeout == 1.5


@pytest.mark.parametrize("value", [0, -5, math.nan, "x"])
def test_bad_component_stop_timeout_names_the_component(value: object) -> None:
    lc = warden.Lifecycle()
    with pytest.raises(warden.ConfigurationError, match="stop_timeout of 'db'"):
        lc.add("db", stop=lambda: None, stop_timeout=value)  # type: ignore[arg-type]


def test_drain_delay_may_be_zero_but_not_negative() -> None:
    assert warden.Lifecycle(drain_delay=0).drain_delay == 0
    with pytest.raises(warden.ConfigurationError, match=r"drain_delay=-0\.5 is negative"):
        warden.Lifecycle(drain_delay=-0.5)


def test_drain_delay_must_fit_inside_the_deadline() -> None:
    with pytest.raises(warden.ConfigurationError, match=r"drain_delay=30s is not shorter"):
        warden.Lifecycle(drain_delay=30)  # the default deadline is 25 s


def test_durations_accept_units() -> None:
    assert parse_duration("250ms", what="x") == 0.25
    assert parse_duration("2m", what="x") == 120
    assert parse_duration(" 1.5 s ", what="x") == 1.5


def _recording_lifecycle() -> tuple[warden.Lifecycle, list[str]]:
    started: list[str] = []
    lc = warden.Lifecycle(handle_signals=False)
    lc.add("a", start=lambda: started.append("a"))
    return lc, started


def test_unknown_dependency_is_reported_before_anything_starts() -> None:
    lc, started = _recording_lifecycle()
    lc.add("web", start=lambda: started.append("web"), depends_on=["dbb"])
    with pytest.raises(warden.DependencyError, match=r"'web' depends on 'dbb', which is not"):
        lc.run()
    assert started == []
    assert lc.state is warden.State.CREATED


def test_dependency_cycle_is_reported_with_its_path_before_anything_starts() -> None:
    lc, started = _recording_lifecycle()
    lc.add("x", depends_on=["z"])
    lc.add("y", depends_on=["x"])
    lc.add("z", depends_on=["y", "a"])
    with pytest.raises(warden.DependencyError, match=r"dependency cycle: x -> z -> y -> x"):
        lc.run()
    assert started == []


def test_self_dependency_and_duplicates_are_refused_at_registration() -> None:
    lc = warden.Lifecycle()
    with pytest.raises(warden.DependencyError, match="'a' depends on itself"):
        lc.add("a", depends_on=["a"])
    lc.add("b")
    with pytest.raises(warden.DependencyError, match="'b' is already registered"):
        lc.add("b")
    with pytest.raises(warden.ConfigurationError, match="start=42 is not callable"):
        lc.add("c", start=42)  # type: ignore[arg-type]


def test_adding_after_start_is_refused() -> None:
    lc = warden.Lifecycle(handle_signals=False)
    errors: list[Exception] = []

    async def main() -> None:
        try:
            lc.add("late")
        except warden.LifecycleError as exc:
            errors.append(exc)

    assert lc.run(main) == 0
    assert "cannot add component 'late': the lifecycle is ready" in str(errors[0])


def test_a_lifecycle_runs_once() -> None:
    lc = warden.Lifecycle(handle_signals=False)
    assert lc.run(lambda: None) == 0
    with pytest.raises(warden.LifecycleError, match="a Lifecycle runs once"):
        lc.run(lambda: None)


def test_bad_second_signal_option() -> None:
    with pytest.raises(warden.ConfigurationError, match="on_second_signal='bogus'"):
        warden.Lifecycle(on_second_signal="bogus")  # type: ignore[arg-type]


def test_async_with_form_starts_and_stops_in_order() -> None:
    events: list[str] = []
    lc = warden.Lifecycle(handle_signals=False)

    async def start_db() -> None:
        events.append("db+")

    lc.add("db", start=start_db, stop=lambda: events.append("db-"))
    lc.add(
        "web",
        start=lambda: events.append("web+"),
        stop=lambda: events.append("web-"),
        depends_on=["db"],
    )

    async def main() -> None:
        async with lc:
            assert lc.ready
            threading.Thread(target=lc.request_stop, args=("from a thread",)).start()
            assert await lc.wait_for_stop() == "from a thread"
            during = lc.state  # a local: mypy would narrow lc.state for the next assert
            assert during is warden.State.DRAINING
        assert lc.state is warden.State.STOPPED

    asyncio.run(main())
    assert events == ["db+", "web+", "web-", "db-"]


def test_async_with_raises_startup_error_after_stopping_what_started() -> None:
    events: list[str] = []
    lc = warden.Lifecycle(handle_signals=False)
    lc.add("db", stop=lambda: events.append("db-"))

    async def refuse() -> None:
        raise ConnectionRefusedError("redis:6379")

    lc.add("cache", start=refuse, depends_on=["db"])

    async def main() -> None:
        async with lc:
            events.append("body")  # never reached

    with pytest.raises(warden.StartupError, match="'cache' failed to start") as info:
        asyncio.run(main())
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert events == ["db-"]
    assert lc.exit_code == 1


def test_error_in_async_with_body_stops_the_service_and_propagates() -> None:
    lc = warden.Lifecycle(handle_signals=False)
    stopped: list[str] = []
    lc.add("db", stop=lambda: stopped.append("db"))

    async def main() -> None:
        async with lc:
            raise KeyError("boom")

    with pytest.raises(KeyError):
        asyncio.run(main())
    assert stopped == ["db"]
    assert lc.exit_code == 1
    assert lc.stop_reason == "error: KeyError: 'boom'"


def test_sync_service_blocking_in_the_main_thread() -> None:
    # Threaded code: sync components and a sync main, one blocking call.
    served: list[int] = []
    lc = warden.Lifecycle(handle_signals=False)
    pool: list[threading.Thread] = []
    done = threading.Event()

    def start_workers() -> None:
        pool.append(threading.Thread(target=done.wait, name="worker"))
        pool[0].start()

    def stop_workers() -> None:
        done.set()
        pool[0].join()

    lc.add("workers", start=start_workers, stop=stop_workers)

    def main() -> int:
        served.append(threading.current_thread() is not threading.main_thread())
        return 3

    assert lc.run(main) == 3
    assert served == [True]
    assert lc.leaks == []


def test_sys_exit_in_main_is_its_exit_code_after_a_clean_stop() -> None:
    stopped: list[str] = []
    lc = warden.Lifecycle(handle_signals=False)
    lc.add("db", stop=lambda: stopped.append("db"))

    def main() -> None:
        raise SystemExit(4)

    assert lc.run(main) == 4
    assert stopped == ["db"]


def test_a_stop_requested_with_an_exit_code_returns_it() -> None:
    """A stop that is a failure (the memory sentinel's at critical) is no exit 0."""
    lc = warden.Lifecycle(handle_signals=False)

    async def main() -> None:
        lc.request_stop("memory critical", exit_code=1)
        lc.request_stop("later", exit_code=5)  # a no-op once stopping
        await asyncio.Event().wait()

    assert lc.run(main) == 1


def test_main_that_raises_exits_1() -> None:
    lc = warden.Lifecycle(handle_signals=False)

    async def main() -> None:
        raise ValueError("bad request")

    assert lc.run(main) == 1
    failed = [e for e in lc.timeline if e.kind == "main"]
    assert failed[0].outcome == "failed"
    assert failed[0].detail == "ValueError: bad request"


def test_previous_signal_handlers_are_restored() -> None:
    seen: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    old = {s: signal.signal(s, previous) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        lc = warden.Lifecycle()
        lc.on_signal(signal.SIGUSR2, lambda s: None)

        async def main() -> None:
            assert signal.getsignal(signal.SIGTERM) is not previous
            assert signal.getsignal(signal.SIGUSR2) is not signal.SIG_DFL

        assert lc.run(main) == 0
        assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.getsignal(signal.SIGHUP) is previous
        assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def test_signal_handling_off_the_main_thread_is_a_clear_error() -> None:
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            warden.Lifecycle().run()
        except warden.SignalHandlerError as exc:
            errors.append(exc)

    fds_before = len(os.listdir("/proc/self/fd"))
    thread = threading.Thread(target=in_thread, name="worker-7")
    thread.start()
    thread.join(10)
    assert len(os.listdir("/proc/self/fd")) == fds_before  # the guard's pipe was closed
    assert "not from thread 'worker-7'" in str(errors[0])
    assert "handle_signals=False" in str(errors[0])


def test_off_the_main_thread_without_signals_works() -> None:
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(warden.Lifecycle(handle_signals=False).run(lambda: 5))
    )
    thread.start()
    thread.join(10)
    assert codes == [5]


def test_timeline_records_every_transition_with_monotonic_order() -> None:
    lc = warden.Lifecycle(handle_signals=False)
    lc.add("x", start=lambda: None, stop=lambda: None)
    lc.run(lambda: None)
    events = list(lc.timeline)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    states = [e.name for e in events if e.kind == "state"]
    assert states == ["starting", "ready", "draining", "stopping", "stopped"]


def test_a_failing_observer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    lc = warden.Lifecycle(handle_signals=False)
    seen: list[str] = []

    def bad(event: warden.Event) -> None:
        raise RuntimeError("observer bug")

    lc.timeline.subscribe(bad)
    lc.timeline.subscribe(lambda e: seen.append(e.kind))
    lc.run(lambda: None)
    assert "state" in seen
    assert "timeline observer" in caplog.text
