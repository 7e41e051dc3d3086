"""Deployments on disk for doctor's tests: a correct one, and the same with one mistake."""

from __future__ import annotations

from pathlib import Path

from warden.doctor import Report, Result, check_files

READINESS = (
    "readinessProbe: {httpGet: {path: /readyz, port: health}, periodSeconds: 1, "
    "failureThreshold: 3}"
)
LIVENESS = (
    "livenessProbe: {httpGet: {path: /livez, port: health}, periodSeconds: 10, failureThreshold: 3}"
)

#: A Deployment whose numbers add up; each test puts one mistake in it.
MANIFEST = (
    """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata:
      labels: {app: web}
      annotations: {warden.dev/drain-seconds: "5"}
    spec:
      terminationGracePeriodSeconds: 40
      containers:
        - name: web
          image: web:1
          command: ["warden", "run", "--stop-timeout", "20s", "--listen", "tcp://0.0.0.0:8000",
                    "--ready", "http://127.0.0.1:8000/healthz", "--health", "0.0.0.0:9000", "--"]
          args: ["gunicorn", "--graceful-timeout", "15", "--keep-alive", "75", "app:wsgi"]
          ports: [{name: health, containerPort: 9000}]
"""
    + "          "
    + READINESS
    + "\n"
    + "          "
    + LIVENESS
    + "\n"
    + """          lifecycle: {preStop: {sleep: {seconds: 5}}}
          resources: {requests: {memory: 512Mi}, limits: {memory: 512Mi}}
"""
)

#: A service unit whose numbers add up.
UNIT = """\
[Unit]
Description=web

[Service]
Type=notify
Environment=WARDEN_READY=notify
ExecStart=/usr/local/bin/warden run --stop-timeout 20s -- /usr/local/bin/web
TimeoutStopSec=30s
KillMode=mixed
"""

CONTAINERFILE = """\
FROM python:3.12-slim
ENV WARDEN_STOP_TIMEOUT=20s
ENTRYPOINT ["warden", "run", "--"]
CMD ["python", "-m", "web"]
"""


def doctor(tmp_path: Path, **files: str) -> Report:
    """Write ``files`` (name -> text; ``__`` in a name is a ``/``) and check them all."""
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return check_files([str(tmp_path)])


def results(report: Report, check: str) -> list[Result]:
    return [result for result in report.results if result.check == check]


def only(report: Report, check: str) -> Result:
    """The one result of ``check``."""
    found = results(report, check)
    assert len(found) == 1, [(r.status, r.message) for r in report.results]
    return found[0]


def statuses(report: Report) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for result in report.results:
        found.setdefault(result.check, set()).add(result.status)
    return found


def with_env(text: str, *variables: str) -> str:
    """``text`` (a manifest like :data:`MANIFEST`) with the container's ``env`` entries."""
    entries = ", ".join(variables)
    return text.replace(
        "          image: web:1\n", f"          image: web:1\n          env: [{entries}]\n"
    )
