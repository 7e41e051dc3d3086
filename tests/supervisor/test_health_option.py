"""``warden run --health``: /readyz, /livez and /metrics of the supervisor itself."""

from __future__ import annotations

import http.client
import os
import signal

from prometheus_client.parser import text_string_to_metric_families

from tests.supervisor._systemd_peers import free_port
from tests.supervisor.conftest import DEADLINE, Processes, wait_until
from tests.supervisor.test_upgrade import control


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_health_endpoints_of_warden_run(procs: Processes) -> None:
    port = free_port()
    script = procs.script("idle.py", "import time\nprint('ready', flush=True)\ntime.sleep(3600)\n")
    warden = procs.warden("--health", f"127.0.0.1:{port}", "--", script)
    warden.out.wait_for("^ready$")
    warden.err.wait_for(r'"event": "state", "state": "ready"')
    # Where it serves is said once, in the log.
    warden.err.wait_for(rf'"kind": "health.serving", "data": {{"url": "http://127.0.0.1:{port}"}}')
    assert get(port, "/livez")[0] == 200
    status, body = get(port, "/readyz?verbose")
    assert status == 200 and "program pid" in body
    status, text = get(port, "/metrics")  # prometheus_client loads now (ssl included)
    assert status == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples["warden_child_starts_total"] == 1  # the supervisor's own facts, counted
    warden.kill(signal.SIGTERM)
    assert warden.wait() == 128 + signal.SIGTERM  # the script dies of the forwarded SIGTERM


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# Sends a bad sd_notify datagram (a NUL in it), then leaves one orphan: a grandchild that
# outlives its parent and exits once the program lets it, so warden (the subreaper) reaps it.
_COUNTED = """
import os, socket
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.sendto(b"STATUS=bad\\0byte", os.environ["NOTIFY_SOCKET"])
sock.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
hold, release = os.pipe()
if os.fork() == 0:
    if os.fork() == 0:
        os.close(release)
        os.read(hold, 1)  # until the program closes its end
        os._exit(0)
    os._exit(0)
os.wait()
os.close(release)
print("released", flush=True)
import time; time.sleep(3600)
"""


def test_the_counters_warden_keeps_reach_metrics(procs: Processes) -> None:
    port = free_port()
    script = procs.script("counted.py", _COUNTED)
    warden = procs.warden("--health", f"127.0.0.1:{port}", "--ready", "notify", "--", script)
    warden.out.wait_for("^released$")
    wait_until(lambda: scrape(port)[("warden_orphans_reaped_total", ())] == 1, "the orphan counted")
    samples = scrape(port)
    assert samples[("warden_notify_drops_total", (("reason", "nul"),))] == 1
    assert samples[("warden_control_refusals_total", ())] == 0
    warden.kill(signal.SIGTERM)
    warden.wait()


def test_a_bad_health_address_is_one_line_and_nothing_starts(procs: Processes) -> None:
    warden = procs.warden("--health", "nowhere", "--", "true")
    assert warden.wait() == 2
    assert "--health='nowhere' is not HOST:PORT" in warden.err.text()


_RELEASE = """
import os, signal, socket, time
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
# Said before READY=1: once warden has it, the test may crash this run at once.
print(f"ready {os.getpid()}", flush=True)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(3600)
"""


def test_an_upgrade_and_a_crash_move_their_series(procs: Processes) -> None:
    port = free_port()
    script = procs.script("release.py", _RELEASE)
    warden = procs.warden(
        "--health", f"127.0.0.1:{port}", "--ready", "notify", "--upgrade-confirm", "0",
        "--restart", "on-failure", "--", script,
    )  # fmt: skip
    warden.err.wait_for(r'"event": "state", "state": "ready"')  # warden has its READY=1
    reply = control(procs.control, "upgrade")
    assert reply["ok"] is True, reply
    samples = scrape(port)
    assert samples[("warden_upgrades_total", (("result", "ok"),))] == 1
    assert samples[("warden_upgrades_total", (("result", "failed"),))] == 0
    assert samples[("warden_child_starts_total", ())] == 2
    upgrade = reply["upgrade"]
    assert isinstance(upgrade, dict)
    new_pid = upgrade["new_pid"]
    assert isinstance(new_pid, int)
    os.kill(new_pid, signal.SIGSEGV)  # a crash: the policy restarts it
    warden.out.wait_for(r"^ready \d+$", start=2)
    wait_until(
        lambda: scrape(port).get(("warden_child_restarts_total", ())) == 1, "the restart counted"
    )
    samples = scrape(port)
    assert samples[("warden_child_exits_total", (("reason", "killed"),))] == 1
    warden.kill(signal.SIGTERM)
    warden.wait()
