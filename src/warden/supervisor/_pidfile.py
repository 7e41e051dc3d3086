"""``--pid-file``: warden's pid, written atomically, removed at exit if it is still ours."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .._exceptions import ConfigurationError


class PidFile:
    """A pid file another program may read at any moment: never empty, never half written.

    The pid goes to a temporary file in the same directory, which is then renamed over the
    target (``rename`` is atomic within a filesystem). warden stays the service's main pid
    through every upgrade, so the file is written once.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._pid = os.getpid()

    def write(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{self._pid}.tmp")
        try:
            tmp.write_text(f"{self._pid}\n")
            tmp.chmod(0o644)
            tmp.replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ConfigurationError(
                f"--pid-file {str(self.path)!r}: cannot write it: {exc.strerror}; create its "
                "directory or choose a writable path"
            ) from None

    def remove(self) -> None:
        """Remove the file, unless something else has replaced it since."""
        with contextlib.suppress(OSError):
            if self.path.read_text().strip() == str(self._pid):
                self.path.unlink()
