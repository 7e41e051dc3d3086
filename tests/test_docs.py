"""The README and docs/ as a newcomer meets them: every link leads somewhere, every path named
exists, the runnable snippets run as written, and the examples agree with the upgrade table."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests._proc import ROOT, python
from tests.conftest import Spawn

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
#: The pages whose ```python blocks are complete programs, run by the tests as written.
RUNNABLE = [ROOT / "README.md", ROOT / "docs" / "library.md", ROOT / "docs" / "config.md"]

FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
#: A path in the repository named in a code span: it starts with one of its top folders.
REPO_PATH = re.compile(r"^(\.ci|bench|deploy|docs|examples|scripts|src|tests)/[\w./*-]*$")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text without its fenced blocks (a link or a path in a code block is an example)."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in _prose(page.read_text()).splitlines():
        if match := re.match(r"^#{1,6} (.+)$", line):
            slug = base = _slug(match.group(1))
            count = 0
            while slug in found:
                count += 1
                slug = f"{base}-{count}"
            found.add(slug)
    return found


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_leads_to_a_file_and_its_anchor(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto: ... not ours to check offline
        where, _, anchor = target.partition("#")
        path = (page.parent / where).resolve() if where else page
        if not path.exists():
            broken.append(f"{target}: no {path}")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {_name(path)}")
    assert broken == [], f"{_name(page)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_path_named_in_the_prose_exists(page: Path) -> None:
    missing = [
        span
        for span in CODE_SPAN.findall(_prose(page.read_text()))
        if REPO_PATH.match(span) and not any(ROOT.glob(span.rstrip("/")))
    ]
    assert missing == [], f"{_name(page)} names files that are not in the repository: {missing}"


def test_the_readme_names_no_outside_document() -> None:
    assert "SPEC" not in (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command_as_written() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = next(body for lang, body in FENCE.findall(readme) if lang == "sh")
    install, test = quick.splitlines()[:2]
    assert install == "python3 -m pip install . && warden demo"
    assert test == "python3 -m pip install '.[test]' && python3 -m pytest"
    ci = (ROOT / ".ci" / "run").read_text().replace(" --quiet", "").splitlines()
    assert test in ci  # the newcomer's command, quieter


# -- the runnable snippets --------------------------------------------------------------------


def _snippets() -> list[tuple[str, str]]:
    found = []
    for page in RUNNABLE:
        blocks = [body for lang, body in FENCE.findall(page.read_text()) if lang == "python"]
        found += [(f"{_name(page)}[{i}]", body) for i, body in enumerate(blocks)]
    return found


SNIPPETS = _snippets()


def test_each_runnable_page_has_a_snippet() -> None:
    assert {name.partition("[")[0] for name, _ in SNIPPETS} == {_name(p) for p in RUNNABLE}


@pytest.mark.parametrize(("name", "code"), SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_a_python_snippet_runs_as_written(
    name: str, code: str, tmp_path: Path, spawn: Spawn
) -> None:
    """Run in a directory of its own with ``PORT=0``; one that serves is stopped by SIGTERM
    once its lifecycle is ready (its JSON log says so), and must then stop cleanly."""
    script = tmp_path / "snippet.py"
    script.write_text(code)
    proc = spawn(python(str(script)), env={"PORT": "0"}, cwd=tmp_path)
    try:
        proc.wait_line(r'"event": "state", "state": "ready"', timeout=30, stream="err")
    except AssertionError:
        if proc.popen.poll() is None:
            raise
        assert proc.wait() == 0, proc.stderr  # a snippet that ends on its own: cleanly
        return
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stdout + proc.stderr
    assert '"state": "stopped"' in proc.stderr.splitlines()[-1]


# -- the examples agree with the upgrade table -------------------------------------------------


def _commands(text: str) -> list[str]:
    """Every ``warden run`` command in ``text``, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if "warden run " in line]


def _sources() -> list[tuple[str, str]]:
    help_text = subprocess.run(
        python("-m", "warden", "run", "--help"), capture_output=True, text=True, check=True
    ).stdout
    # The benchmarks run the failing pairs on purpose, to measure them.
    pages = [p for p in PAGES if p.name != "benchmarks.md"]
    return [("warden run --help", help_text)] + [(_name(p), p.read_text()) for p in pages]


def test_examples_pair_each_server_with_a_gate_that_works() -> None:
    """The upgrade table (docs/supervisor.md): gunicorn says READY=1 before its workers have
    loaded the app, so ``--ready notify`` passes a release that cannot serve (unless its
    workers say it, with warden's gunicorn config module); ``uvicorn --fd 3`` serves fd 3
    only, so an ``http`` gate's probe socket goes unanswered and every upgrade fails."""
    wrong = []
    for source, text in _sources():
        for command in _commands(text):
            if (
                re.search(r"\bgunicorn\b", command)
                and "warden.integrations.gunicorn" not in command
                and "--ready notify" in command
            ):
                wrong.append(f"{source}: {command.strip()}")
            if re.search(r"\buvicorn\b.*--fd", command) and "--ready http" in command:
                wrong.append(f"{source}: {command.strip()}")
    assert wrong == []


def test_the_help_examples_are_whole_lines() -> None:
    """A backslash ending an example line of the help is printed, not a continuation that
    runs two lines of the example together."""
    help_text = subprocess.run(
        python("-m", "warden", "run", "--help"), capture_output=True, text=True, check=True
    ).stdout
    examples = help_text[help_text.index("examples:") :]
    assert [line for line in examples.splitlines() if re.search(r"\S {3,}--", line)] == []


# -- the getting-started page's service, under a real warden run -------------------------------


def test_the_getting_started_service_serves_the_held_socket(tmp_path: Path, spawn: Spawn) -> None:
    """docs/getting-started.md's app, as the page runs it: warden holds the port and hands it
    over, the app says READY=1, answers, and stops cleanly on SIGTERM."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    (app,) = [body for lang, body in FENCE.findall(page) if lang == "python"]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text(app)
    proc = spawn(
        python(
            "-m", "warden", "run", "--control", "none", "--listen", "web=tcp://127.0.0.1:0",
            "--ready", "notify", "--", sys.executable, "-m", "app", "--drain-delay", "0.1",
        ),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
        cwd=tmp_path,
    )  # fmt: skip
    port = int(proc.wait_line(r'"name": "web=tcp://127.0.0.1:(\d+) \(fd 3\)"', stream="err")[1])
    proc.wait_line(r'"kind": "child.ready".*"gate": "notify"', timeout=30, stream="err")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = conn.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"hello\n")
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stderr
