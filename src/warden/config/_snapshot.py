"""What a reader holds (a snapshot) and what a reload returns (its result)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[T]):
    """One validated config, never changed once made.

    Attributes:
        value: what the validator returned (``store.current`` is this value).
        revision: 1 for the first load, one more for each change applied.
        digest: sha256 (hex) of the file's bytes and the environment overlay.
        path: the file it was read from.
        loaded_at: ``time.monotonic()`` when it was swapped in.
    """

    value: T
    revision: int
    digest: str
    path: Path
    loaded_at: float


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """How one reload ended. ``store.reload()`` returns it and never raises for bad input.

    Attributes:
        ok: the file was valid and accepted (``changed`` says whether it was new).
        changed: a new snapshot was swapped in (same content: ``ok`` and not ``changed``).
        revision: the revision serving after the reload (the old one when it failed).
        digest: the digest of the snapshot serving after the reload.
        error: when not ``ok``: one line naming the file, the line or field where known, and
            the reason.
        stage: where it failed: ``read``, ``parse``, ``validate`` or ``prepare``.
        took: seconds, from reading the file to the last commit.
        trigger: ``call``, ``signal``, ``watch`` or ``start``.
        commit_errors: a line for each subscriber whose ``commit`` raised; the swap stands.
    """

    ok: bool
    changed: bool
    revision: int
    digest: str
    error: str | None
    took: float
    trigger: str
    stage: str | None = None
    commit_errors: tuple[str, ...] = ()
