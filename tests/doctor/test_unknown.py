"""Values doctor cannot know (a ConfigMap or a Secret not among the files, ``$VAR`` a shell
expands from somewhere else, an ``ARG`` without a default) are said, per check, as "cannot
check" warnings, never taken for the default warden would use if they were unset; values it
can know (a ConfigMap among the files, an ``ARG``'s default) are read as the platform reads
them; a reference nothing expands is what warden gets, and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doctor._files import CONTAINERFILE, MANIFEST, UNIT, doctor, only, with_env

NO_FLAG = MANIFEST.replace('"--stop-timeout", "20s", ', "")
FROM_CONFIGMAP = "{name: WARDEN_STOP_TIMEOUT, valueFrom: {configMapKeyRef: {name: cfg, key: stop}}}"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {stop: 60s}\n"


def test_a_value_from_a_configmap_not_given_is_not_checked(tmp_path: Path) -> None:
    report = doctor(tmp_path, **{"web.yaml": with_env(NO_FLAG, FROM_CONFIGMAP)})
    grace = only(report, "grace-budget")
    assert grace.status == "warning"
    assert grace.message == (
        "cannot check: WARDEN_STOP_TIMEOUT comes from ConfigMap cfg (key stop), not among the "
        "files given: preStop 5 s + warden's deadline (--stop-timeout + 5 s) + margin 2 s must "
        "fit in terminationGracePeriodSeconds 40 s"
    )
    assert grace.fix == "make sure that value is at most 28s"
    assert only(report, "server-timeout").status == "warning"
    assert "WARDEN_STOP_TIMEOUT comes from ConfigMap cfg" in only(report, "server-timeout").message
    assert report.exit_code == 0  # warnings: not a failure, not a pass either
    # Given with the manifest, the ConfigMap's value is read: 60 s does not fit in 40 s.
    known = doctor(
        tmp_path / "b", **{"web.yaml": with_env(NO_FLAG, FROM_CONFIGMAP) + "---\n" + CONFIGMAP}
    )
    assert only(known, "grace-budget").status == "error"
    assert "(WARDEN_STOP_TIMEOUT=60s + 5 s)" in only(known, "grace-budget").message


def test_a_secret_and_a_field_are_not_known(tmp_path: Path) -> None:
    secret = "{name: WARDEN_READY_TIMEOUT, valueFrom: {secretKeyRef: {name: s, key: k}}}"
    text = with_env(MANIFEST, secret).replace(
        '"--health", "0.0.0.0:9000", ', ""
    )  # liveness on /livez of no health server: the budget counts
    found = only(doctor(tmp_path, **{"web.yaml": text}), "liveness-start")
    assert found.status == "warning"
    assert found.message.startswith(
        "cannot check: WARDEN_READY_TIMEOUT comes from Secret s (key k): without a startupProbe, "
        "--ready-timeout must be at most initialDelaySeconds 0 + periodSeconds 10 x "
        "failureThreshold 3 = 30 s"
    )


def test_an_unexpanded_dollar_var_in_an_exec_form_is_refused(tmp_path: Path) -> None:
    """Kubernetes expands $(T), never $T: warden gets '$T' and exits 2."""
    text = with_env(
        MANIFEST.replace('"--stop-timeout", "20s"', '"--stop-timeout", "$T"'),
        "{name: T, value: 20s}",
    )
    report = doctor(tmp_path, **{"web.yaml": text})
    found = only(report, "warden-options")
    assert found.status == "error"
    assert found.message.startswith("--stop-timeout $T: --stop-timeout='$T' is not a duration")
    assert (
        "Kubernetes expands $(VAR) in command and args, for a variable of the container only, "
        "and never $VAR" in found.message
    )
    # The checks that need it do not take the default for it.
    grace = only(report, "grace-budget")
    assert grace.status == "warning"
    assert "cannot check: --stop-timeout $T is refused by warden run" in grace.message
    assert report.exit_code == 1


def test_a_reference_to_an_unknown_variable(tmp_path: Path) -> None:
    secret = "{name: T, valueFrom: {secretKeyRef: {name: s, key: stop}}}"
    k8s = with_env(MANIFEST.replace('"--stop-timeout", "20s"', '"--stop-timeout", "$(T)"'), secret)
    found = only(doctor(tmp_path, **{"web.yaml": k8s}), "grace-budget")
    assert found.status == "warning"
    assert found.message.startswith(
        "cannot check: --stop-timeout $(T): $(T) is T, which comes from Secret s (key stop): "
    )
    # Through a shell: $T from the Secret, $U from nowhere doctor sees (the image's ENV?).
    shell = MANIFEST.replace(
        MANIFEST[
            MANIFEST.index('          command: ["warden"') : MANIFEST.index("          args:")
        ],
        '          command: ["sh", "-c", "exec warden run --stop-timeout $T -- \\"$@\\"", "sh"]\n',
    )
    found = only(doctor(tmp_path / "b", **{"web.yaml": with_env(shell, secret)}), "grace-budget")
    assert "cannot check: --stop-timeout $T: $T is T, which comes from Secret s" in found.message
    found = only(doctor(tmp_path / "c", **{"web.yaml": shell.replace("$T", "$U")}), "grace-budget")
    assert "the shell expands $U from a variable doctor does not see" in found.message
    # A value that names one: $(T) in env is expanded by the kubelet.
    chained = with_env(NO_FLAG, secret, "{name: WARDEN_STOP_TIMEOUT, value: $(T)}")
    found = only(doctor(tmp_path / "d", **{"web.yaml": chained}), "grace-budget")
    assert "WARDEN_STOP_TIMEOUT comes from T, which comes from Secret s" in found.message


def test_env_from_a_configmap(tmp_path: Path) -> None:
    text = NO_FLAG.replace(
        "          image: web:1\n",
        "          image: web:1\n          envFrom: [{configMapRef: {name: cfg}}]\n",
    )
    alone = doctor(tmp_path, **{"web.yaml": text})
    assert any("envFrom configMapRef cfg is not among the files given" in n for _, n in alone.notes)
    known = doctor(
        tmp_path / "b",
        **{
            "web.yaml": text.replace("stop", "x")
            + "---\n"
            + CONFIGMAP.replace("stop", "WARDEN_STOP_TIMEOUT")
        },
    )
    assert "(WARDEN_STOP_TIMEOUT=60s + 5 s)" in only(known, "grace-budget").message
    assert known.notes == ()


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ("ARG STOP=40s\nENV WARDEN_STOP_TIMEOUT=${STOP}", "WARDEN_STOP_TIMEOUT=40s"),
        ("ARG STOP=40s\nENV WARDEN_STOP_TIMEOUT=$STOP", "WARDEN_STOP_TIMEOUT=40s"),
        ('ARG STOP=40s\nENV WARDEN_STOP_TIMEOUT="${STOP}"', "WARDEN_STOP_TIMEOUT=40s"),
        ("ENV WARDEN_STOP_TIMEOUT=${STOP:-35s}", "WARDEN_STOP_TIMEOUT=35s"),
        ("ENV S=45s\nENV WARDEN_STOP_TIMEOUT=$S", "WARDEN_STOP_TIMEOUT=45s"),
        ("ENV S=45s\nENV WARDEN_STOP_TIMEOUT ${S}", "WARDEN_STOP_TIMEOUT=45s"),  # legacy form
        ("ARG STOP=40s\nENV STOP=50s\nENV WARDEN_STOP_TIMEOUT=$STOP", "WARDEN_STOP_TIMEOUT=50s"),
    ],
)
def test_a_containerfile_substitutes_arg_and_env(tmp_path: Path, lines: str, said: str) -> None:
    text = CONTAINERFILE.replace("ENV WARDEN_STOP_TIMEOUT=20s", lines).replace(
        'CMD ["python", "-m", "web"]', 'CMD ["gunicorn", "app:wsgi"]'
    )
    found = only(doctor(tmp_path, Containerfile=text), "server-timeout")
    assert f"< {said}" in found.message and found.status == "ok"


def test_a_global_arg_and_a_build_arg(tmp_path: Path) -> None:
    base = (
        "ARG STOP=40s\nFROM python:3.12-slim\nARG STOP\nENV WARDEN_STOP_TIMEOUT=${STOP}\n"
        'ENTRYPOINT ["warden", "run", "--"]\nCMD ["gunicorn", "app:wsgi"]\n'
    )
    found = only(doctor(tmp_path, Containerfile=base), "server-timeout")
    assert found.status == "ok" and "< WARDEN_STOP_TIMEOUT=40s" in found.message
    # An ARG without a default is a --build-arg: not known.
    build_arg = base.replace("ARG STOP=40s\n", "")
    found = only(doctor(tmp_path / "b", Containerfile=build_arg), "server-timeout")
    assert found.status == "warning"
    assert found.message.startswith(
        "cannot check: WARDEN_STOP_TIMEOUT comes from ARG STOP (no default: a --build-arg)"
    )
    # The global ARG is not seen in the stage without "ARG STOP" there: empty.
    unseen = base.replace("ARG STOP\n", "")
    found = only(doctor(tmp_path / "c", Containerfile=unseen), "warden-options")
    assert found.message.startswith("WARDEN_STOP_TIMEOUT=: ")
    # Single quotes and the escape character keep it as written.
    quoted = base.replace("=${STOP}", "='${STOP}'")
    assert only(doctor(tmp_path / "d", Containerfile=quoted), "warden-options").message.startswith(
        "WARDEN_STOP_TIMEOUT=${STOP}: "
    )
    escaped = base.replace("=${STOP}", "=\\${STOP}")
    assert only(doctor(tmp_path / "e", Containerfile=escaped), "warden-options").status == "error"


def test_an_exec_form_expands_nothing(tmp_path: Path) -> None:
    text = CONTAINERFILE.replace(
        'ENTRYPOINT ["warden", "run", "--"]',
        'ENTRYPOINT ["warden", "run", "--stop-timeout", "$T", "--"]',
    ).replace("ENV WARDEN_STOP_TIMEOUT=20s", "ENV T=90s")
    found = only(doctor(tmp_path, Containerfile=text), "warden-options")
    assert "an exec form expands no variable, only a shell does" in found.message


def test_a_unit_variable_from_an_environment_file(tmp_path: Path) -> None:
    unit = UNIT.replace("--stop-timeout 20s", "--stop-timeout ${STOP}").replace(
        "Type=notify\n", "Type=notify\nEnvironmentFile=/etc/web.env\n"
    )
    found = only(doctor(tmp_path, **{"web.service": unit}), "stop-budget")
    assert found.status == "warning"
    assert found.message.startswith(
        "cannot check: --stop-timeout ${STOP}: systemd expands ${STOP} from EnvironmentFile=, "
        "which doctor does not read: "
    )
    # Without one, systemd expands a variable set nowhere to nothing: warden gets ''.
    bare = UNIT.replace("--stop-timeout 20s", "--stop-timeout ${STOP}")
    assert only(doctor(tmp_path / "b", **{"web.service": bare}), "warden-options").status == "error"


def test_a_server_setting_from_a_configmap(tmp_path: Path) -> None:
    args = "{name: GUNICORN_CMD_ARGS, valueFrom: {configMapKeyRef: {name: g, key: args}}}"
    text = with_env(MANIFEST.replace('"--graceful-timeout", "15", ', ""), args)
    found = only(doctor(tmp_path, **{"web.yaml": text}), "server-timeout")
    assert found.status == "warning"
    assert found.message.startswith("cannot check: GUNICORN_CMD_ARGS comes from ConfigMap g")
