"""Landlock (Linux 5.13+): an unprivileged process restricts its own file-system access.

The sandboxed child calls `restrict` on itself before it runs user code. What it may then do
(docs/security.md):

- read (and execute) only beneath the `read` paths;
- write (create, remove, rename, truncate files) only beneath the `write` folders;
- write to the existing files beneath `write_files` (device nodes such as /dev/null or a
  GPU's), and nothing more there;
- with ABI 6+ (Linux 6.12+), not signal processes outside its own sandbox (the worker, the
  server, other jobs) nor connect to their abstract Unix sockets;
- when `tcp_ports` is given (ABI 4+, Linux 6.7+), connect over TCP only to those ports
  (any address) and bind no TCP port at all (the fallback where no network namespace can be
  made; UDP and Unix sockets are not covered).

Ptrace and /proc/<pid>/{mem,environ,fd,root,...} of processes outside the sandbox are
refused by every ABI. Ioctls and already-open file descriptors are not restricted.
The kernel refuses to widen a restriction later, also for the process's children. Called
through `ctypes`: there is no Python binding in the standard library.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterable

# Syscall numbers are the same on x86_64 and aarch64 (the generic table).
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
RULE_NET_PORT = 2  # ABI 4
BIND_TCP = 1 << 0
CONNECT_TCP = 1 << 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2: link or rename across folders
TRUNCATE = 1 << 14  # ABI 3
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

READ = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE  # what a rule on a file may hold


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class LandlockError(OSError):
    """The kernel refused a Landlock call."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is not available."""
    try:
        version = _libc().syscall(
            SYS_CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION
        )
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _handled(abi: int) -> int:
    rights = (MAKE_SYM << 1) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise LandlockError(errno, f"landlock {what}: {os.strerror(errno)}")
    return result


def restrict(
    read: Iterable[str],
    write: Iterable[str],
    write_files: Iterable[str] = (),
    tcp_ports: Iterable[int] | None = None,
) -> int:
    """Restrict this process (and its future children) as the module docstring says.

    Paths that do not exist or cannot be opened are skipped: what cannot be named cannot be
    granted. Returns the ABI version used; raises `LandlockError` if the kernel has no
    Landlock or refuses."""
    abi = abi_version()
    if abi < 1:
        raise LandlockError(0, "landlock is not available in this kernel")
    libc = _libc()
    handled = _handled(abi)
    attr = _RulesetAttr(handled_access_fs=handled, handled_access_net=0, scoped=0)
    size = ctypes.sizeof(ctypes.c_uint64)  # ABI 1-3 know the first field only
    if tcp_ports is not None:
        if abi < 4:
            raise LandlockError(0, f"landlock ABI {abi} cannot restrict TCP (needs 4)")
        attr.handled_access_net = BIND_TCP | CONNECT_TCP
        size = 2 * ctypes.sizeof(ctypes.c_uint64)
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = ctypes.sizeof(_RulesetAttr)
    ruleset = _check(
        libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0),
        "create_ruleset",
    )
    try:
        writing = handled & ~(MAKE_CHAR | MAKE_BLOCK)
        for path in read:
            _add(libc, ruleset, path, READ)
        for path in write:
            _add(libc, ruleset, path, READ | writing)
        for path in write_files:
            _add(libc, ruleset, path, READ | (WRITE_FILE | TRUNCATE) & handled)
        for port in tcp_ports or ():
            rule = _NetPortAttr(allowed_access=CONNECT_TCP, port=port)
            _check(
                libc.syscall(SYS_ADD_RULE, ruleset, RULE_NET_PORT, ctypes.byref(rule), 0),
                f"add_rule tcp port {port}",
            )
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.syscall(SYS_RESTRICT_SELF, ruleset, 0), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _check(
            libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0),
            f"add_rule {path}",
        )
    finally:
        os.close(fd)
