"""Making folders reachable for the sandbox user in a private mount namespace (root only).

When the server runs as root its Python often lives where other users cannot pass (pyenv
under /root, mode 0700), and so may the data directory (pytest's temp folders are 0700).
The child, still root, then moves into a mount namespace of its own, covers each closed
folder with an empty tmpfs (mode 0711) and mounts back into it only the paths it needs:
the interpreter, the project, its own scratch folder. Everything else in the closed folder
stays invisible to it. Nothing changes outside the child's namespace. Needs CAP_SYS_ADMIN
(a VM or a privileged container); without it the step fails with a message saying so.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, Sequence

# Syscall numbers of the new mount API: the same on x86_64 and aarch64 (the generic table).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
CLONE_NEWNS = 0x00020000
MS_NOSUID = 2
MS_NODEV = 4
MS_REC = 16384
MS_PRIVATE = 1 << 18
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def expose(covers: Mapping[str, Sequence[str]]) -> None:
    """For each closed folder (key), make only the listed paths inside it reachable."""
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Private: nothing mounted here propagates back to the server's namespace.
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    trees: dict[str, int] = {}
    for paths in covers.values():
        for path in paths:  # detached copies, taken before their folder is covered
            trees[path] = _check(
                libc.syscall(
                    SYS_OPEN_TREE,
                    AT_FDCWD,
                    path.encode(),
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
                ),
                f"open_tree {path}",
            )
    old_umask = os.umask(0)
    try:
        for folder, paths in covers.items():
            _check(
                libc.mount(
                    b"tmpfs", folder.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0711,size=1m"
                ),
                f"mount tmpfs on {folder}",
            )
            for path in paths:
                os.makedirs(path, mode=0o711, exist_ok=True)
                _check(
                    libc.syscall(
                        SYS_MOVE_MOUNT,
                        trees[path],
                        b"",
                        AT_FDCWD,
                        path.encode(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    ),
                    f"move_mount {path}",
                )
    finally:
        os.umask(old_umask)
        for fd in trees.values():
            os.close(fd)
