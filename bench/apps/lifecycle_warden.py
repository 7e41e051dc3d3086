"""examples/http_service.py as it is, plus what bench/bench_lifecycle.py needs to see.

Runs the example's own ``main()`` (same components, same ``warden.log_events``). The only
additions: a timeline observer that prints each state change with its ``time.monotonic()``
stamp (``warden-event state draining 12345.678901``; CLOCK_MONOTONIC is system-wide on Linux,
so the bench compares it with its own clock), and, with ``--hang busy|async``, one more
component whose stop never ends, for the deadline benchmark::

    python bench/apps/lifecycle_warden.py [--hang busy|async] --port 0 --data /tmp/jobs.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import warden

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "http_service.py"


def _load_example() -> Any:  # the example's module; its attributes are replaced below
    spec = importlib.util.spec_from_file_location("http_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _print_state(event: warden.Event) -> None:
    if event.kind == "state":
        print(f"warden-event state {event.name} {event.at!r}", flush=True)


async def _spin() -> None:
    while True:  # a sync busy loop inside a coroutine: it blocks the whole event loop
        pass


async def _forever() -> None:
    await asyncio.Event().wait()  # never set: the stop never finishes


def main() -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--hang", choices=("busy", "async"))
    ours, rest = parser.parse_known_args()
    example = _load_example()
    build = example.build

    def build_observed(args: argparse.Namespace) -> warden.Lifecycle:
        lifecycle: warden.Lifecycle = build(args)
        lifecycle.timeline.subscribe(_print_state)
        if ours.hang is not None:
            lifecycle.add("stuck", stop=_spin if ours.hang == "busy" else _forever)
        return lifecycle

    example.build = build_observed
    code: int = example.main(rest)
    return code


if __name__ == "__main__":
    sys.exit(main())
