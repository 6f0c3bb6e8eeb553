"""Run a command as another (non-root) user: `python as_user.py UID KEEP[:KEEP...] [--no-userns]
COMMAND...`, started as root. The tests use it to run a real server that is not root.

The project's interpreter lives where other users cannot pass (pyenv under /root, mode
0700), and so do pytest's temporary folders. Like the sandbox itself (sandbox/mounts.py),
the launcher moves into a mount namespace of its own, covers each closed folder on the way
to the KEEP paths with a small tmpfs and mounts back only the KEEP paths (the interpreter,
the virtual environment, the project, the test's folder). Then it drops to UID (gid = UID,
no supplementary groups) and runs COMMAND. The server then sees a machine on which it is an
ordinary user; nothing changes outside its namespace. `--no-userns` also installs a seccomp
filter under which unshare(CLONE_NEWUSER) fails with EPERM (as on a machine with unprivileged
user namespaces disabled), to test the sandbox's fallback.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
from pathlib import Path

from learning_orchestra.sandbox import SandboxUser, closed_folders, mounts, namespaces, seccomp

#: machine -> (AUDIT_ARCH_*, unshare, clone, clone3)
SYSCALLS = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}
JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K


def no_user_namespaces() -> None:
    arch, unshare, clone, clone3 = SYSCALLS[platform.machine()]
    eperm, allow = seccomp.RET_ERRNO | errno.EPERM, seccomp.RET_ALLOW
    seccomp.install(
        seccomp.assemble(
            [
                (None, (seccomp.LD_W_ABS, 0, 0, seccomp.ARCH)),
                (None, (seccomp.JEQ_K, 0, "allow", arch)),
                (None, (seccomp.LD_W_ABS, 0, 0, seccomp.NR)),
                (None, (seccomp.JEQ_K, "nosys", 0, clone3)),  # flags in memory: unseen
                (None, (seccomp.JEQ_K, "flags", 0, unshare)),
                (None, (seccomp.JEQ_K, "flags", "allow", clone)),
                ("flags", (seccomp.LD_W_ABS, 0, 0, seccomp.ARG0)),
                (None, (JSET_K, "eperm", "allow", namespaces.CLONE_NEWUSER)),
                ("allow", (seccomp.RET_K, 0, 0, allow)),
                ("eperm", (seccomp.RET_K, 0, 0, eperm)),
                ("nosys", (seccomp.RET_K, 0, 0, seccomp.RET_ERRNO | errno.ENOSYS)),
            ]
        )
    )


def main(argv: list[str]) -> None:
    uid, keep, command = int(argv[1]), argv[2].split(":"), argv[3:]
    user = SandboxUser("lo-test", uid, uid)
    covers = closed_folders([Path(p) for p in keep], user)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(namespaces.CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    mounts.isolate(
        [{"folder": f, "options": "mode=0711,size=1m", "keep": p} for f, p in covers.items()]
    )
    if command[0] == "--no-userns":
        command = command[1:]
        no_user_namespaces()
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
