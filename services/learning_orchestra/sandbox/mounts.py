"""The sandboxed child's own view of the file system, in its private mount namespace.

The child (sandbox/namespaces.py has made the namespace; it is still root there) covers
folders with an empty tmpfs and mounts back into each only the paths it needs:

- `/tmp`, always: a private, size-bounded tmpfs (mode 1777) that also holds the child's
  `/dev/shm` (bound from `/tmp/.shm`). No socket, pipe or file of the server or of another
  job under /tmp or /dev/shm is visible (the server's multiprocessing forkserver listener
  lives in /tmp/pymp-*); what the code leaves there vanishes with its namespace. Paths the
  child needs under /tmp (a data directory there, as in the tests) are mounted back.
- when the server runs as root, each folder that other users cannot pass on the way to what
  the sandbox user must read (pyenv under /root, mode 0700; a data directory under a 0700
  folder) gets a small tmpfs (mode 0711) with only the interpreter, the project and the
  run's scratch folder mounted back. The rest of the closed folder stays invisible to it.

Nothing changes outside the child's namespace. Needs CAP_SYS_ADMIN there (root, or the
owner of a new user namespace); without it the step fails with a message saying so.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, Sequence
from typing import Any

# Syscall numbers of the new mount API: the same on x86_64 and aarch64 (the generic table).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
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


def isolate(covers: Sequence[Mapping[str, Any]], binds: Sequence[Sequence[str]] = ()) -> None:
    """Cover each `folder` with a tmpfs mounted with `options`, keeping the `keep` paths
    inside it reachable, then bind-mount each (source, target) of `binds`. Call it in a
    mount namespace of one's own."""
    libc = ctypes.CDLL(None, use_errno=True)
    # Private: nothing mounted here propagates back to the server's namespace.
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    trees: dict[str, int] = {}
    for cover in covers:
        for path in cover["keep"]:  # detached copies, taken before their folder is covered
            trees[path] = _check(
                libc.syscall(
                    SYS_OPEN_TREE,
                    AT_FDCWD,
                    path.encode(),
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
                ),
                f"open_tree {path}",
            )
    # Folders made on the way to a kept path are 0755 (makedirs gives `mode` to the last one
    # only), owned by root in root mode: the sandbox user can pass but not write there.
    old_umask = os.umask(0o022)
    try:
        for cover in covers:
            folder = cover["folder"]
            _check(
                libc.mount(
                    b"tmpfs",
                    folder.encode(),
                    b"tmpfs",
                    MS_NOSUID | MS_NODEV,
                    cover["options"].encode(),
                ),
                f"mount tmpfs on {folder}",
            )
            for path in cover.get("folders", ()):
                os.makedirs(path, mode=0o1777, exist_ok=True)
                os.chmod(path, 0o1777)
            for path in cover["keep"]:
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
        for source, target in binds:
            _check(
                libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None),
                f"bind {source} on {target}",
            )
    finally:
        os.umask(old_umask)
        for fd in trees.values():
            os.close(fd)
