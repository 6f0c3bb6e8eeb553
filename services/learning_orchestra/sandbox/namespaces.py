"""Linux namespaces of the sandboxed child: its own mounts and network, and its own user
namespace when the server is not root.

- root: `unshare(CLONE_NEWNS | CLONE_NEWNET)`; the child then drops to the sandbox user.
- not root: `unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)` (unprivileged user
  namespaces), mapping the server's uid and gid onto themselves, so the child keeps its
  user and files keep their owner; the capabilities this gives inside the namespace are
  dropped once the mounts are made.

The new network namespace holds only `lo`, brought up here: the code reaches its own
loopback and nothing else (not the host's 127.0.0.1, not the API, not 169.254.169.254).
Abstract Unix sockets are per network namespace too. `available` tells, by trying in a
throw-away process, whether this machine allows it (a container without CAP_SYS_ADMIN,
or unprivileged user namespaces disabled, does not).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import socket
import struct

from .landlock import _libc
from .mounts import _check

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522


def flags(own_user: bool, network: bool) -> int:
    """The unshare flags: a mount namespace always, a user and a network one if asked."""
    return CLONE_NEWNS | (CLONE_NEWUSER if own_user else 0) | (CLONE_NEWNET if network else 0)


@functools.lru_cache
def available(own_user: bool, network: bool) -> bool:
    """Whether this process could enter such namespaces (tried in a forked process)."""
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid == 0:  # pragma: no cover - the child only tries, and tells by its exit code
        code = 1
        try:
            code = 0 if _libc().unshare(flags(own_user, network)) == 0 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def enter(own_user: bool, network: bool) -> None:
    """Move this process into new namespaces (see the module docstring)."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc().unshare(flags(own_user, network)), "unshare")
    if own_user:
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"{gid} {gid} 1")
    if network:
        loopback_up()


def loopback_up() -> None:
    """Bring up `lo` of this (new) network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        (current,) = struct.unpack_from("h", fcntl.ioctl(sock, SIOCGIFFLAGS, request), 16)
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", current | IFF_UP))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Give up every capability (those a new user namespace grants), for good."""
    libc = _libc()
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    with open("/proc/self/status") as handle:
        status = dict(line.split(":", 1) for line in handle if ":" in line)
    if any(int(status[k], 16) for k in ("CapEff", "CapPrm", "CapBnd")):
        raise OSError("capabilities remain after dropping them")
