"""Every check, on a deployment with its mistake and on the same one without: the right id, the
arithmetic in the message, the line it is about, and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doctor._files import (
    CONTAINERFILE,
    LIVENESS,
    MANIFEST,
    READINESS,
    UNIT,
    doctor,
    only,
    results,
    statuses,
    with_env,
)
from warden.doctor import Report, check_files


def test_the_correct_deployment_is_clean(tmp_path: Path) -> None:
    report = doctor(tmp_path, **{"web.yaml": MANIFEST, "web.service": UNIT})
    assert report.verdict == "clean", [(r.check, r.message) for r in report.findings]
    assert report.exit_code == 0
    assert set(statuses(report)) >= {
        "signal-path",
        "grace-budget",
        "stop-budget",
        "kill-mode",
        "server-timeout",
        "probes-identical",
        "liveness-start",
        "readiness-drain",
        "memory-limit",
        "gate-blind",
    }


# -- grace-budget ---------------------------------------------------------------------------


def test_grace_budget_counts_the_default_grace_period(tmp_path: Path) -> None:
    text = MANIFEST.replace("      terminationGracePeriodSeconds: 40\n", "")
    found = only(doctor(tmp_path, **{"web.yaml": text}), "grace-budget")
    assert found.status == "error"
    assert found.message.startswith(
        "preStop 5 s + warden's deadline 25 s (--stop-timeout 20s + 5 s) + margin 2 s = 32 s > "
        "terminationGracePeriodSeconds 30 s (the default)"
    )
    assert found.fix == "raise terminationGracePeriodSeconds to 32, or lower --stop-timeout to 18s"
    # No line says the grace period: the line of the command, whose numbers do not fit.
    assert found.where.file.endswith("web.yaml") and found.where.line == 13


def test_grace_budget_reads_the_stop_timeout_from_the_environment(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--stop-timeout", "20s", ', "").replace(
        "          image: web:1\n",
        "          image: web:1\n          env: [{name: WARDEN_STOP_TIMEOUT, value: 40s}]\n",
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "grace-budget")
    assert found.status == "error"
    assert "warden's deadline 45 s (WARDEN_STOP_TIMEOUT=40s + 5 s)" in found.message
    assert found.where.line == 10  # terminationGracePeriodSeconds


def test_grace_budget_counts_an_exec_sleep_pre_stop(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        "lifecycle: {preStop: {sleep: {seconds: 5}}}",
        'lifecycle: {preStop: {exec: {command: ["sleep", "20"]}}}',
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "grace-budget")
    assert found.status == "error"
    assert found.message.startswith("preStop 20 s + warden's deadline 25 s")
    assert "= 47 s > terminationGracePeriodSeconds 40 s" in found.message


def test_grace_budget_without_a_pre_stop_reads_right(tmp_path: Path) -> None:
    text = MANIFEST.replace("          lifecycle: {preStop: {sleep: {seconds: 5}}}\n", "")
    found = only(doctor(tmp_path, **{"web.yaml": text}), "grace-budget")
    assert found.message == (
        "no preStop (0 s) + warden's deadline 25 s (--stop-timeout 20s + 5 s) + margin 2 s = "
        "27 s <= terminationGracePeriodSeconds 40 s"
    )


def test_grace_budget_fits(tmp_path: Path) -> None:
    found = only(doctor(tmp_path, **{"web.yaml": MANIFEST}), "grace-budget")
    assert found.status == "ok"
    assert found.message.endswith("= 32 s <= terminationGracePeriodSeconds 40 s")


# -- stop-budget ------------------------------------------------------------------------------


def test_stop_budget_too_short(tmp_path: Path) -> None:
    found = only(
        doctor(
            tmp_path, **{"web.service": UNIT.replace("TimeoutStopSec=30s", "TimeoutStopSec=20")}
        ),
        "stop-budget",
    )
    assert found.status == "error"
    assert found.message.startswith(
        "warden's deadline 25 s (--stop-timeout 20s + 5 s) + margin 2 s = 27 s > "
        "TimeoutStopSec 20 s: systemd's SIGKILL"
    )
    assert found.fix == "set TimeoutStopSec=27s, or lower --stop-timeout to 13s"
    assert found.where.line == 8


def test_stop_budget_counts_systemds_default(tmp_path: Path) -> None:
    unit = UNIT.replace("TimeoutStopSec=30s\n", "").replace("20s", "90s")
    found = only(doctor(tmp_path, **{"web.service": unit}), "stop-budget")
    assert found.status == "error"
    assert "= 97 s > TimeoutStopSec 90 s (the default)" in found.message
    ok = only(
        doctor(tmp_path / "ok", **{"web.service": UNIT.replace("TimeoutStopSec=30s\n", "")}),
        "stop-budget",
    )
    assert ok.status == "ok" and ok.message.endswith("<= TimeoutStopSec 90 s (the default)")


def test_stop_budget_reads_execstart_variables_and_time_spans(tmp_path: Path) -> None:
    unit = UNIT.replace(
        "ExecStart=/usr/local/bin/warden run --stop-timeout 20s --",
        'Environment="OPTS=--stop-timeout 1m"\nExecStart=/usr/local/bin/warden run $OPTS --',
    ).replace("TimeoutStopSec=30s", "TimeoutStopSec=1min 10s")
    found = only(doctor(tmp_path, **{"web.service": unit}), "stop-budget")
    assert found.status == "ok"
    assert found.message == (
        "warden's deadline 65 s (--stop-timeout 1m + 5 s) + margin 2 s = 67 s <= "
        "TimeoutStopSec 70 s"
    )


def test_a_drop_in_directory_applies_to_its_unit(tmp_path: Path) -> None:
    """``app.service.d/*.conf`` is read after the unit, in the order of the names: the last
    TimeoutStopSec= wins, and the finding points at the drop-in's line."""
    files = {
        "web.service": UNIT,
        "web.service.d__20-later.conf": "[Service]\nTimeoutStopSec=10s\n",
        "web.service.d__10-first.conf": "# first\n[Service]\nTimeoutStopSec=5min\n",
    }
    report = doctor(tmp_path, **files)
    found = only(report, "stop-budget")
    assert found.status == "error"
    assert "= 27 s > TimeoutStopSec 10 s: systemd's SIGKILL" in found.message
    assert (Path(found.where.file).name, found.where.line) == ("20-later.conf", 2)
    assert found.where.subject == "web.service"
    assert report.notes == ()  # no drop-in taken for a unit of its own


def test_a_type_wide_drop_in_applies_to_every_service(tmp_path: Path) -> None:
    files = {"web.service": UNIT, "service.d__kill.conf": "[Service]\nKillMode=process\n"}
    assert only(doctor(tmp_path, **files), "kill-mode").status == "error"


def test_a_drop_in_given_alone_is_not_a_unit(tmp_path: Path) -> None:
    dropin = tmp_path / "web.service.d" / "10-timeout.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\nTimeoutStopSec=10s\n")
    report = check_files([str(dropin)])
    assert report.results == ()  # not a unit without ExecStart= and a default KillMode
    assert report.notes == (
        (
            str(dropin),
            "a drop-in of web.service, which was not given: give the unit too (its "
            "directory, or both files); not checked",
        ),
    )
    loose = tmp_path / "override.conf"
    loose.write_text("[Service]\nKillMode=process\n")
    assert check_files([str(loose)]).results == ()
    # With the unit, it applies.
    (tmp_path / "web.service").write_text(UNIT)
    both = check_files([str(tmp_path / "web.service"), str(dropin)])
    assert only(both, "stop-budget").status == "error"


@pytest.mark.parametrize(
    ("lines", "limit", "status"),
    [
        ("TimeoutStopSec=1min 30s\nTimeoutSec=5", "TimeoutSec 5 s", "error"),  # the later wins
        ("TimeoutSec=5\nTimeoutStopSec=1min 30s", "TimeoutStopSec 90 s", "ok"),
        ("TimeoutSec=0", "TimeoutSec disables the timeout", "ok"),  # 0: no timeout at all
        ("TimeoutStopSec=5\nTimeoutStopSec=", "TimeoutStopSec 5 s", "error"),  # empty: ignored
    ],
)
def test_timeout_sec_sets_the_stop_timeout_too(
    tmp_path: Path, lines: str, limit: str, status: str
) -> None:
    unit = UNIT.replace("TimeoutStopSec=30s", lines)
    found = only(doctor(tmp_path, **{"web.service": unit}), "stop-budget")
    assert found.status == status
    assert limit in found.message


# -- signal-path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "status", "words"),
    [
        ('["sh", "-c", "warden run -- app"]', "error", "sh -c 'warden run -- app' without exec"),
        ('["sh", "-c", "cd /srv; warden run -- app"]', "error", "without exec"),
        ('["bash", "-c", "warden run -- app"]', "warning", "bash execs a lone command"),
        ('["sh", "-c", "set -e; exec warden run -- app"]', "ok", "sh -c execs warden"),
        ('["tini", "--", "warden", "run", "--", "app"]', "ok", "started directly"),
    ],
)
def test_signal_path_in_a_manifest(tmp_path: Path, command: str, status: str, words: str) -> None:
    text = MANIFEST.replace(
        MANIFEST[MANIFEST.index("          command:") : MANIFEST.index("          args:")],
        f"          command: {command}\n",
    )
    text = text.replace(
        '          args: ["gunicorn", "--graceful-timeout", "15", "--keep-alive", "75", '
        '"app:wsgi"]\n',
        "",
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "signal-path")
    assert found.status == status
    assert words in found.message
    assert found.where.line == 14


def test_signal_path_in_a_containerfile(tmp_path: Path) -> None:
    shell = CONTAINERFILE.replace(
        'ENTRYPOINT ["warden", "run", "--"]', "ENTRYPOINT warden run -- python -m web"
    )
    found = only(doctor(tmp_path, Containerfile=shell), "signal-path")
    assert found.status == "error"
    assert found.message.startswith("shell form: /bin/sh -c 'warden run -- python -m web' is PID 1")
    assert found.where.line == 3
    assert "exec form" in found.fix
    execs = shell.replace("ENTRYPOINT warden", "ENTRYPOINT exec warden")
    assert only(doctor(tmp_path / "b", Dockerfile=execs), "signal-path").status == "warning"
    assert only(doctor(tmp_path / "c", Containerfile=CONTAINERFILE), "signal-path").status == "ok"


@pytest.mark.parametrize(
    ("shell", "status", "words"),
    [
        # bash execs a lone simple command itself: SIGTERM reaches warden, CMD is still ignored
        ('["/bin/bash", "-c"]', "warning", "shell form run by bash -c, which execs"),
        ('["/bin/bash", "-o", "pipefail", "-c"]', "warning", "shell form run by bash -c, which"),
        ('["/bin/dash", "-c"]', "error", "shell form: /bin/dash -c 'warden run"),
    ],
)
def test_a_shell_instruction_changes_the_shell_form_rule(
    tmp_path: Path, shell: str, status: str, words: str
) -> None:
    text = CONTAINERFILE.replace(
        'ENTRYPOINT ["warden", "run", "--"]',
        f"SHELL {shell}\nENTRYPOINT warden run -- python -m web",
    )
    found = only(doctor(tmp_path, Containerfile=text), "signal-path")
    assert (found.status, found.where.line) == (status, 4)
    assert words in found.message
    grace = doctor(tmp_path / "b", Containerfile=text.replace("warden run", "warden run --x"))
    assert only(grace, "warden-options").status == "error"  # warden is found behind the shell


def test_signal_path_in_execstart(tmp_path: Path) -> None:
    unit = UNIT.replace(
        "ExecStart=/usr/local/bin/warden run --stop-timeout 20s -- /usr/local/bin/web",
        "ExecStart=/bin/sh -c '. /etc/web.env; /usr/local/bin/warden run -- web'",
    )
    found = only(doctor(tmp_path, **{"web.service": unit}), "signal-path")
    assert found.status == "error" and "without exec" in found.message


# -- kill-mode --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status"), [("process", "error"), ("none", "error"), ("mixed", "ok")]
)
def test_kill_mode(tmp_path: Path, mode: str, status: str) -> None:
    found = only(
        doctor(tmp_path, **{"web.service": UNIT.replace("KillMode=mixed", f"KillMode={mode}")}),
        "kill-mode",
    )
    assert found.status == status
    assert found.message.startswith(f"KillMode={mode}:")
    assert found.where.line == 9


def test_kill_mode_default_is_fine(tmp_path: Path) -> None:
    found = only(
        doctor(tmp_path, **{"web.service": UNIT.replace("KillMode=mixed\n", "")}), "kill-mode"
    )
    assert found.status == "ok" and "KillMode=control-group (the default)" in found.message


# -- server-timeout ---------------------------------------------------------------------------


def test_server_timeout_gunicorn_default_against_warden_default(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--stop-timeout", "20s", ', "").replace(
        '"--graceful-timeout", "15", ', ""
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "server-timeout")
    assert found.status == "error"
    assert found.message.startswith(
        "gunicorn --graceful-timeout 30 s (the default) >= --stop-timeout 10s (the default): "
        "warden's SIGKILL at 10 s cuts what gunicorn meant to finish"
    )
    assert "--graceful-timeout to 8" in found.fix


def test_server_timeout_uvicorn_waits_for_ever(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        '["gunicorn", "--graceful-timeout", "15", "--keep-alive", "75", "app:wsgi"]',
        '["python", "-m", "uvicorn", "app:app"]',
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "server-timeout")
    assert found.status == "error"
    assert (
        "uvicorn --timeout-graceful-shutdown: none, it waits for ever (the default): "
        "warden's SIGKILL" in found.message
    )
    given = text.replace('"app:app"]', '"app:app", "--timeout-graceful-shutdown=15"]')
    assert only(doctor(tmp_path / "b", **{"web.yaml": given}), "server-timeout").status == "ok"


def test_server_timeout_reads_gunicorn_cmd_args_and_the_lifecycle_deadline(tmp_path: Path) -> None:
    text = with_env(
        MANIFEST.replace('"--graceful-timeout", "15", ', ""),
        "{name: GUNICORN_CMD_ARGS, value: '--graceful-timeout 25'}",
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "server-timeout")
    assert (
        found.status == "error"
        and "gunicorn --graceful-timeout 25 s >= --stop-timeout 20s" in found.message
    )
    lifecycle = MANIFEST.replace(
        '["gunicorn", "--graceful-timeout", "15", "--keep-alive", "75", "app:wsgi"]',
        '["python", "-m", "web"]',
    ).replace(
        "          image: web:1\n",
        "          image: web:1\n          env: [{name: WARDEN_SHUTDOWN_TIMEOUT, value: '25'}]\n",
    )
    both = results(doctor(tmp_path / "b", **{"web.yaml": lifecycle}), "server-timeout")
    assert [r.status for r in both] == ["error", "ok"]  # the deadline; the drain within it
    assert both[0].message.startswith(
        "WARDEN_SHUTDOWN_TIMEOUT (the program's deadline) 25 s >= --stop-timeout 20s"
    )


# -- probes-identical -------------------------------------------------------------------------


def test_liveness_on_readyz(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        "livenessProbe: {httpGet: {path: /livez", "livenessProbe: {httpGet: {path: /readyz"
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "probes-identical")
    assert found.status == "error" and "asks /readyz" in found.message
    assert found.where.line == 19


def test_liveness_identical_to_readiness(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        READINESS,
        "readinessProbe: {httpGet: {path: /healthz, port: 8000}, periodSeconds: 10}",
    ).replace(
        LIVENESS,
        "livenessProbe: {httpGet: {path: /healthz, port: 8000}}",
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "probes-identical")
    assert found.status == "error"
    assert (
        "liveness and readiness both ask httpGet /healthz on port 8000, and liveness fails as soon "
        "as readiness (liveness after periodSeconds 10 (default) x failureThreshold 3 (default) = "
        "30 s; readiness after periodSeconds 10 x failureThreshold 3 (default) = 30 s): a busy "
        "pod is restarted"
    ) in found.message
    slower = text.replace(
        "livenessProbe: {httpGet: {path: /healthz, port: 8000}}",
        "livenessProbe: {httpGet: {path: /healthz, port: 8000}, failureThreshold: 6}",
    )
    assert (
        only(doctor(tmp_path / "b", **{"web.yaml": slower}), "probes-identical").status == "warning"
    )


# -- liveness-start ---------------------------------------------------------------------------


def test_liveness_start_kills_a_slow_start(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        LIVENESS,
        "livenessProbe: {httpGet: {path: /ping, port: 8000}, periodSeconds: 5, "
        "failureThreshold: 2, initialDelaySeconds: 5}",
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "liveness-start")
    assert found.status == "error"
    assert found.message.startswith(
        "no startupProbe, and initialDelaySeconds 5 + periodSeconds 5 x failureThreshold 2 = 15 s "
        "< --ready-timeout 30s (the default): a start slower than 15 s is killed"
    )
    started = text.replace(
        "          lifecycle:",
        "          startupProbe: {httpGet: {path: /ping, port: 8000}, failureThreshold: 30}\n"
        "          lifecycle:",
    )
    assert only(doctor(tmp_path / "b", **{"web.yaml": started}), "liveness-start").status == "ok"


def test_liveness_on_wardens_livez_is_exempt(tmp_path: Path) -> None:
    found = only(doctor(tmp_path, **{"web.yaml": MANIFEST}), "liveness-start")
    assert found.status == "ok" and "warden's /livez" in found.message


# -- readiness-drain --------------------------------------------------------------------------


def test_readiness_without_pre_stop_or_drain(tmp_path: Path) -> None:
    text = MANIFEST.replace("          lifecycle: {preStop: {sleep: {seconds: 5}}}\n", "").replace(
        '      annotations: {warden.dev/drain-seconds: "5"}\n', ""
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "readiness-drain")
    assert found.status == "error"
    assert found.message.startswith(
        "no preStop, and readiness needs periodSeconds 1 x failureThreshold 3 = 3 s to fail"
    )
    assert found.where.line == 17


def test_readiness_longer_than_the_drain(tmp_path: Path) -> None:
    text = MANIFEST.replace('warden.dev/drain-seconds: "5"', 'warden.dev/drain-seconds: "2"')
    found = only(doctor(tmp_path, **{"web.yaml": text}), "readiness-drain")
    assert found.status == "error"
    assert "longer than the drain (warden.dev/drain-seconds) 2 s" in found.message


def test_pre_stop_shorter_than_the_propagation_delay(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        'annotations: {warden.dev/drain-seconds: "5"}',
        'annotations: {warden.dev/propagation-seconds: "12"}',
    )
    found = results(doctor(tmp_path, **{"web.yaml": text}), "readiness-drain")
    assert [r.status for r in found] == ["ok", "error"]
    assert found[1].message.startswith(
        "preStop 5 s = 5 s <= the propagation delay (warden.dev/propagation-seconds) 12 s"
    )


# -- keepalive-lb -----------------------------------------------------------------------------

SERVICE = """\
---
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout: "60"
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8000}]
"""


def test_keepalive_below_the_balancers_idle_timeout(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--keep-alive", "75", ', "") + SERVICE
    found = only(doctor(tmp_path, **{"web.yaml": text}), "keepalive-lb")
    assert found.status == "error"
    assert found.message.startswith(
        "gunicorn --keep-alive 2 s (the default) <= Service/web's idle timeout 60 s "
        "(service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout)"
    )
    assert (
        only(doctor(tmp_path / "b", **{"web.yaml": MANIFEST + SERVICE}), "keepalive-lb").status
        == "ok"
    )


def test_keepalive_through_an_alb_ingress(tmp_path: Path) -> None:
    ingress = """\
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    alb.ingress.kubernetes.io/load-balancer-attributes: idle_timeout.timeout_seconds=120
spec:
  rules:
    - http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""
    found = only(doctor(tmp_path, **{"web.yaml": MANIFEST + ingress}), "keepalive-lb")
    assert found.status == "error" and "Ingress/web's idle timeout 120 s" in found.message


# -- memory-limit -----------------------------------------------------------------------------


def test_memory_limit_in_kubernetes_units(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        '"--health", "0.0.0.0:9000", "--"]',
        '"--health", "0.0.0.0:9000", "--memory-limit", "512M", "--"]',
    ).replace(
        "resources: {requests: {memory: 512Mi}, limits: {memory: 512Mi}}",
        "resources: {requests: {memory: 512M}, limits: {memory: 512M}}",
    )
    found = [
        r
        for r in results(doctor(tmp_path, **{"web.yaml": text}), "memory-limit")
        if r.status != "ok"
    ]
    assert len(found) == 1 and found[0].status == "error"
    assert found[0].message.startswith(
        "--memory-limit 512M (536,870,912 bytes) >= limits.memory 512M (512,000,000 bytes)"
    )


def test_memory_request_below_the_limit(tmp_path: Path) -> None:
    text = MANIFEST.replace("requests: {memory: 512Mi}", "requests: {memory: 256Mi}")
    found = only(doctor(tmp_path, **{"web.yaml": text}), "memory-limit")
    assert found.status == "warning"
    assert found.message.startswith("requests.memory 256Mi < limits.memory 512Mi (Burstable)")
    assert report_exit(tmp_path / "b", text) == 0  # a warning only


def report_exit(tmp_path: Path, text: str) -> int:
    return doctor(tmp_path, **{"web.yaml": text}).exit_code


def test_the_sentinel_without_a_limit(tmp_path: Path) -> None:
    text = (
        MANIFEST.replace('"--", ]', "")
        .replace(
            '"--health", "0.0.0.0:9000", "--"]',
            '"--health", "0.0.0.0:9000", "--recycle-at", "300M", "--"]',
        )
        .replace("          resources: {requests: {memory: 512Mi}, limits: {memory: 512Mi}}\n", "")
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "memory-limit")
    assert found.status == "warning" and "with no memory limit" in found.message


def test_memory_max_of_a_unit(tmp_path: Path) -> None:
    unit = UNIT.replace("--stop-timeout 20s", "--stop-timeout 20s --memory-limit 1G").replace(
        "KillMode=mixed", "KillMode=mixed\nMemoryMax=1G"
    )
    found = only(doctor(tmp_path, **{"web.service": unit}), "memory-limit")
    assert found.status == "error" and "MemoryMax=1G" in found.message


# -- configmap-subpath ------------------------------------------------------------------------

MOUNTED = """\
          volumeMounts:
            - {name: config, mountPath: /etc/web/web.conf, subPath: web.conf}
      volumes:
        - {name: config, configMap: {name: web}}
"""


def test_a_reloaded_file_mounted_with_sub_path(tmp_path: Path) -> None:
    text = (
        MANIFEST.replace(
            '"--health", "0.0.0.0:9000", "--"]',
            '"--health", "0.0.0.0:9000", "--reload-on-change", "/etc/web/web.conf", "--"]',
        )
        + MOUNTED
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "configmap-subpath")
    assert found.status == "error"
    assert found.message.startswith(
        "--reload-on-change /etc/web/web.conf is mounted with subPath 'web.conf'"
    )
    assert found.where.line == 23
    whole = text.replace("mountPath: /etc/web/web.conf, subPath: web.conf", "mountPath: /etc/web")
    assert only(doctor(tmp_path / "b", **{"web.yaml": whole}), "configmap-subpath").status == "ok"


def test_a_config_path_in_the_environment(tmp_path: Path) -> None:
    text = with_env(MANIFEST, "{name: WEB_CONFIG, value: /etc/web/web.conf}") + MOUNTED
    found = only(doctor(tmp_path, **{"web.yaml": text}), "configmap-subpath")
    assert found.status == "warning" and found.message.startswith("WEB_CONFIG=/etc/web/web.conf")


# -- gate-blind -------------------------------------------------------------------------------

GATES = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: u
    image: app
    command: ["warden", "run", "--listen", "tcp://0.0.0.0:8000", "--ready",
              "http://127.0.0.1:8000/", "--", "uvicorn", "--fd", "3", "app:app"]
  - name: h
    image: app
    command: ["warden", "run", "--listen", "tcp://0.0.0.0:8001", "--ready",
              "http://127.0.0.1:8001/", "--", "hypercorn", "--bind", "fd://3", "app:app"]
  - name: g
    image: app
    command: ["warden", "run", "--listen", "tcp://0.0.0.0:8002", "--ready", "http://127.0.0.1:8002/",
              "--", "gunicorn", "app:wsgi"]
  - name: gu
    image: app
    command: ["warden", "run", "--listen", "tcp://0.0.0.0:8004", "--ready", "notify",
              "--upgrade-confirm-url", "http://127.0.0.1:8004/", "--", "gunicorn", "app:wsgi"]
"""


def _gates(report: Report) -> dict[str, tuple[str, str]]:
    return {
        r.where.subject.rpartition(" ")[2]: (r.status, r.message)
        for r in results(report, "gate-blind")
    }


def test_an_http_gate_on_a_held_port_sees_every_server(tmp_path: Path) -> None:
    """Upgrades steer warden's probes to the new release through the held port: the gate
    asks the new release whatever the server (it was an error for uvicorn --fd 3 and
    hypercorn fd://3), and --upgrade-confirm-url on it protects a notify gate too."""
    gates = _gates(doctor(tmp_path, **{"pod.yaml": GATES}))
    assert {name: status for name, (status, _) in gates.items()} == {
        "u": "ok",
        "h": "ok",
        "g": "ok",
        "gu": "ok",
    }
    assert gates["u"][1] == (
        "--ready http://127.0.0.1:8000/ on port 8000, which warden holds: warden's probe "
        "reaches the new release alone, in the gate, and in the 5 s window"
    )
    assert gates["gu"][1] == (
        "--ready notify: READY=1 comes from the new release; in the 5 s window its crash is "
        "seen and --upgrade-confirm-url http://127.0.0.1:8004/ asked of it alone"
    )


def test_gunicorn_gated_on_notify(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--ready", "http://127.0.0.1:8000/healthz"', '"--ready", "notify"')
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert found.status == "error"
    assert found.message.startswith(
        "--ready notify with gunicorn: gunicorn says READY=1 once it has bound its sockets, "
        "before any worker imported the app, so the gate passes a release that cannot serve; "
        "only its crash in the 5 s --upgrade-confirm window is seen"
    )
    hooked = text.replace(
        '["gunicorn", ', '["gunicorn", "-c", "python:warden.integrations.gunicorn", '
    )
    assert only(doctor(tmp_path / "b", **{"web.yaml": hooked}), "gate-blind").status == "ok"
    url = text.replace(
        '"--ready", "notify"',
        '"--ready", "notify", "--upgrade-confirm-url", "http://127.0.0.1:8000/healthz"',
    )
    assert only(doctor(tmp_path / "c", **{"web.yaml": url}), "gate-blind").status == "ok"
    # Without a window, not even its crash is seen.
    closed = text.replace('"--ready", "notify"', '"--ready", "notify", "--upgrade-confirm", "0"')
    found = only(doctor(tmp_path / "d", **{"web.yaml": closed}), "gate-blind")
    assert found.status == "error" and "not even its crash is seen" in found.message


def test_tcp_gate_on_a_held_socket(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--ready", "http://127.0.0.1:8000/healthz"', '"--ready", "tcp"')
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert (
        found.status == "error" and "--ready tcp connects to a socket warden holds" in found.message
    )
    forwarded = text.replace('"--ready", "tcp"', '"--ready", "tcp", "--on-hup", "forward"')
    assert results(doctor(tmp_path / "b", **{"web.yaml": forwarded}), "gate-blind") == []


def test_tcp_gate_on_a_socket_units_port(tmp_path: Path) -> None:
    unit = UNIT.replace(
        "Environment=WARDEN_READY=notify", "Environment=WARDEN_READY=tcp://127.0.0.1:8000"
    )
    socket = "[Socket]\nListenStream=8000\n"
    found = only(doctor(tmp_path, **{"web.service": unit, "web.socket": socket}), "gate-blind")
    assert found.status == "error"
    assert found.message.startswith(
        "WARDEN_READY=tcp://127.0.0.1:8000 connects to a socket warden holds"
    )


@pytest.mark.parametrize(
    ("listen", "ready", "why"),
    [
        # a port warden does not hold: the probe cannot be steered
        ("tcp://0.0.0.0:8000", "http://127.0.0.1:9000/health", "its port 9000 is not a TCP"),
        # only UNIX sockets held
        ("unix:/run/web.sock", "http://127.0.0.1:8000/healthz", "its port 8000 is not a TCP"),
    ],
)
def test_an_http_gate_that_cannot_be_steered(
    tmp_path: Path, listen: str, ready: str, why: str
) -> None:
    text = MANIFEST.replace('"tcp://0.0.0.0:8000"', f'"{listen}"').replace(
        '"http://127.0.0.1:8000/healthz"', f'"{ready}"'
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert found.status == "warning"
    assert found.message.startswith(f"--ready {ready} cannot reach the new release alone: {why}")
    assert "(warden warns at each upgrade)" in found.message


def test_a_socket_unit_without_reuse_port(tmp_path: Path) -> None:
    unit = UNIT.replace(
        "Environment=WARDEN_READY=notify", "Environment=WARDEN_READY=http://127.0.0.1:8000/"
    )
    socket = "[Socket]\nListenStream=0.0.0.0:8000\n"
    found = only(doctor(tmp_path, **{"web.service": unit, "web.socket": socket}), "gate-blind")
    assert found.status == "warning"
    assert "the sockets of web.socket have no SO_REUSEPORT (no ReusePort=yes)" in found.message
    assert found.fix == "set ReusePort=yes in the .socket unit"
    reused = socket + "ReusePort=yes\n"
    files = {"web.service": unit, "web.socket": reused}
    assert only(doctor(tmp_path / "b", **files), "gate-blind").status == "ok"


def test_a_confirm_url_that_cannot_be_steered(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        '"--ready", "http://127.0.0.1:8000/healthz"',
        '"--ready", "notify", "--upgrade-confirm-url", "http://127.0.0.1:9000/livez"',
    ).replace(
        '["gunicorn", "--graceful-timeout", "15", "--keep-alive", "75", "app:wsgi"]', '["./web"]'
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert found.status == "warning"
    assert found.message.startswith(
        "--upgrade-confirm-url http://127.0.0.1:9000/livez cannot reach the new release alone"
    )


def test_a_notify_gate_without_a_window(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        '"--ready", "http://127.0.0.1:8000/healthz"',
        '"--ready", "notify", "--upgrade-confirm", "0"',
    ).replace(
        '["gunicorn", "--graceful-timeout", "15", "--keep-alive", "75", "app:wsgi"]', '["./web"]'
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert found.status == "warning"
    assert found.message.startswith(
        "--upgrade-confirm 0 with --ready notify: no confirmation window, READY=1 is all an "
        "upgrade sees"
    )
    # And --upgrade-confirm-url with no window is refused by warden run itself.
    url = text.replace('"0"', '"0", "--upgrade-confirm-url", "http://127.0.0.1:8000/healthz"')
    found = only(doctor(tmp_path / "b", **{"web.yaml": url}), "warden-options")
    assert "checked in the --upgrade-confirm window, which is 0" in found.message


def test_an_exec_gate_that_asks_a_held_port(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        '"http://127.0.0.1:8000/healthz"', '"exec:curl -fs http://localhost:8000/healthz"'
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert found.status == "error"
    assert "connects to port 8000, which warden holds" in found.message
    own = text.replace("localhost:8000", "localhost:9000")  # the health port: not steered
    assert only(doctor(tmp_path / "b", **{"web.yaml": own}), "gate-blind").status == "ok"


def test_a_gate_from_a_configmap_is_not_checked(tmp_path: Path) -> None:
    ready = "{name: WARDEN_READY, valueFrom: {configMapKeyRef: {name: cfg, key: ready}}}"
    text = with_env(MANIFEST.replace('"--ready", "http://127.0.0.1:8000/healthz", ', ""), ready)
    found = only(doctor(tmp_path, **{"web.yaml": text}), "gate-blind")
    assert found.status == "warning"
    assert found.message.startswith("cannot check: WARDEN_READY comes from ConfigMap cfg")


# -- warden-options ---------------------------------------------------------------------------


def test_an_option_warden_run_would_refuse(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--stop-timeout", "20s"', '"--stop-timeout", "twenty"')
    found = only(doctor(tmp_path, **{"web.yaml": text}), "warden-options")
    assert found.status == "error"
    assert found.message == (
        "--stop-timeout twenty: --stop-timeout='twenty' is not a duration; write seconds like "
        "'25' or '1.5s', or use a unit: ms, s, m, h"
    )
    unknown = MANIFEST.replace(
        '"--stop-timeout", "20s"', '"--stop-timeout", "20s", "--no-such-flag"'
    )
    found = only(doctor(tmp_path / "b", **{"web.yaml": unknown}), "warden-options")
    assert (
        "unrecognized arguments: --no-such-flag" in found.message
        or "--no-such-flag" in found.message
    )
