"""examples/config_service.py as a real process: SIGHUP and edits reload it, bad edits do not."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from tests._proc import EXAMPLES, Proc

from ._files import write_atomic


def events(proc: Proc) -> list[dict[str, object]]:
    found = []
    for line in proc.err:
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_sighup_and_edits_reload_the_example_service(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    config = tmp_path / "app.toml"
    config.write_text('greeting = "hello"\nworkers = 2\n')
    proc = spawn([sys.executable, str(EXAMPLES / "config_service.py"), str(config)])
    proc.wait_line(r"^ready: revision 1, hello$")

    write_atomic(config, 'greeting = "hi"\nworkers = 4\n')  # the watcher applies it
    proc.wait_line(r"^config applied: workers 2 -> 4$")

    config.write_text('greeting = "hi"\nworkers = 0\n')  # refused by the schema
    proc.wait_line(r"workers=0 must be at least 1", stream="err")

    config.write_text('greeting = "hi"\nworkers = 100\n')  # vetoed by the pool subscriber
    proc.wait_line(r"vetoed by pool: ValueError: workers=100 is over the pool", stream="err")

    # Behind the watcher's back, then SIGHUP: a real signal through the lifecycle's handler.
    config.write_text('greeting = "hi"\nworkers = 8\n')
    proc.wait_line(r"^config applied: workers 4 -> 8$")
    proc.popen.send_signal(signal.SIGHUP)
    proc.wait_line(r'"kind": "reload"', stream="err")
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=10) == 0
    kinds = [e.get("kind") for e in events(proc)]
    assert kinds.count("config.reloaded") >= 2
    assert kinds.count("config.reload_failed") == 2
