"""Keep the OOM killer away from warden itself, and not from the child; and stay small.

warden holds the listening sockets and is the child's only reaper: if the kernel's OOM killer
picked warden, the service would go down with it. So warden lowers its own ``oom_score_adj``.

Kernel facts this relies on (``fs/proc/base.c``, ``__set_oom_adj``):

* Going *below* the process's ``oom_score_adj_min`` needs ``CAP_SYS_RESOURCE`` (EACCES
  otherwise). ``oom_score_adj_min`` is not readable; it is inherited, and it starts at 0 unless
  an ancestor with the capability set it lower. Any value at or above it is always allowed, so
  "the lowest allowed" is found by a binary search over writes that either succeed or fail.
* ``oom_score_adj`` belongs to the signal struct and is copied at fork/clone: a child inherits
  warden's lowered value, and a child that may never be chosen is exactly wrong (the child is
  what should go first). :meth:`OomScoreGuard.child_defaults` therefore puts warden's original
  value back for the duration of the spawn and lowers it again afterwards, which is always
  permitted because the first lowering was. The alternative, writing ``/proc/<child>`` after the
  spawn, races with a child that forks at once (its grandchildren would keep the low value).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
from collections.abc import Iterator
from pathlib import Path

#: The kernel's floor: -1000 disables OOM killing of the process altogether.
OOM_SCORE_ADJ_MIN = -1000


class OomScoreGuard:
    """Lowers warden's own ``oom_score_adj`` as far as it is allowed to."""

    def __init__(self, path: Path = Path("/proc/self/oom_score_adj")) -> None:
        self._path = path
        try:
            self.original = self._read()
        except OSError:
            self.original = 0  # protect() will report the error; child_defaults() is a no-op
        #: The value warden runs at; equal to :attr:`original` when it could not go lower.
        self.current = self.original

    def _read(self) -> int:
        return int(self._path.read_text().strip())

    def _try_write(self, value: int) -> bool:
        try:
            self._path.write_text(f"{value}\n")
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                return False
            raise
        return True

    def protect(self, target: int = OOM_SCORE_ADJ_MIN) -> int:
        """Set the lowest value in ``[target, original]`` the kernel accepts; return it."""
        if self._try_write(target):
            self.current = target
            return target
        # Writes succeed exactly for values >= oom_score_adj_min: binary search the boundary.
        low, high = target + 1, self.original  # the answer lies in [low, high]
        while low < high:
            middle = (low + high) // 2
            if self._try_write(middle):
                high = middle
            else:
                low = middle + 1
        self._try_write(high)
        self.current = high
        return high

    @contextlib.contextmanager
    def child_defaults(self) -> Iterator[None]:
        """Run a spawn with warden at its original value, so the child inherits that."""
        if self.current == self.original:
            yield
            return
        self._try_write(self.original)
        try:
            yield
        finally:
            self._try_write(self.current)


def release_free_memory() -> None:
    """Give the C allocator's free memory back to the kernel, once start-up is done.

    Importing and starting leave freed blocks in glibc's heap that it keeps for reuse; a
    supervisor that then idles for weeks never reuses them. ``malloc_trim(0)`` returns them:
    about 0.6 MiB of warden run's ~19 MiB resident (measured). Not glibc (musl): nothing to do.
    """
    gc.collect()
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)
