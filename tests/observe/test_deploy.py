"""The recipes in deploy/: parsed, and their numbers checked to add up (SPEC §7, §10)."""

from __future__ import annotations

import configparser
import json
import shlex
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from tests._proc import ROOT
from warden.lifecycle import parse_duration
from warden.observe._health import DEFAULT_WEDGED_AFTER
from warden.supervisor._options import KILL_MARGIN

DEPLOY = ROOT / "deploy"
MARGIN = 2.0  # at least this between warden's deadline and the manager's SIGKILL


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` among warden's own options (before ``--``)."""
    own = argv[: argv.index("--")] if "--" in argv else argv
    return own[own.index(name) + 1] if name in own else None


def test_systemd_unit_numbers() -> None:
    service = unit(DEPLOY / "systemd" / "app.service")["Service"]
    assert service["Type"] == "notify"
    assert service["KillMode"] == "mixed"
    argv = shlex.split(service["ExecStart"])
    assert argv[:2] == ["/usr/local/bin/warden", "run"]
    stop_timeout = parse_duration(option(argv, "--stop-timeout") or "10s", what="--stop-timeout")
    deadline = stop_timeout + KILL_MARGIN
    assert parse_duration(service["TimeoutStopSec"], what="TimeoutStopSec") >= deadline + MARGIN
    # warden pings at half of WatchdogSec from its loop: the interval must be well above a
    # loop's worst stall and below the stop deadline's order of magnitude.
    assert parse_duration(service["WatchdogSec"], what="WatchdogSec") >= 2 * DEFAULT_WEDGED_AFTER
    health = option(argv, "--health")
    assert health is not None and health.startswith("127.0.0.1:")  # loopback on a host


def test_systemd_socket_unit_activates_the_service() -> None:
    socket_unit = unit(DEPLOY / "systemd" / "app.socket")["Socket"]
    service_unit = unit(DEPLOY / "systemd" / "app.service")["Unit"]
    assert socket_unit["Service"] == "app.service"
    assert "ListenStream" in socket_unit
    assert "app.socket" in service_unit["Requires"]


def _manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "deployment.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    return deployment, pod


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def recipe() -> dict[str, float]:
    """The termination numbers of the Kubernetes recipe, in seconds."""
    _, pod = _manifest()
    spec = pod["spec"]
    (container,) = spec["containers"]
    env = _env(container)
    args = container["args"]
    ready = container["readinessProbe"]
    return {
        "grace": float(spec["terminationGracePeriodSeconds"]),
        "pre_stop": float(container["lifecycle"]["preStop"]["sleep"]["seconds"]),
        "propagation": float(pod["metadata"]["annotations"]["warden.dev/propagation-seconds"]),
        "drain": parse_duration(args[args.index("--drain-delay") + 1], what="--drain-delay"),
        "program_deadline": parse_duration(env["WARDEN_SHUTDOWN_TIMEOUT"], what="deadline"),
        "stop_timeout": parse_duration(env["WARDEN_STOP_TIMEOUT"], what="stop timeout"),
        "readiness_period": float(ready["periodSeconds"]),
        "readiness_failures": float(ready["failureThreshold"]),
    }


def test_kubernetes_termination_numbers_add_up() -> None:
    n = recipe()
    warden_deadline = n["stop_timeout"] + KILL_MARGIN
    # The kubelet's grace period starts before preStop and covers warden's whole deadline.
    assert n["grace"] >= n["pre_stop"] + warden_deadline + MARGIN
    # The endpoint is gone from every proxy before SIGTERM.
    assert n["pre_stop"] > n["propagation"]
    # The drain fits in the program's deadline, which fits in warden's stop timeout.
    assert n["drain"] < n["program_deadline"] < n["stop_timeout"]
    # A readiness-following load balancer sees /readyz fail within the drain.
    assert n["readiness_period"] * n["readiness_failures"] <= n["drain"]


def test_kubernetes_probes_limits_and_health_address() -> None:
    deployment, pod = _manifest()
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    live = container["livenessProbe"]
    assert live["httpGet"]["path"] == "/livez"
    assert live["timeoutSeconds"] > DEFAULT_WEDGED_AFTER  # /livez may take that long to say 503
    resources = container["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def _containerfile() -> dict[str, str]:
    lines = (DEPLOY / "container" / "Containerfile").read_text().replace("\\\n", " ").splitlines()
    found: dict[str, str] = {}
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found[word] = (found.get(word, "") + " " + rest).strip()
    return found


def test_container_runs_warden_as_pid_1_in_exec_form() -> None:
    instructions = _containerfile()
    entrypoint = json.loads(instructions["ENTRYPOINT"])  # exec form is a JSON array
    assert entrypoint[:2] == ["warden", "run"]
    assert entrypoint[-1] == "--"
    assert option(entrypoint, "--health") == "0.0.0.0:9000"  # probed on the pod's IP
    json.loads(instructions["CMD"])
    env = dict(shlex.split(pair)[0].split("=", 1) for pair in shlex.split(instructions["ENV"]))
    _, pod = _manifest()
    (container,) = pod["spec"]["containers"]
    # The manifest states the image's numbers again: they must be the same.
    for name, value in _env(container).items():
        assert env.get(name) == value, name
    assert json.loads(instructions["CMD"])[-2:] == container["args"][-2:]
