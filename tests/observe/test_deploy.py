"""The recipes in deploy/: ``warden doctor`` finds their numbers adding up (SPEC §7, §10).

The sums themselves (grace period, TimeoutStopSec, readiness within the drain, preStop over
the propagation delay, the program's deadline within warden's stop timeout, the exec form)
are doctor's checks; this test runs doctor on the recipes as a user would, and keeps only
what is a choice of these recipes rather than a rule (the health address, Guaranteed QoS,
the watchdog interval, the image and the manifest agreeing).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests._proc import ROOT
from warden.doctor import check_files
from warden.doctor._checks._probes import failing_after, field
from warden.doctor._deployment import Deployment
from warden.doctor._gather import gather
from warden.doctor._inputs import read_inputs
from warden.doctor._numbers import systemd_timespan
from warden.doctor._units import read_unit
from warden.observe._health import DEFAULT_WEDGED_AFTER

DEPLOY = ROOT / "deploy"


def deployments() -> dict[str, Deployment]:
    """The recipes' deployments as doctor reads them, by platform."""
    found, _ = gather(read_inputs([str(DEPLOY)]))
    return {d.platform: d for d in found}


def recipe() -> dict[str, float]:
    """The termination numbers of the Kubernetes recipe, in seconds, as doctor reads them
    (tests/observe/test_kubelet.py plays a termination with them)."""
    pod = deployments()["kubernetes"]
    assert pod.warden is not None and pod.server is not None and pod.server.graceful is not None
    assert pod.grace is not None and pod.pre_stop is not None
    assert pod.propagation is not None and pod.drain is not None
    ready = pod.probes["readinessProbe"]
    return {
        "grace": pod.grace.value,
        "pre_stop": pod.pre_stop.value,
        "propagation": pod.propagation.value,
        "drain": pod.drain.value,
        "program_deadline": pod.server.graceful.seconds,
        "stop_timeout": float(pod.warden["stop_timeout"].value),
        "readiness_period": field(ready, "periodSeconds")[0],
        "readiness_failures": field(ready, "failureThreshold")[0],
    }


def test_doctor_finds_the_recipes_clean() -> None:
    report = check_files([str(DEPLOY)])
    assert report.verdict == "clean", [r.message for r in report.findings]
    checked = {result.check for result in report.results}
    # Every sum of a stop the recipes depend on was done, not skipped.
    assert {
        "grace-budget",
        "stop-budget",
        "signal-path",
        "kill-mode",
        "server-timeout",
        "readiness-drain",
        "probes-identical",
        "memory-limit",
        "gate-blind",
    } <= checked
    assert report.notes == ()  # nothing left unchecked


def test_warden_doctor_on_the_recipes_exits_0_with_a_clean_verdict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warden", "doctor", "--json", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"verdict": "clean", "findings": []}


def test_the_recipes_choices() -> None:
    found = deployments()
    unit, pod, image = found["systemd"], found["kubernetes"], found["image"]
    assert unit.warden is not None and pod.warden is not None and image.warden is not None
    # loopback on a host; the pod's own address in a pod (the kubelet probes the pod's IP)
    assert str(unit.warden["health"].value).startswith("127.0.0.1:")
    assert image.warden["health"].value == "0.0.0.0:9000"
    # /livez may take wedged_after to say 503: the probe's timeout must be longer.
    live = pod.probes["livenessProbe"]
    assert live.get("httpGet", "path") is not None
    assert float(live.text("timeoutSeconds") or 1) > DEFAULT_WEDGED_AFTER
    assert failing_after(live)[0] > failing_after(pod.probes["readinessProbe"])[0]
    # Guaranteed QoS: the limit the sentinel reads is memory the node set aside.
    assert pod.memory_request is not None and pod.memory_limit is not None
    assert pod.memory_request.value == pod.memory_limit.value
    # The manifest states the image's numbers again: they must be the same.
    image_env = {name: var.value for name, var in image.env.items()}
    stated = {n: v for n, v in pod.env.items() if v.where.file.endswith("deployment.yaml")}
    assert stated, "the manifest states the stop's numbers"
    for name, var in stated.items():
        assert image_env.get(name) == var.value, name


def test_the_systemd_watchdog_interval() -> None:
    # warden pings at half of WatchdogSec from its loop: well above a loop's worst stall.
    path = DEPLOY / "systemd" / "app.service"
    watchdog = read_unit(str(path), path.read_text()).value("Service", "WatchdogSec")
    assert watchdog is not None
    assert systemd_timespan(watchdog.value) >= 2 * DEFAULT_WEDGED_AFTER
