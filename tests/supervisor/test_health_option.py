"""``warden run --health``: /readyz, /livez and /metrics of the supervisor itself."""

from __future__ import annotations

import http.client
import signal

from prometheus_client.parser import text_string_to_metric_families

from tests.supervisor._systemd_peers import free_port
from tests.supervisor.conftest import DEADLINE, Processes


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


def test_a_bad_health_address_is_one_line_and_nothing_starts(procs: Processes) -> None:
    warden = procs.warden("--health", "nowhere", "--", "true")
    assert warden.wait() == 2
    assert "--health='nowhere' is not HOST:PORT" in warden.err.text()
