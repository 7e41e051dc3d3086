"""The demo's files on disk: releases, a ConfigMap-style config volume, logs, the writes.

One directory holds it all (``--keep DIR`` keeps it; otherwise a temporary one, removed at
the end)::

    releases/1/release.json    one directory per release; ``current`` points at one
    current -> releases/2      swapped by a rename, as a deploy tool does
    config/app.json -> ..data/app.json
    config/..data -> ..2025_06_01_12_00_00.000000003   (the kubelet's layout: ``..data``
    config/..2025_06_01_12_00_00.000000003/app.json        is renamed over atomically)
    writes.log                 the service's acknowledged writes (``ID PID`` lines)
    logs/                      warden.log (its JSON log), service.log, requests.csv, ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from .._exceptions import ConfigurationError
from ._release import Release

CONFIG_NAME = "app.json"


class Workspace:
    """The demo's directory. ``root`` must not exist yet, or be an empty directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.current = root / "current"
        self.config_dir = root / "config"
        self.config = self.config_dir / CONFIG_NAME
        self.writes = root / "writes.log"
        self.logs = root / "logs"
        self.made_root = False  # made here (else: an empty directory given with --keep)
        self._config_version = 0

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """Make (or take, if empty and ours) ``root`` and its layout; one-line error if not
        (:class:`ConfigurationError`); ``OSError`` if the layout cannot be written, with
        nothing of it left."""
        made = False
        try:
            root.mkdir(mode=0o700)
            made = True
        except FileExistsError:
            if root.is_symlink() or not root.is_dir():
                raise ConfigurationError(
                    f"--keep {root}: exists and is not a directory; give a new path"
                ) from None
            if any(root.iterdir()):
                raise ConfigurationError(
                    f"--keep {root}: the directory is not empty; give a new or an empty one"
                ) from None
            if root.stat().st_uid != os.geteuid():
                raise ConfigurationError(
                    f"--keep {root}: the directory belongs to another user; give one of yours"
                ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"--keep {root}: cannot create it ({exc.strerror}); give a writable path"
            ) from None
        space = cls(root)
        space.made_root = made
        try:
            for directory in (space.releases, space.config_dir, space.logs):
                directory.mkdir()
        except OSError:
            space.discard()
            raise
        return space

    # -- releases --------------------------------------------------------------------------

    def deploy(self, number: int, *, fault: str | None = None) -> None:
        """Write release ``number`` to disk (if new) and point ``current`` at it."""
        directory = self.releases / str(number)
        if not directory.exists():
            directory.mkdir()
            Release(number, fault).write(directory)
        _swap_symlink(self.current, Path("releases") / str(number))

    # -- the config volume -----------------------------------------------------------------

    def configure(self, text: str) -> None:
        """Replace the config as the kubelet updates a ConfigMap volume.

        A new timestamped directory gets the file; a ``..data_tmp`` symlink to it is renamed
        over ``..data`` (one atomic step), and ``app.json -> ..data/app.json`` never changes.
        The directory it replaced is removed afterwards.
        """
        self._config_version += 1
        name = time.strftime("..%Y_%m_%d_%H_%M_%S") + f".{self._config_version:09d}"
        fresh = self.config_dir / name
        fresh.mkdir()
        (fresh / CONFIG_NAME).write_text(text)
        data = self.config_dir / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        _swap_symlink(data, Path(name))
        if not self.config.is_symlink():
            self.config.symlink_to(Path("..data") / CONFIG_NAME)
        if old is not None:
            shutil.rmtree(self.config_dir / old, ignore_errors=True)

    # -- the writes on disk ----------------------------------------------------------------

    def writes_on_disk(self) -> set[str]:
        """The ids of every write the service has appended to its file so far."""
        try:
            text = self.writes.read_text()
        except FileNotFoundError:
            return set()
        return {line.split(" ", 1)[0] for line in text.splitlines() if line}

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root)

    def discard(self) -> None:
        """Remove what the demo made: the directory, or (one given empty) what it holds."""
        if self.made_root:
            self.remove()
            return
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _swap_symlink(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` in one step: a new symlink renamed over the old one."""
    tmp = link.with_name(link.name + "_tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(link)
