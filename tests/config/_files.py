"""Config files written the ways real writers write them: in place, by rename, by the kubelet."""

from __future__ import annotations

import datetime
import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write a temporary file in the same directory and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_in_place(path: Path, text: str) -> None:
    """Truncate and write the same inode (what ``echo > file`` or a careless editor does)."""
    with open(path, "r+b" if path.exists() else "wb") as out:
        out.truncate(0)
        out.write(text.encode())


class ConfigMap:
    """A Kubernetes ConfigMap volume built for real, updated the way the kubelet does it.

    The layout the kubelet's atomic writer makes (``pkg/volume/util/atomic_writer.go``):
    the files in a timestamped directory ``..2026_12_01_10_00_00.000000001``; a symlink
    ``..data`` to it; and for each key a symlink ``key -> ..data/key``. An update writes a
    new timestamped directory, points ``..data_tmp`` at it, renames ``..data_tmp`` over
    ``..data`` (the atomic step), then removes the old directory.
    """

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._count = 0
        current = self._write_dir(files)
        (root / "..data").symlink_to(current.name)
        for key in files:
            (root / key).symlink_to(f"..data/{key}")

    def path(self, key: str) -> Path:
        return self.root / key

    def update(self, files: dict[str, str]) -> None:
        old = Path(os.readlink(self.root / "..data"))
        new = self._write_dir(files)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(new.name)
        tmp.replace(self.root / "..data")
        for child in (self.root / old).iterdir():
            child.unlink()
        (self.root / old).rmdir()

    def _write_dir(self, files: dict[str, str]) -> Path:
        self._count += 1
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y_%m_%d_%H_%M_%S")
        directory = self.root / f"..{stamp}.{self._count:09d}"
        directory.mkdir()
        for key, text in files.items():
            (directory / key).write_text(text)
        return directory
