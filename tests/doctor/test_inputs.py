"""What doctor reads and how it answers: multi-document files, every workload kind, standard
input, the image behind a manifest, unreadable input (exit 2, one line), the text report
(verdict first) and the JSON one (its exact shape), and the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doctor._files import CONTAINERFILE, MANIFEST, UNIT, doctor, only, results
from warden.doctor import check_files, render_json, render_text


def _cli(
    *args: str, stdin: str | None = None, timeout: float = 50
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warden", "doctor", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: one}
spec:
  containers:
    - name: one
      image: one:1
      command: ["warden", "run", "--stop-timeout", "40s", "--", "one"]
"""

CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: 10
          containers:
            - name: job
              image: job:1
              command: ["warden", "run", "--", "job"]
"""


def test_multi_document_files_and_every_workload_kind(tmp_path: Path) -> None:
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"
    listed = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        "  - " + line + "\n" if i == 0 else "    " + line + "\n"
        for i, line in enumerate(POD.replace("name: one", "name: listed").splitlines())
    )
    text = "\n---\n".join([configmap, MANIFEST, POD, CRONJOB, listed]) + "\n---\n"
    report = doctor(tmp_path, **{"all.yaml": text})
    subjects = {r.where.subject for r in results(report, "grace-budget")}
    assert subjects == {
        "Deployment/web, container web",
        "Pod/one, container one",
        "Pod/listed, container listed",
        "CronJob/nightly, container job",
    }
    nightly = [r for r in results(report, "grace-budget") if r.where.subject.startswith("CronJob")]
    assert nightly[0].status == "error"
    assert "= 17 s > terminationGracePeriodSeconds 10 s" in nightly[0].message
    pod = [
        r for r in results(report, "grace-budget") if r.where.subject == "Pod/one, container one"
    ]
    assert "terminationGracePeriodSeconds 30 s (the default)" in pod[0].message


def test_standard_input(tmp_path: Path) -> None:
    done = _cli("--json", "-", stdin=POD)
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert found["verdict"] == "errors"
    assert [f["check"] for f in found["findings"]] == ["grace-budget"]
    assert found["findings"][0]["file"] == "<stdin>"
    assert found["findings"][0]["line"] == 8
    unit = _cli("-", stdin=UNIT.replace("KillMode=mixed", "KillMode=process"))
    assert unit.returncode == 1 and "✗ error   kill-mode (line 9)" in unit.stdout


def test_the_json_shape(tmp_path: Path) -> None:
    text = MANIFEST.replace("      terminationGracePeriodSeconds: 40\n", "").replace(
        "requests: {memory: 512Mi}", "requests: {memory: 256Mi}"
    )
    (tmp_path / "web.yaml").write_text(text)
    found = json.loads(render_json(check_files([str(tmp_path / "web.yaml")])))
    assert list(found) == ["verdict", "findings"]
    assert found["verdict"] == "errors"
    assert [(f["check"], f["severity"]) for f in found["findings"]] == [
        ("grace-budget", "error"),
        ("memory-limit", "warning"),
    ]
    for finding in found["findings"]:
        assert list(finding) == ["check", "severity", "file", "line", "message", "fix"]
        assert finding["file"] == str(tmp_path / "web.yaml")
        assert isinstance(finding["line"], int)
        assert finding["message"].startswith("Deployment/web, container web: ")
        assert finding["fix"]


def test_the_text_report_puts_the_verdict_first(tmp_path: Path) -> None:
    text = MANIFEST.replace("requests: {memory: 512Mi}", "requests: {memory: 256Mi}")
    report = doctor(tmp_path, **{"web.yaml": text})
    lines = render_text(report).splitlines()
    assert lines[0].startswith("warden doctor: ‼ warnings: 1 warning; ")
    assert lines[0].endswith("checks passed (1 file)")
    assert lines[2] == str(tmp_path / "web.yaml")
    assert lines[3] == "  Deployment/web, container web"
    assert any(line.startswith("    ✓ ok      grace-budget (line 10): ") for line in lines)
    warn = next(i for i, line in enumerate(lines) if "‼ warning memory-limit" in line)
    assert lines[warn + 1].strip().startswith("fix: set requests.memory to the limit")
    assert report.exit_code == 0  # warnings only


@pytest.mark.parametrize(
    ("name", "text", "where", "words"),
    [
        ("bad.yaml", "a: [1, 2\nb: 3\n", ":2: ", "not valid YAML"),
        ("tab.yaml", "a:\n\tb: 1\n", ":2: ", "not valid YAML"),
        (
            "bomb.yaml",
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
                for i in range(6)
            ),
            ":1: ",
            "refused: its aliases expand",
        ),
        (
            "app.service",
            "[Service]\nExecStart=warden run -- app\nnot an assignment\n",
            ":3: ",
            "is not a Key=Value line",
        ),
        ("Containerfile", "FROM x\nENV\n", ":2: ", "ENV without a variable"),
        (
            "grace.yaml",
            MANIFEST.replace(
                "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: soon"
            ),
            ":10: ",
            "is not a number of seconds",
        ),
        (
            "quantity.yaml",
            MANIFEST.replace("limits: {memory: 512Mi}", "limits: {memory: 512Mo}"),
            ":21: ",
            "unknown suffix",
        ),
    ],
)
def test_input_it_cannot_read_exits_2_with_one_line(
    tmp_path: Path, name: str, text: str, where: str, words: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    done = _cli(str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"warden doctor: {path}{where}")
    assert words in done.stderr


def test_a_missing_path_and_bad_usage_exit_2() -> None:
    done = _cli("/nonexistent/deploy.yaml")
    assert (done.returncode, done.stderr) == (
        2,
        "warden doctor: /nonexistent/deploy.yaml: cannot read it: No such file or directory\n",
    )
    assert _cli().returncode == 2
    both = _cli("--live", "x.yaml")
    assert both.returncode == 2 and "not live and files" in both.stderr


def test_exit_codes_follow_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MANIFEST)
    (tmp_path / "bad.yaml").write_text(MANIFEST.replace("KillMode", "").replace("40", "20"))
    assert _cli(str(tmp_path / "good.yaml")).returncode == 0
    assert _cli(str(tmp_path / "bad.yaml")).returncode == 1


def test_a_manifest_runs_the_image_of_the_containerfile_given_with_it(tmp_path: Path) -> None:
    """A container without a command runs its image's ENTRYPOINT + CMD; its ENV counts."""
    text = MANIFEST.replace(
        MANIFEST[MANIFEST.index("          command:") : MANIFEST.index("          ports:")], ""
    )
    report = doctor(tmp_path, **{"k8s__web.yaml": text, "image__Containerfile": CONTAINERFILE})
    grace = only(report, "grace-budget")
    assert grace.where.subject == "Deployment/web, container web"
    assert "warden's deadline 25 s (WARDEN_STOP_TIMEOUT=20s + 5 s)" in grace.message
    # The image's own line is checked for its form only: its numbers are the manifest's.
    image = [r for r in report.results if r.where.file.endswith("Containerfile")]
    assert [r.check for r in image] == ["signal-path"]
    # Alone, the manifest cannot know what the image runs, and says so.
    alone = doctor(tmp_path / "alone", **{"web.yaml": text})
    assert results(alone, "grace-budget") == []
    assert any("runs its image's command" in note for _, note in alone.notes)


def test_kubernetes_variable_references_in_the_command(tmp_path: Path) -> None:
    text = MANIFEST.replace('"--stop-timeout", "20s"', '"--stop-timeout", "$(STOP)"').replace(
        "          image: web:1\n",
        "          image: web:1\n          env: [{name: STOP, value: 50s}]\n",
    )
    found = only(doctor(tmp_path, **{"web.yaml": text}), "grace-budget")
    assert "warden's deadline 55 s (--stop-timeout 50s + 5 s)" in found.message


def test_a_directory_is_walked_and_other_files_are_passed_over(tmp_path: Path) -> None:
    report = doctor(
        tmp_path,
        **{
            "k8s__web.yaml": MANIFEST,
            "systemd__web.service": UNIT,
            "README.md": "# not a manifest",
            ".git__config.yaml": "garbage: [",
        },
    )
    files = {Path(r.where.file).name for r in report.results}
    assert files == {"web.yaml", "web.service"}
    assert report.title == "2 files"


def test_non_kubernetes_yaml_is_noted(tmp_path: Path) -> None:
    report = doctor(tmp_path, **{"values.yaml": "replicas: 2\n"})
    assert report.verdict == "clean"
    assert report.notes == ((str(tmp_path / "values.yaml"), "no Kubernetes objects in it"),)


def test_a_program_without_warden_is_noted_and_its_own_checks_still_run(tmp_path: Path) -> None:
    text = MANIFEST.replace(
        MANIFEST[MANIFEST.index("          command:") : MANIFEST.index("          args:")],
        '          command: ["sh", "-c", "gunicorn app:wsgi"]\n',
    )
    report = doctor(tmp_path, **{"web.yaml": text})
    assert only(report, "signal-path").status == "error"
    assert "the program" in only(report, "signal-path").message
    assert results(report, "grace-budget") == []
    assert any("does not run warden" in note for _, note in report.notes)


def test_standard_input_is_capped_like_a_file() -> None:
    """``warden doctor -`` reads at most 16 MiB, as it does of a file (a pipe from /dev/zero
    once reached 8 GB): more is refused with one line, exit 2."""
    done = _cli("-", stdin=" " * (16 * 2**20 + 1))
    assert done.returncode == 2
    assert done.stderr == ("warden doctor: <stdin>: larger than 16 MiB; give the files it holds\n")
    assert _cli("-", stdin=" " * (16 * 2**20)).returncode == 0  # at the cap: read


@pytest.mark.parametrize("given", ["the file", "its directory"])
def test_a_fifo_named_like_an_input_is_refused_not_waited_on(tmp_path: Path, given: str) -> None:
    (tmp_path / "web.yaml").write_text(MANIFEST)
    fifo = tmp_path / "zz.yaml"
    os.mkfifo(fifo)
    # It hung before (no writer ever comes).
    done = _cli(str(fifo) if given == "the file" else str(tmp_path), timeout=20)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"warden doctor: {fifo}: not a regular file (a FIFO); give a file\n"


def test_a_device_is_refused() -> None:
    done = _cli("/dev/zero")
    assert (done.returncode, done.stderr) == (
        2,
        "warden doctor: /dev/zero: not a regular file (a character device); give a file\n",
    )


def test_a_message_of_the_yaml_reader_is_one_line() -> None:
    done = _cli("-", stdin="\0")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("warden doctor: <stdin>: not valid YAML: ")


@pytest.mark.parametrize(
    ("redirect", "given", "code"),
    [
        (">&-", "good", 0),
        (">/dev/full", "good", 0),
        (">&-", "bad", 1),
        (">/dev/full", "bad", 1),
        ("2>&-", "missing", 2),
        ("2>/dev/full", "missing", 2),
        (">&- 2>&-", "bad", 1),
    ],
)
def test_the_exit_code_is_the_verdict_whatever_becomes_of_the_output(
    tmp_path: Path, redirect: str, given: str, code: int
) -> None:
    """``warden doctor --json f >&-`` in a CI job: the text is lost, the code is the verdict
    (it was 1, a traceback's, for every one of these)."""
    (tmp_path / "good.yaml").write_text(MANIFEST)
    (tmp_path / "bad.yaml").write_text(MANIFEST.replace("KillMode", "").replace("40", "20"))
    path = {"missing": "/nonexistent/app.yaml"}.get(given, str(tmp_path / f"{given}.yaml"))
    script = f'"$@" {redirect}'
    done = subprocess.run(
        ["sh", "-c", script, "sh", sys.executable, "-m", "warden", "doctor", "--json", path],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == code, done.stderr
    if "2>" not in redirect:
        assert done.stderr == ""  # no traceback


SIDECARS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
      - name: web
        image: registry.example.org/web:1.0
        command: ["warden", "run", "--stop-timeout", "20s", "--", "gunicorn",
                  "--graceful-timeout", "15", "app:wsgi"]
      - name: redis
        image: redis:7
      - name: envoy
        image: envoyproxy/envoy:v1.30.0
        args: ["-c", "/etc/envoy/envoy.yaml"]
"""

#: The app's image: warden with a 40 s stop, which no sidecar runs.
APP_IMAGE = """\
FROM python:3.12-slim
ENV WARDEN_STOP_TIMEOUT=40s
ENTRYPOINT ["warden", "run", "--"]
CMD ["gunicorn", "--graceful-timeout", "30", "app:wsgi"]
"""


def test_sidecars_are_not_read_through_the_apps_containerfile(tmp_path: Path) -> None:
    """redis and envoy run their own images' commands: the one Containerfile given is the
    app's, and they got its warden and its 40 s stop (two grace-budget errors) before."""
    report = doctor(tmp_path, **{"deploy.yaml": SIDECARS, "Containerfile": APP_IMAGE})
    sidecars = [r for r in report.results if "container web" not in r.where.subject]
    assert [(r.where.file, r.check) for r in sidecars if r.where.file.endswith("yaml")] == []
    assert report.verdict == "clean", [r.message for r in report.findings]
    notes = [note for _, note in report.notes]
    assert (
        "Deployment/web, container redis runs its image's command (redis:7, a well-known other "
        "program): not checked"
    ) in notes
    assert any(
        note.startswith("Deployment/web, container envoy runs its image's") for note in notes
    )
    # The image is checked on its own, all of it: no container was read through it.
    image = [r.check for r in report.results if r.where.file.endswith("Containerfile")]
    assert "server-timeout" in image


def test_which_container_a_containerfile_is_for(tmp_path: Path) -> None:
    pod = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - {name: api, image: "registry.example.org/team/api:2.1"}
  - {name: worker, image: "registry.example.org/team/worker@sha256:0123"}
  - {name: cache, image: "bitnami/redis-cluster:7"}
"""
    # Two of the app's own containers, one Containerfile named for neither: neither is read.
    report = doctor(tmp_path, **{"pod.yaml": pod, "Containerfile": APP_IMAGE})
    assert results(report, "grace-budget") == []
    assert sum("no Containerfile given is known to build it" in n for _, n in report.notes) == 2
    assert (
        str(tmp_path / "pod.yaml"),
        "Pod/p, container worker runs its image's command (registry.example.org/team/"
        "worker@sha256:0123), and no Containerfile given is known to build it: not checked "
        "(give it as worker.Containerfile or worker/Containerfile)",
    ) in report.notes
    # Named for one (api.Containerfile, or a directory api/): that one is.
    for name in ("api.Containerfile", "api__Containerfile", "Dockerfile.api"):
        named = doctor(tmp_path / name, **{"pod.yaml": pod, name: APP_IMAGE})
        (grace,) = results(named, "grace-budget")
        assert grace.where.subject == "Pod/p, container api"
    # The one container of the app's own (the others well-known programs): it is.
    single = pod.replace(
        '  - {name: worker, image: "registry.example.org/team/worker@sha256:0123"}\n', ""
    )
    (grace,) = results(
        doctor(tmp_path / "s", **{"pod.yaml": single, "Containerfile": APP_IMAGE}), "grace-budget"
    )
    assert grace.where.subject == "Pod/p, container api"
