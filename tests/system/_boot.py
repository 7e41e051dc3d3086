"""Boot the guest once: systemd runs the share's ``run.sh``, then powers the guest off.

Software emulation (TCG, two virtual CPUs, both host cores busy): this host's ``/dev/kvm``
is a nested hypervisor that runs only PVM-built kernels. Measured on this kind of machine:
systemd up about 4 s after the kernel, multi-user about 11 s, a round trip with nothing to
run 28-30 s. The root image is opened with ``snapshot=on``: the guest's writes go to a
temporary overlay and the cached image never changes. The console (kernel, systemd's errors,
what the test unit prints) goes to ``SHARE/console.log``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Boot:
    """How one boot went."""

    seconds: float
    returncode: int
    console: Path


def qemu_missing() -> str | None:
    """Why no guest can run here, in one line, or ``None``."""
    if shutil.which("qemu-system-x86_64") is None:
        return (
            "the system suite cannot run: qemu-system-x86_64 not found "
            "(apt-get install qemu-system-x86 linux-image-amd64 debootstrap)"
        )
    return None


def boot(share: Path, cache: Path, *, timeout: float, memory: str = "1G") -> Boot:
    """Boot once with ``share`` mounted at ``/mnt/host``; returns when the guest is off.

    The guest powers itself off when ``run.sh`` ends; past ``timeout`` seconds QEMU is
    killed (the results written so far are still in the share).
    """
    kv = (cache / "kernel-version").read_text().strip()
    console = share / "console.log"
    argv = [
        "qemu-system-x86_64",
        "-accel", "tcg,thread=multi",
        "-smp", "2",
        "-cpu", "max",
        "-m", memory,
        "-machine", "q35",
        "-nographic",
        "-no-reboot",
        "-net", "none",
        "-kernel", f"/boot/vmlinuz-{kv}",
        "-initrd", str(cache / "initramfs.img"),
        "-append",
        "console=ttyS0 quiet loglevel=3 mitigations=off panic=-1 systemd.show_status=error",
        "-drive", f"file={cache / 'rootfs.img'},format=raw,if=virtio,snapshot=on",
        "-fsdev", f"local,id=share,path={share},security_model=none",
        "-device", "virtio-9p-pci,fsdev=share,mount_tag=host",
    ]  # fmt: skip
    started = time.monotonic()
    with console.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    return Boot(time.monotonic() - started, code, console)
