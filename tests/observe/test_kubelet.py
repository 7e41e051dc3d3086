"""A rolling stop played as the kubelet plays it, under real load through a load balancer
that follows the endpoints: the recipe's numbers (deploy/kubernetes/deployment.yaml, time
scaled by 1/10) lose no request; a naive configuration (no preStop, no drain) loses some."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests._proc import Proc
from tests.conftest import Spawn
from tests.observe._kubelet import Cluster, Pod, Tally, Timing, load
from tests.observe.test_deploy import recipe

SCALE = 0.1  # every duration of the recipe, so the scenario takes seconds, not minutes
POD = str(Path(__file__).with_name("apps") / "pod.py")
WARDEN = str(Path(sys.executable).with_name("warden"))


async def start_pod(
    spawn: Spawn, tmp: Path, name: str, *, drain: float, deadline: float, stop_timeout: float
) -> Pod:
    """``warden run -- python pod.py``: warden as the container's PID 1, the server under it."""
    proc: Proc = spawn(
        [
            WARDEN,
            "run",
            "--stop-timeout",
            f"{stop_timeout}s",
            "--control",
            str(tmp / f"{name}.control"),
            "--",
            sys.executable,
            POD,
            "--drain-delay",
            str(drain),
        ],
        env={"WARDEN_SHUTDOWN_TIMEOUT": str(deadline)},
    )
    listening = await asyncio.to_thread(proc.wait_line, r"listening on http://([\d.]+):(\d+)")
    health = await asyncio.to_thread(proc.wait_line, r"health (\S+)")
    return Pod(name, proc, (listening.group(1), int(listening.group(2))), health.group(1))


async def rolling_stop(
    spawn: Spawn, tmp: Path, timing: Timing, *, drain: float, deadline: float, stop: float
) -> tuple[Tally, int, bool, Cluster]:
    """Two pods behind the load balancer; the first is deleted under load."""
    cluster = Cluster(timing)
    await cluster.lb.start()
    try:
        pods = [
            await start_pod(spawn, tmp, n, drain=drain, deadline=deadline, stop_timeout=stop)
            for n in ("a", "b")
        ]
        for pod in pods:
            cluster.add(pod)
        async with asyncio.timeout(10):
            while len(cluster.lb.endpoints) < 2:  # both pods probed ready and propagated
                await asyncio.sleep(timing.readiness_period)
        tally, done = Tally(), asyncio.Event()
        traffic = asyncio.create_task(load(cluster.lb.port, tally, done))
        async with asyncio.timeout(5):
            while tally.ok < 200:  # steady load on both pods before the deletion
                await asyncio.sleep(0.01)
        code, killed = await cluster.delete(pods[0])
        served = tally.ok
        async with asyncio.timeout(5):
            while tally.ok < served + 200:  # the other pod keeps serving afterwards
                await asyncio.sleep(0.01)
        done.set()
        await traffic
        return tally, code, killed, cluster
    finally:
        await cluster.close()


async def test_the_recipes_numbers_lose_no_request(spawn: Spawn, tmp_path: Path) -> None:
    n = {name: value * SCALE for name, value in recipe().items()}
    timing = Timing(
        pre_stop=n["pre_stop"],
        propagation=n["propagation"],
        readiness_period=n["readiness_period"],
        readiness_failures=int(recipe()["readiness_failures"]),
        grace=n["grace"],
    )
    tally, code, killed, cluster = await rolling_stop(
        spawn,
        tmp_path,
        timing,
        drain=n["drain"],
        deadline=n["program_deadline"],
        stop=n["stop_timeout"],
    )
    assert tally.failed == 0, (tally.reasons, cluster.log)
    assert tally.ok >= 400
    print(f"recipe: {tally.ok} served, 0 failed")
    assert (code, killed) == (0, False)  # stopped by itself, within the grace period


async def test_a_naive_configuration_loses_requests(spawn: Spawn, tmp_path: Path) -> None:
    # No preStop and no drain: SIGTERM closes the listener while the load balancer still
    # routes to the pod for a propagation delay.
    real = recipe()
    timing = Timing(
        pre_stop=0.0,
        propagation=real["propagation"] * SCALE,
        readiness_period=real["readiness_period"] * SCALE,
        readiness_failures=int(real["readiness_failures"]),
        grace=30 * SCALE,  # Kubernetes' default grace period
    )
    tally, _code, killed, cluster = await rolling_stop(
        spawn, tmp_path, timing, drain=0.0, deadline=2.0, stop=2.5
    )
    assert tally.failed > 0, cluster.log
    print(f"naive: {tally.failed} failed of {tally.ok + tally.failed}: {tally.reasons}")
    assert not killed
