"""A lifecycle stopped by a real SIGTERM, with a component past its stop timeout; prints the
metrics scrape once it has stopped."""

from __future__ import annotations

import asyncio
import signal
import sys

import warden
from warden.observe._metrics import Metrics


def main() -> int:
    lifecycle = warden.Lifecycle(drain_delay=0.05, stop_timeout=0.05)
    lifecycle.add("stuck", stop=lambda: asyncio.sleep(10))
    lifecycle.add("quick", stop=lambda: None)
    metrics = Metrics()
    lifecycle.timeline.subscribe(metrics)

    async def main() -> None:
        signal.raise_signal(signal.SIGTERM)
        await lifecycle.wait_for_stop()

    lifecycle.run(main)
    sys.stdout.write(metrics.exposition().decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
