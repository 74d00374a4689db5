"""A small real disk for the faults of a full one: a loop-mounted ext4 image, else a tmpfs, of a given size (root
only), and a file that takes every free byte of it."""

import errno
import os
import subprocess
from pathlib import Path


def mount(folder: Path, image: Path, megabytes: int) -> bool:
    """Mount a file system of `megabytes` on `folder` (an ext4 image in `image`, else a tmpfs); False when neither
    can be mounted (not root, no loop devices)."""
    if os.geteuid() != 0:
        return False
    with image.open("wb") as f:
        f.truncate(megabytes * 2**20)
    ext4 = subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True).returncode == 0 and (
        subprocess.run(["mount", "-o", "loop", str(image), str(folder)], capture_output=True).returncode == 0
    )
    return ext4 or (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        == 0
    )


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Take every free byte of the disk but `leave` with one file (large writes, then small ones for the last
    blocks)."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (2**20, 4096, 512):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    os.truncate(filler, filler.stat().st_size - leave)
    return filler
