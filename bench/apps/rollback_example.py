"""examples/http_service.py as a release of bench/bench_rollback.py: the fault named in the
file ``$ROLLBACK_RELEASE`` names is put in from outside (see ``rollback_asgi.py`` for the
names); ``GET /`` answers the release's name.

    ROLLBACK_RELEASE=release python bench/apps/rollback_example.py DATA.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "http_service.py"


def main() -> int:
    name = Path(os.environ["ROLLBACK_RELEASE"]).read_text().split()[0]
    if name == "import-error":
        raise RuntimeError("a broken release")
    if name == "exit0":
        return 0
    spec = importlib.util.spec_from_file_location("http_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    service: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(service)
    service._REASONS[500] = "Internal Server Error"
    handle = service.Http._handle

    async def answer(self: object, request_line: str, body: bytes) -> tuple[int, str]:
        if request_line.split()[1] != "/":
            result: tuple[int, str] = await handle(self, request_line, body)
            return result
        return (500 if name == "err500" else 200), f"{name} {os.getpid()}\n"

    async def forever(_: object) -> None:
        await asyncio.Event().wait()

    async def fault() -> None:
        loop = asyncio.get_running_loop()
        if name == "late":
            loop.call_later(1.5, os._exit, 1)
        if name == "hang":
            loop.call_later(0.5, time.sleep, 3600)

    service.Http._handle = answer
    if name == "never-ready":
        service.Jobs.start = forever
    args = argparse.Namespace(host="127.0.0.1", port=0, data=sys.argv[1], drain_delay="0")
    lifecycle = service.build(args)
    lifecycle.add("fault", start=fault, depends_on=["http"])
    code: int = lifecycle.run()
    return code


if __name__ == "__main__":
    sys.exit(main())
