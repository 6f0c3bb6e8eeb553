"""A small seccomp filter: no Unix-domain sockets of one's own making, no io_uring.

Applied by the sandboxed child when it keeps the server's user (the server is not root):
a pathname Unix socket of that user (the server's multiprocessing forkserver listener under
/tmp/pymp-*, a systemd or D-Bus user bus, docker.sock through a group) is otherwise reachable
with `connect`, which Landlock does not restrict, and each of them runs commands for whoever
connects. The filter makes `socket(AF_UNIX, ...)` and `socketpair(AF_UNIX, SOCK_DGRAM, ...)`
(a datagram socket may later `connect` anywhere) fail with EACCES, and `io_uring_setup` with
ENOSYS (io_uring's own socket operations bypass seccomp). `socketpair(AF_UNIX, SOCK_STREAM)`
(pipes between the code's own processes, asyncio) keeps working. Syscalls of another ABI
(x32, i386) kill the process. Classic BPF built here and installed with prctl: there is no
binding in the standard library.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
AF_UNIX = 1
SOCK_DGRAM = 2
SOCK_TYPE_MASK = 0xF
X32_SYSCALL_BIT = 0x40000000

LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K

#: machine -> (AUDIT_ARCH_*, socket, socketpair, io_uring_setup)
ARCHES = {
    "x86_64": (0xC000003E, 41, 53, 425),
    "aarch64": (0xC00000B7, 198, 199, 425),
}
NR, ARCH, ARG0, ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (little endian)

Insn = tuple[int, str | int, str | int, int]  # code, jump-if-true, jump-if-false, k


class SeccompError(OSError):
    """The filter could not be installed."""


def available() -> bool:
    """Whether the filter knows this machine's architecture."""
    return platform.machine() in ARCHES


def assemble(labelled: list[tuple[str | None, Insn]]) -> list[tuple[int, int, int, int]]:
    """(label, (code, jt, jf, k)) instructions with jumps to labels (0: the next one) as
    (code, jt, jf, k) with relative jumps."""
    where = {label: i for i, (label, _) in enumerate(labelled) if label}

    def offset(target: str | int, at: int) -> int:
        return target if isinstance(target, int) else where[target] - at - 1

    return [
        (code, offset(jt, i), offset(jf, i), k) for i, (_, (code, jt, jf, k)) in enumerate(labelled)
    ]


def program() -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions."""
    arch, sock, pair, uring = ARCHES[platform.machine()]
    return assemble(
        [
            (None, (LD_W_ABS, 0, 0, ARCH)),
            (None, (JEQ_K, 0, "kill", arch)),
            (None, (LD_W_ABS, 0, 0, NR)),
            (None, (JGE_K, "kill", 0, X32_SYSCALL_BIT)),
            (None, (JEQ_K, "socket", 0, sock)),
            (None, (JEQ_K, "pair", 0, pair)),
            (None, (JEQ_K, "nosys", "allow", uring)),
            ("socket", (LD_W_ABS, 0, 0, ARG0)),
            (None, (JEQ_K, "deny", "allow", AF_UNIX)),
            ("pair", (LD_W_ABS, 0, 0, ARG0)),
            (None, (JEQ_K, 0, "allow", AF_UNIX)),
            (None, (LD_W_ABS, 0, 0, ARG1)),
            (None, (AND_K, 0, 0, SOCK_TYPE_MASK)),
            (None, (JEQ_K, "deny", "allow", SOCK_DGRAM)),
            ("allow", (RET_K, 0, 0, RET_ALLOW)),
            ("deny", (RET_K, 0, 0, RET_ERRNO | errno.EACCES)),
            ("nosys", (RET_K, 0, 0, RET_ERRNO | errno.ENOSYS)),
            ("kill", (RET_K, 0, 0, RET_KILL_PROCESS)),
        ]
    )


class _Filter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def block_unix_sockets() -> None:
    """Install the filter on this process (and its future children), for good."""
    if not available():
        raise SeccompError(0, f"seccomp: no filter for the {platform.machine()} architecture")
    install(program())


def install(insns: list[tuple[int, int, int, int]]) -> None:
    """Install a classic BPF seccomp filter (no_new_privs is set first)."""
    array = (_Filter * len(insns))(*(_Filter(*insn) for insn in insns))
    prog = _Program(len(insns), array)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or (
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0
    ):
        code = ctypes.get_errno()
        raise SeccompError(code, f"seccomp: prctl: {os.strerror(code)}")
