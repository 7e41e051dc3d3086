"""The guest the system suite boots: Debian 12, systemd 252 as PID 1, cgroup v2 with memory.

This machine's PID 1 is not systemd and its memory controller is on cgroup v1, so systemd's
manager side and the cgroup v2 memory files can only be met in a guest. Built once and kept
(``$WARDEN_VMTEST_CACHE``, default ``/var/cache/warden-vmtest``), about 4 minutes:

* a Debian 12 root filesystem from Debian's archive (debootstrap ``minbase`` plus systemd,
  python3, procps for ``/bin/kill``, util-linux's ``setpriv``, runc), the test unit enabled
  (it runs the share's ``run.sh`` once multi-user is up, then powers off);
* the host's Debian kernel (``linux-image-amd64``) and an initramfs of a static busybox and
  the kernel's virtio, ext4 and 9p modules, whose ``/init`` mounts ``/dev/vda`` and hands
  over to systemd;
* an ext4 image of the root filesystem, booted with ``snapshot=on`` so it never changes.

The guest runs under software emulation (TCG): this host's ``/dev/kvm`` runs only
PVM-built kernels, and QEMU aborts with ``-enable-kvm`` on Debian's. The share is the host
directory the guest mounts at ``/mnt/host`` (9p); a ``.pth`` file puts ``/mnt/host/site``
on the guest Python's path, so warden installed there on the host is imported in the guest.

Run as root. ``python3 -m tests.system._image build`` builds it (the suite builds it when no
cached one exists).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

#: What the guest needs beyond minbase: systemd as PID 1, python3 for warden and the checks,
#: procps (/bin/kill, which app.service's ExecReload runs), runc, python-is-python3 (the
#: Containerfile's CMD says ``python``).
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python-is-python3", "procps", "runc")
#: The Debian packages the host needs to build and boot the guest.
HOST_PACKAGES = ("qemu-system-x86", "linux-image-amd64", "debootstrap", "cpio", "xz-utils")
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: Modules the initramfs loads to mount the root (virtio disk, ext4) and the share (9p).
MODULES = ("virtio_pci", "virtio_blk", "ext4", "9p", "9pnet_virtio")
#: Units that only slow the boot of a guest that lives for one run.
MASKED = (
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "console-getty.service",
    "getty.target",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "e2scrub_reap.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-firstboot.service",
    "systemd-pstore.service",
    "systemd-timesyncd.service",
    "proc-sys-fs-binfmt_misc.automount",
)

INIT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modlist); do insmod /lib/modules/$m 2>/dev/null; done
for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -t ext4 -o rw /dev/vda /newroot || { echo "warden-vmtest: root mount failed"; poweroff -f; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /lib/systemd/systemd
"""

#: Runs the share's run.sh once the system is up, then powers the guest off, whatever it did.
UNIT = """\
[Unit]
Description=warden system suite: the host's checks, then power off
After=multi-user.target
RequiresMountsFor=/mnt/host
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/sh /mnt/host/run.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""

FSTAB = (
    "/dev/vda / ext4 rw,noatime 0 0\n"
    "host /mnt/host 9p trans=virtio,version=9p2000.L,msize=262144,nofail,"
    "x-systemd.device-timeout=5s 0 0\n"
)


def cache_dir() -> Path:
    return Path(os.environ.get("WARDEN_VMTEST_CACHE", "/var/cache/warden-vmtest"))


def recipe_id() -> str:
    """What the built image depends on: this recipe (a change rebuilds it)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def ready(cache: Path) -> bool:
    """Whether ``cache`` holds an image built by this very recipe."""
    marker = cache / "image.id"
    return marker.exists() and marker.read_text().strip() == recipe_id()


def missing_host_tools() -> list[str]:
    """The host programs the build needs and does not find."""
    tools = ("debootstrap", "qemu-system-x86_64", "mkfs.ext4", "cpio", "xz", "modprobe")
    return [tool for tool in tools if shutil.which(tool) is None]


def kernel_version() -> str:
    """The newest Debian kernel installed on the host (``linux-image-amd64``)."""
    found = sorted(
        (p.name for p in Path("/lib/modules").glob("*-amd64") if (p / "modules.dep").exists()),
        key=lambda v: [int(x) if x.isdigit() else x for x in v.replace("-", ".").split(".")],
    )
    found = [v for v in found if Path(f"/boot/vmlinuz-{v}").exists()]
    if not found:
        raise RuntimeError(
            "no Debian kernel on the host (/boot/vmlinuz-*-amd64); "
            "apt-get install linux-image-amd64"
        )
    return found[-1]


def build(cache: Path | None = None) -> Path:
    """Build the image into ``cache`` unless this recipe's is there; return ``cache``."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if ready(cache):
            return cache
        missing = missing_host_tools()
        if missing:
            raise RuntimeError(
                f"cannot build the guest: {', '.join(missing)} not found; "
                f"apt-get install {' '.join(HOST_PACKAGES)}"
            )
        (cache / "image.id").unlink(missing_ok=True)
        kv = kernel_version()
        rootfs = _rootfs(cache)
        _configure(rootfs)
        _initramfs(cache, kv)
        _ext4(cache, rootfs)
        (cache / "kernel-version").write_text(kv + "\n")
        (cache / "image.id").write_text(recipe_id() + "\n")
    return cache


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(*argv: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in argv], check=True, cwd=cwd, stdin=subprocess.DEVNULL)


def _rootfs(cache: Path) -> Path:
    """Debian's minbase and the guest's packages (kept while the package list is the same)."""
    rootfs = cache / "rootfs"
    wanted = ",".join(PACKAGES)
    done = cache / "rootfs.packages"
    if done.exists() and done.read_text().strip() == wanted and rootfs.is_dir():
        return rootfs
    done.unlink(missing_ok=True)
    if rootfs.exists():
        shutil.rmtree(rootfs)
    _run("debootstrap", "--variant=minbase", f"--include={wanted}", SUITE, rootfs, MIRROR)
    done.write_text(wanted + "\n")
    return rootfs


def _configure(rootfs: Path) -> None:
    """The guest's few settings: no gettys, root on vda, the share, the test unit."""
    (rootfs / "etc" / "hostname").write_text("warden-vmtest\n")
    (rootfs / "etc" / "fstab").write_text(FSTAB)
    (rootfs / "mnt" / "host").mkdir(parents=True, exist_ok=True)
    _run("chroot", rootfs, "passwd", "-d", "root")
    (rootfs / "etc" / "machine-id").unlink(missing_ok=True)
    _run("chroot", rootfs, "systemd-machine-id-setup")
    _run("chroot", rootfs, "systemctl", "mask", *MASKED)
    unit = rootfs / "etc" / "systemd" / "system" / "warden-vmtest.service"
    unit.write_text(UNIT)
    _run("chroot", rootfs, "systemctl", "enable", "warden-vmtest.service")
    # warden installed on the host into the share is what the guest's python3 imports.
    site = rootfs / "usr" / "local" / "lib" / "python3.11" / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "warden-host.pth").write_text("/mnt/host/site\n")


def _initramfs(cache: Path, kv: str) -> None:
    """A static busybox and the modules to mount the root and the share."""
    work = cache / "initramfs"
    if work.exists():
        shutil.rmtree(work)
    for sub in ("bin", "dev", "proc", "sys", "newroot", "lib/modules"):
        (work / sub).mkdir(parents=True)
    # busybox-static unpacked, not installed: installing it would replace the host's busybox.
    debs = cache / "debs"
    if debs.exists():
        shutil.rmtree(debs)
    debs.mkdir()
    _run("apt-get", "download", "busybox-static", cwd=debs)
    (deb,) = debs.glob("busybox-static_*.deb")
    _run("dpkg-deb", "-x", deb, debs / "x")
    shutil.copy(debs / "x" / "bin" / "busybox", work / "bin" / "busybox")
    names: list[str] = []
    for module in MODULES:
        out = subprocess.run(
            ["modprobe", "-S", kv, "--show-depends", module],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in out.splitlines():
            words = line.split()
            if len(words) < 2 or words[0] != "insmod":
                continue
            source = Path(words[1])
            name = source.name.removesuffix(".xz")
            if name in names:
                continue
            target = work / "lib" / "modules" / name
            if source.suffix == ".xz":
                with target.open("wb") as out_file:
                    subprocess.run(["xz", "-dc", str(source)], check=True, stdout=out_file)
            else:
                shutil.copy(source, target)
            names.append(name)
    (work / "modlist").write_text("".join(f"{n}\n" for n in names))
    (work / "init").write_text(INIT)
    (work / "init").chmod(0o755)
    files = subprocess.run(["find", "."], cwd=work, check=True, capture_output=True).stdout
    archive = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"], cwd=work, input=files, check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    with (cache / "initramfs.img.tmp").open("wb") as out_file:
        subprocess.run(["gzip", "-1"], input=archive, stdout=out_file, check=True)
    (cache / "initramfs.img.tmp").replace(cache / "initramfs.img")


def _ext4(cache: Path, rootfs: Path) -> None:
    tmp = cache / "rootfs.img.tmp"
    tmp.unlink(missing_ok=True)
    with tmp.open("wb") as image:
        image.truncate(2 * 2**30)
    _run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", rootfs, tmp)
    tmp.replace(cache / "rootfs.img")


def main(argv: list[str]) -> int:
    if argv[1:] != ["build"]:
        print("usage: python3 -m tests.system._image build", file=sys.stderr)
        return 2
    print(f"guest image: {build()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
