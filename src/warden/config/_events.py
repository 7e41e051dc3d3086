"""The config store's facts on the lifecycle's timeline.

Every reload ends in exactly one result fact, :class:`ConfigReloaded` or
:class:`ConfigReloadFailed` (a metrics observer counts them by class). A reload the file
watcher starts is also bracketed by :class:`ConfigReloading` and :class:`ConfigWatchDone`,
which derive from the lifecycle's :class:`~warden.lifecycle.Reloading` and
:class:`~warden.lifecycle.Reloaded`, so the systemd observer sends RELOADING=1 before and
READY=1 after. A reload run by SIGHUP has no bracket: the lifecycle's own state change to
``reloading`` and back already says so to systemd, and saying it twice would be noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from warden.lifecycle import Fact, Reloaded, Reloading, Says


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReloaded(Fact):
    """A reload read a valid file: a new revision (``changed``) or the same content again.

    Attributes:
        file: the config file.
        revision: the revision serving now.
        digest: its content hash (sha256, hex).
        changed: whether this reload swapped in a new snapshot.
        took: seconds from read to the last commit (None for the first load, said at
            ``start``: it happened in the store's constructor, before the lifecycle ran).
        trigger: ``signal``, ``watch``, ``call`` or ``start``.
        commit_errors: a line per subscriber whose ``commit`` raised (the swap stands).
    """

    kind: ClassVar[str] = "config.reloaded"
    says: ClassVar[Says] = Says(name="{file}", duration="took")
    file: Path
    revision: int
    digest: str
    changed: bool
    took: float | None
    trigger: str
    commit_errors: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        if self.commit_errors:
            return "warning"
        return "ok" if self.changed else "unchanged"

    @property
    def detail(self) -> str:
        text = f"revision {self.revision} ({self.digest[:12]}) by {self.trigger}"
        if self.commit_errors:
            text += "; commit failed: " + "; ".join(self.commit_errors)
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReloadFailed(Fact):
    """A reload was refused; the snapshot ``revision`` keeps serving.

    Attributes:
        file: the config file.
        revision: the revision still serving.
        error: one line naming the file, the line or field where known, and the reason.
        stage: where it failed: ``read``, ``parse``, ``validate`` or ``prepare``.
        took: seconds the attempt took.
        trigger: ``signal``, ``watch`` or ``call``.
    """

    kind: ClassVar[str] = "config.reload_failed"
    says: ClassVar[Says] = Says(name="{file}", outcome="failed", duration="took")
    file: Path
    revision: int
    error: str
    stage: str
    took: float
    trigger: str

    @property
    def detail(self) -> str:
        # The name is the file already: the log line need not say it twice.
        reason = self.error.removeprefix(f"config {self.file}: ")
        return f"{reason}; revision {self.revision} keeps serving"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReloading(Reloading):
    """The file watcher saw ``file`` change and a reload begins (RELOADING=1)."""

    kind: ClassVar[str] = "config.reloading"
    for_people: ClassVar[bool] = False  # config.reloaded or config.reload_failed follows
    says: ClassVar[Says] = Says(name="{file}", detail="changed on disk; reloading")
    file: Path

    @property
    def status(self) -> str:
        return f"reloading {self.file.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigWatchDone(Reloaded):
    """The reload the watcher began is over, applied or refused (READY=1 again)."""

    kind: ClassVar[str] = "config.reload_done"
    for_people: ClassVar[bool] = False  # config.reloaded or config.reload_failed said it
    says: ClassVar[Says] = Says(name="{file}")
    file: Path
    ok: bool

    @property
    def outcome(self) -> str:
        return "ok" if self.ok else "refused"

    @property
    def detail(self) -> str:
        return "serving the new config" if self.ok else "serving the old config"

    @property
    def warning(self) -> bool:
        return False  # the ConfigReloadFailed just before it is the one to look at

    @property
    def status(self) -> str:
        return "ready" if self.ok else f"ready; {self.file.name} refused, old config kept"
