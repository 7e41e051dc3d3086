"""The config store: one immutable snapshot, swapped whole by one reference.

Readers take ``store.current`` with no lock: it is a plain attribute, and replacing it is one
reference store, atomic in CPython, so a reader holds either the old snapshot or the new one
and never a mix. A reload builds the new snapshot entirely aside (read → parse → validate →
prepare) and swaps only at the end; any failure before the swap leaves the old one serving.
Reloads are serialized by a lock that readers never take.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from ._errors import ConfigError
from ._snapshot import ReloadResult, Snapshot
from ._sources import (
    DEFAULT_MAX_BYTES,
    apply_overlay,
    blame_environment,
    content_digest,
    env_overlay,
    format_of,
    parse,
    read_file,
)
from ._subscribers import Hook, Subscriber, commit_all, hook_name, prepare_all
from ._validate import make_validator
from ._watch import DEFAULT_DEBOUNCE

if TYPE_CHECKING:
    from warden.lifecycle import Lifecycle

    from ._attach import Attachment
    from ._thread import WatchThread

T = TypeVar("T")
_LOG = logging.getLogger("warden.config")
_READ_ONLY = frozenset({"current", "snapshot"})


class ConfigStore(Generic[T]):
    """An immutable, validated config snapshot, reloaded whole or not at all.

    Example::

        @dataclass(frozen=True)
        class Settings:
            port: int
            hosts: tuple[str, ...] = ()

        store = ConfigStore("/etc/app/config.toml", schema=Settings, env_prefix="APP")
        store.attach(lifecycle)          # SIGHUP reloads; watch=True watches on the loop
        port = store.current.port        # no lock, always one whole snapshot

    Args:
        path: the config file (TOML, JSON, or YAML with the ``yaml`` extra; by suffix).
        schema: a pydantic model, a dataclass, or a callable taking the parsed mapping; the
            snapshot is what it returns. ``None``: the mapping itself, made read-only.
        format: ``"toml"``, ``"json"`` or ``"yaml"``, when the suffix does not say.
        env_prefix: take ``<PREFIX>__KEY__SUB=value`` variables over the file's values.
        environ: the environment to read (default ``os.environ``, read at every reload).
        max_bytes: a larger file is refused (default 4 MiB).
        watch: reload when the file changes; on the lifecycle's loop once attached, else on
            a thread of the store's own (its loop sleeps until the kernel reports an event),
            stopped by :meth:`close`.
        debounce: seconds of quiet after the last file event before reloading.

    Raises:
        ConfigError: the first load failed (there is no old snapshot to keep).
        MissingExtraError: a YAML file without PyYAML.
    """

    current: T
    """The config now serving: read it freely, it never changes (a reload replaces it)."""
    snapshot: Snapshot[T]
    """The whole snapshot (value, revision, digest); read it once to get them consistent."""

    @overload
    def __init__(
        self: ConfigStore[T],
        path: str | os.PathLike[str],
        schema: type[T],
        *,
        format: str | None = None,
        env_prefix: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        watch: bool = False,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None: ...
    @overload
    def __init__(
        self: ConfigStore[T],
        path: str | os.PathLike[str],
        schema: Callable[[dict[str, Any]], T],
        *,
        format: str | None = None,
        env_prefix: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        watch: bool = False,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None: ...
    @overload
    def __init__(
        self: ConfigStore[Mapping[str, Any]],
        path: str | os.PathLike[str],
        schema: None = None,
        *,
        format: str | None = None,
        env_prefix: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        watch: bool = False,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None: ...
    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: Any = None,
        *,
        format: str | None = None,
        env_prefix: str | None = None,
        environ: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        watch: bool = False,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None:
        self.path = Path(path).absolute()  # not resolve(): a symlink is watched as such
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigError(self.path, f"max_bytes={max_bytes!r} is not a positive integer")
        if not debounce > 0:
            raise ConfigError(self.path, f"debounce={debounce!r} is not a positive number")
        self.format = format_of(self.path, format)
        self.env_prefix = env_prefix
        self.max_bytes = max_bytes
        self.debounce = float(debounce)
        self.watch = watch
        self._environ = os.environ if environ is None else environ
        self._validate = make_validator(schema, self.path)
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self._subscribers_lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._attachment: Attachment | None = None
        self._thread: WatchThread | None = None
        began = time.monotonic()
        self._file_sha = ""  # sha256 of the file's bytes behind the snapshot (for the watch)
        digest, value = self._build()  # raises ConfigError: no old snapshot to keep
        self._swap(Snapshot(value, 1, digest, self.path, time.monotonic()))
        _LOG.debug("config %s: revision 1 in %.1f ms", self.path, (time.monotonic() - began) * 1e3)
        if watch:
            from ._thread import WatchThread

            self._thread = WatchThread(self)

    def __setattr__(self, name: str, value: object) -> None:
        if name in _READ_ONLY:
            raise AttributeError(
                f"ConfigStore.{name} is read-only; change the file and call reload()"
            )
        object.__setattr__(self, name, value)

    # -- reading ------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The revision serving now: 1 after the first load, one more per applied change."""
        return self.snapshot.revision

    @property
    def digest(self) -> str:
        """The content hash (sha256, hex) of the snapshot serving now."""
        return self.snapshot.digest

    # -- subscribing --------------------------------------------------------------------

    def subscribe(
        self,
        commit: Hook | None = None,
        *,
        prepare: Hook | None = None,
        abandon: Hook | None = None,
        name: str | None = None,
    ) -> Callable[[], None]:
        """Be told of each new snapshot; returns a function that unsubscribes.

        Subscribers run in the order they subscribed, on the thread that reloads, each
        isolated. ``prepare(old, new)`` runs before the swap and vetoes the reload by raising
        or returning ``False`` (nothing is swapped; each subscriber that prepared is given
        ``abandon(old, new)``); ``commit(old, new)`` runs after the swap, and one that raises
        is reported without stopping the others. ``old`` and ``new`` are config values.
        """
        sub = Subscriber(
            name or hook_name(commit, prepare, abandon), commit, prepare, abandon, named=bool(name)
        )
        # Copy on write: a reload under way keeps the list it started with.
        with self._subscribers_lock:
            self._subscribers = [*self._subscribers, sub]

        def unsubscribe() -> None:
            with self._subscribers_lock:
                self._subscribers = [s for s in self._subscribers if s is not sub]

        return unsubscribe

    # -- reloading ----------------------------------------------------------------------

    def reload(self, *, trigger: str = "call") -> ReloadResult:
        """Read the file again and swap in the new snapshot if it is valid and accepted.

        Never raises for bad input: the result says ``ok``, ``changed``, the ``revision``
        serving and the ``error``. The same content (same digest) is not a new revision and
        calls no subscriber. Safe from any thread; reloads run one at a time. When attached
        to a lifecycle, the result is also published on its timeline.
        """
        result = self.reload_quietly(trigger=trigger)
        if self._attachment is not None:
            self._attachment.report(result)
        elif not result.ok:
            _LOG.warning("%s; revision %d keeps serving", result.error, result.revision)
        return result

    def reload_quietly(self, *, trigger: str = "call") -> ReloadResult:
        """:meth:`reload` without reporting the result anywhere (the caller reports it)."""
        with self._lock:
            return self._reload_locked(trigger)

    def _reload_locked(self, trigger: str) -> ReloadResult:
        began = time.monotonic()
        old = self.snapshot

        def failed(error: str, stage: str) -> ReloadResult:
            took = time.monotonic() - began
            return ReloadResult(False, False, old.revision, old.digest, error, took, trigger, stage)

        stage = "read"
        try:
            raw = read_file(self.path, self.max_bytes)
            overlay = env_overlay(self.env_prefix, self._environ)
            digest = content_digest(raw, overlay)
            if digest == old.digest:
                took = time.monotonic() - began
                return ReloadResult(True, False, old.revision, old.digest, None, took, trigger)
            stage = "parse"
            data = apply_overlay(parse(raw, self.path, self.format), overlay, self.path)
            stage = "validate"
            value = self._validate(data)
        except ConfigError as exc:
            return failed(str(blame_environment(exc, self.env_prefix, self._environ)), stage)
        except Exception as exc:  # a validator's own bug: still not a reason to crash
            return failed(f"config {self.path}: {type(exc).__name__}: {exc}", stage)
        subscribers = self._subscribers
        veto = prepare_all(subscribers, old.value, value)
        if veto is not None:
            return failed(f"config {self.path}: {veto}", "prepare")
        new = Snapshot(value, old.revision + 1, digest, self.path, time.monotonic())
        self._swap(new)
        self._file_sha = hashlib.sha256(raw).hexdigest()
        commit_errors = commit_all(subscribers, old.value, value)
        took = time.monotonic() - began
        return ReloadResult(
            True, True, new.revision, digest, None, took, trigger, commit_errors=commit_errors
        )

    def _build(self) -> tuple[str, Any]:
        raw = read_file(self.path, self.max_bytes)
        overlay = env_overlay(self.env_prefix, self._environ)
        try:
            data = apply_overlay(parse(raw, self.path, self.format), overlay, self.path)
            self._file_sha = hashlib.sha256(raw).hexdigest()
            try:
                value = self._validate(data)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(self.path, f"{type(exc).__name__}: {exc}") from exc
        except ConfigError as exc:
            blamed = blame_environment(exc, self.env_prefix, self._environ)
            if blamed is exc:
                raise
            raise blamed from exc.__cause__
        return content_digest(raw, overlay), value

    def _swap(self, snapshot: Snapshot[Any]) -> None:
        # Two plain stores; each is atomic. A reader of ``current`` alone always gets one
        # whole value; one who needs value and revision together reads ``snapshot`` once.
        object.__setattr__(self, "snapshot", snapshot)
        object.__setattr__(self, "current", snapshot.value)

    # -- lifecycle and watching ---------------------------------------------------------

    def watched_since(self) -> dict[Path, str]:
        """What the watcher compares the file with when armed: the bytes behind the snapshot."""
        return {self.path: self._file_sha}

    def attach(self, lifecycle: Lifecycle, *, name: str = "config") -> None:
        """Make the store a component of ``lifecycle``, named ``name``.

        SIGHUP (and ``lifecycle.reload()``) reloads it; a failed reload makes the reload
        hook fail, so the lifecycle reports it. Results are published on the timeline as
        :class:`ConfigReloaded` / :class:`ConfigReloadFailed`. With ``watch=True`` the
        watcher moves onto the lifecycle's loop: it runs from the component's start to its
        stop, and each reload it starts is bracketed by RELOADING=1 and READY=1 facts.
        """
        from ._attach import Attachment

        if self._attachment is not None:
            raise ConfigError(
                self.path, f"the store is already attached as {self._attachment.name!r}"
            )
        if self._thread is not None:
            self._thread.stop()  # the lifecycle's loop watches from its start on
            self._thread = None
        self._attachment = Attachment(self, lifecycle, name)

    def close(self) -> None:
        """Stop watching (the store's own thread); reading stays possible. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        snap = self.snapshot
        return f"<ConfigStore {self.path} revision {snap.revision} {snap.digest[:12]}>"
