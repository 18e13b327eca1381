"""A virtual machine whose power can be cut: the power-cut drill's node.

qemu (TCG: under KVM the guest hangs here) boots Debian's cloud kernel with a small initramfs
of our own: a static busybox, the kernel's virtio modules, the PostgreSQL binaries with the
host libraries they link, and an init that mounts the data disk and starts the server. The data
disk is an ext4 image (mkfs.ext4 -d) of a data directory initialised and schema-loaded on the
host. The guest's page cache lives in the guest: SIGKILL of qemu loses what the guest had not
written back, as a node's power cut does, and the disk image keeps what it had.

Lifecycle only: building the assets (cached by their inputs), booting, the cut, cleaning up."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conformance import tools
from conformance.errors import EnvironmentProblem
from conformance.pg.binaries import cache_root

KERNEL_PACKAGE = "linux-image-cloud-amd64"
QEMU = "qemu-system-x86_64"
GUEST_IP, GUEST_GATEWAY = "10.0.2.15", "10.0.2.2"  # qemu's user-mode network
# Load order; a module whose dependency is not in yet is retried in the next pass.
MODULES = ("drivers/virtio/virtio.ko", "drivers/virtio/virtio_ring.ko", "drivers/virtio/virtio_pci_modern_dev.ko",
           "drivers/virtio/virtio_pci_legacy_dev.ko", "drivers/virtio/virtio_pci.ko", "drivers/block/virtio_blk.ko",
           "net/core/failover.ko", "drivers/net/net_failover.ko", "drivers/net/virtio_net.ko")
READY_MARK = "drill: postgres started"
EXITED_MARK = "drill: postgres exited"  # the server stopped: it will not answer, whatever the wait
GUEST_MEMORY_MB = 1536
ZONEINFO = Path("/usr/share/zoneinfo")
LOCALE = Path("/usr/lib/locale/C.utf8")


def unavailable_reason() -> str | None:
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (Debian: apt-get install qemu-system-x86)"
    if not (shutil.which("mkfs.ext4") or Path("/sbin/mkfs.ext4").exists()):
        return "mkfs.ext4 not found (Debian: e2fsprogs)"
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return "the guest kernel comes from Debian's packages: apt-get and dpkg-deb are needed"
    return None


def ensure_qemu(progress) -> str | None:
    """qemu, installed from Debian's packages where we may (root); else the reason it is absent."""
    if shutil.which(QEMU):
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        progress("installing qemu-system-x86 from Debian's packages (first use only)")
        proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "qemu-system-x86"],
                              capture_output=True, text=True, timeout=900, check=False,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if proc.returncode == 0 and shutil.which(QEMU):
            return None
    return unavailable_reason()


# -- assets ---------------------------------------------------------------------------------

def kernel(progress) -> tuple[Path, Path]:
    """(vmlinuz, the kernel's modules folder), from Debian's cloud kernel, cached."""
    depends = tools.package_depends(KERNEL_PACKAGE)
    package = next((d for d in depends if d.startswith("linux-image-")), None)
    if package is None:
        raise EnvironmentProblem(f"apt-cache knows no {KERNEL_PACKAGE} (is this Debian?)")
    root = cache_root() / "debian" / package
    if not root.exists():
        error = tools.fetch_package(package, progress)
        if error:
            raise EnvironmentProblem(f"the guest kernel: {error}")
    vmlinuz = next((root / "boot").glob("vmlinuz-*"), None)
    modules = next((root / "lib" / "modules").iterdir(), None) if (root / "lib" / "modules").exists() else None
    if vmlinuz is None or modules is None:
        raise EnvironmentProblem(f"{root} holds no kernel (a partial download? delete it and run again)")
    return vmlinuz, modules / "kernel"


def _libraries(binaries: list[Path]) -> set[Path]:
    """The host's shared libraries the binaries need (ldd), with the loader."""
    out: set[Path] = set()
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            parts = line.split()
            for word in parts:
                if word.startswith("/") and Path(word).exists():
                    out.add(Path(word))
    return out


def _cpio_entry(out: io.BufferedWriter, name: str, mode: int, data: bytes = b"", ino: int = 0) -> None:
    """One member of a newc cpio archive (what the kernel unpacks as the initramfs)."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    out.write(b"070701" + b"".join(f"{f:08X}".encode() for f in fields) + encoded)
    out.write(b"\0" * ((4 - (110 + len(encoded)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/pg/bin
mount -t devtmpfs dev /dev; mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmp /tmp
chmod 1777 /tmp
mkdir -p /dev/shm; mount -t tmpfs -o mode=1777 shm /dev/shm
pending="{modules}"
for pass in 1 2 3 4; do
  left=""
  for m in $pending; do insmod /modules/$m 2>/dev/null || left="$left $m"; done
  pending="$left"
done
ip link set lo up; ip link set eth0 up; ip addr add {ip}/24 dev eth0; ip route add default via {gateway}
mkdir -p /data
mount -t ext4 /dev/vda /data || {{ echo "drill: no data disk"; poweroff -f; }}
echo "drill: data mounted"
# The StatefulSet's init containers, in order, as the pod's user, before the server (a failed
# one leaves the pod in Init: the server never starts).
for script in /initc/*.sh; do
  [ -e "$script" ] || continue
  su -s /bin/sh postgres -c "sh $script" > /dev/console 2>&1 || {{
    echo "{exited} init container $script failed"; while true; do sleep 3600; done; }}
done
( su -s /bin/sh postgres -c "exec /pg/bin/postgres -D {pgdata} -c config_file=/data/postgresql.conf" \\
    > /dev/console 2>&1; echo "{exited} $?" ) &
echo "{ready}"
while true; do sleep 3600; done
"""


def initramfs(pg_dir: Path, modules: Path, uid: int, gid: int, progress,
              init_scripts: tuple[tuple[str, str], ...] = (), pgdata: str = "/data/pgdata") -> Path:
    """The guest's whole userland, cached by what goes in. init_scripts: (name, shell script)
    of the pod's init containers, run in order before the server; pgdata: PGDATA in the guest
    (the manifests' own, below the data disk's mount)."""
    busybox = tools.find("busybox-static", progress=progress)
    if busybox is None:
        raise EnvironmentProblem(tools.reason("busybox-static"))
    pg_bins = [pg_dir / "bin" / b for b in ("postgres", "pg_ctl", "initdb")]
    libs = sorted(_libraries(pg_bins + sorted((pg_dir / "lib").glob("*.so"))))
    init = INIT.format(modules=" ".join(Path(m).name for m in MODULES), ip=GUEST_IP, gateway=GUEST_GATEWAY,
                       uid=uid, gid=gid, ready=READY_MARK, exited=EXITED_MARK, pgdata=pgdata)
    key = hashlib.sha256("|".join([init, str(pg_dir), str(modules), busybox, str(ZONEINFO), str(LOCALE), *map(str, libs),
                                   *(f"{name}\0{text}" for name, text in init_scripts)])
                         .encode()).hexdigest()[:16]
    target = cache_root() / "vm" / f"initramfs-{key}.cpio"
    if target.exists():
        return target
    progress(f"building the drill VM's initramfs ({len(libs)} host libraries, PostgreSQL from {pg_dir.name})")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    ino = iter(range(1, 1_000_000))
    with open(partial, "wb") as out:
        dirs = set()

        def add_dirs(path: str) -> None:
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    _cpio_entry(out, d, stat.S_IFDIR | 0o755, ino=next(ino))

        def add_file(path: str, data: bytes, mode: int = 0o755) -> None:
            add_dirs(path)
            _cpio_entry(out, path.strip("/"), stat.S_IFREG | mode, data, next(ino))

        for d in ("dev", "proc", "sys", "tmp", "data", "bin", "etc", "initc"):
            add_dirs(d + "/x")
        add_file("init", init.encode())
        for i, (name, text) in enumerate(init_scripts):
            add_file(f"initc/{i:02d}-{name}.sh", text.encode(), 0o644)
        add_file("bin/busybox", Path(busybox).read_bytes())
        add_file("etc/passwd", f"root:x:0:0::/:/bin/sh\npostgres:x:{uid}:{gid}::/tmp:/bin/sh\n".encode(), 0o644)
        add_file("etc/group", f"root:x:0:\npostgres:x:{gid}:\n".encode(), 0o644)
        add_file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)  # the statistics collector's socket
        for m in MODULES:
            add_file(f"modules/{Path(m).name}", (modules / m).read_bytes(), 0o644)
        for lib in libs:
            add_file(str(lib), lib.read_bytes())
            resolved = lib.resolve()
            if str(resolved) != str(lib):
                add_file(str(resolved), resolved.read_bytes())
        for path in sorted(pg_dir.rglob("*")):
            if path.is_file():
                add_file(f"pg/{path.relative_to(pg_dir)}", path.read_bytes(), path.stat().st_mode & 0o777)
        for folder in (ZONEINFO, LOCALE):  # the system's time zones, and the C.UTF-8 locale initdb chose
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    add_file(str(path), path.read_bytes(), 0o644)
        _cpio_entry(out, "TRAILER!!!", 0)
    partial.rename(target)
    for old in target.parent.glob("initramfs-*.cpio"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def data_disk(source: Path, image: Path, size_mb: int = 1024) -> Path:
    """An ext4 image holding source (a data directory's volume, owners kept)."""
    mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
    proc = subprocess.run([mkfs, "-q", "-F", "-d", str(source), "-L", "pgdata", str(image), f"{size_mb}M"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"mkfs.ext4 -d failed: {proc.stderr.strip()[-200:]}")
    return image


# -- running --------------------------------------------------------------------------------

@dataclass
class Machine:
    """One boot of the VM on a data disk; cut() is the power cut."""

    vmlinuz: Path
    initrd: Path
    disk: Path
    port: int
    console: Path
    proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        return [QEMU, "-accel", "tcg", "-m", str(GUEST_MEMORY_MB), "-smp", "2", "-nographic", "-no-reboot",
                "-nodefaults", "-display", "none", "-monitor", "none",
                "-kernel", str(self.vmlinuz), "-initrd", str(self.initrd),
                "-append", "console=ttyS0 panic=-1 quiet",
                "-drive", f"file={self.disk},if=virtio,format=raw,cache={_cache_mode(self.disk)}",
                "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:5432",
                "-device", "virtio-net-pci,netdev=n0", "-serial", f"file:{self.console}"]

    def boot(self) -> None:
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cut(self) -> None:
        """The power cut: the machine stops at once, its memory (and page cache) gone."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def server_exited(self) -> str | None:
        """The server's last words when it has stopped in the guest, else None."""
        text = self.log()
        if EXITED_MARK not in text:
            return None
        said = [l for l in text.splitlines() if any(k in l for k in ("PANIC:", "FATAL:", "ERROR:", "LOG:  startup"))]
        return " | ".join(l.split("] ", 1)[-1] for l in said[-3:]) or text.strip().splitlines()[-1]


def _die_with_parent() -> None:
    """In the child: SIGKILL when the drill's process dies, also by SIGKILL, so no VM outlives it."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _cache_mode(disk: Path) -> str:
    """cache=none (O_DIRECT) where the host file system takes it; else writeback, the same for
    the drill: what qemu was handed survives qemu's death either way."""
    try:
        fd = os.open(disk, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
        os.close(fd)
        return "none"
    except OSError:
        return "writeback"


def pg_directory(major: int | None = None) -> Path:
    """The unpacked PostgreSQL binaries (bin/, lib/, share/) the guest runs."""
    from conformance.pg.binaries import locate

    return locate(lambda m: None, major).bindir.parent


def scratch_dir() -> Path:
    work = Path(tempfile.mkdtemp(prefix="pc-drill-vm-"))
    work.chmod(0o711)  # the server's unprivileged account (when we are root) must reach its folder
    return work
