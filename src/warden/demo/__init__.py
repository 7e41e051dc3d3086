"""``warden demo``: what warden is for, shown on a real ``warden run`` in under a minute.

A bundled HTTP service (:mod:`warden.demo._service`, on warden's library) runs under a real
``warden run`` on loopback, in a directory of its own, and is walked through six steps, each a
promise with its own verdict: ready behind its gate; a ConfigMap-style config update applied
and a broken one refused; a zero-downtime upgrade; a broken release rolled back; a memory
leak caught before the OOM killer with nothing acknowledged lost; a graceful stop with
requests in flight. Real traffic from closed-loop clients throughout; every figure measured.

The parts, each a module: where it can write (``_room``), the files on disk
(``_workspace``), warden as a process and its facts (``_warden``), warden tied to the demo
(``_tether``), warden's words for people (``_words``), the clients (``_clients``), the
kernel's memory cgroup (``_cgroup``), the steps (``_scenario``), the rules (``_judge``), the
report (``_report``), what a person sees (``_present``), signals and a closed output
(``_interrupts``), and the whole (``_main``).

Layering: the demo drives ``warden run`` as a process; it imports the root leaves, the
memory library (to ask the kernel), and, in the service's process only, the lifecycle, the
config store and ``listen_fds``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_demo"]


def run_demo(
    *, json_output: bool = False, keep: Path | None = None, upgrade_confirm: float | None = None
) -> int:
    """Run the demo and print its summary (``json_output``: as JSON); the exit code.

    Args:
        json_output: print the summary as JSON (live lines go to stderr if it is a terminal).
        keep: keep every log in this directory (new, or empty) instead of removing them.
        upgrade_confirm: the confirmation window of the demo's warden, in seconds; 0 shows
            what a broken release does without one.

    Returns:
        0 when every promise that ran held, 1 when one broke, 2 for bad input or where it
        could not run (no room to write its files), 128+N when signal N interrupted it,
        141 when its output was closed.
    """
    from ._main import DEFAULT_UPGRADE_CONFIRM
    from ._main import run_demo as run

    window = DEFAULT_UPGRADE_CONFIRM if upgrade_confirm is None else upgrade_confirm
    return run(json_output=json_output, keep=keep, upgrade_confirm=window)
