"""Imported by the job forkserver (StepType.preload of sandboxed step types): probes once
per server what this machine allows user code, so that no worker pays for it.

Whether namespaces can be made is found by trying in a forked process (3-12 ms); the answer
is cached (`functools.lru_cache`) in the forkserver, and every worker forked from it
inherits the cache, so `sandbox.plan` in a worker costs no fork. Only the case the server
is in is probed: a server does not change from root to non-root while it runs.
"""

from __future__ import annotations

import os

from . import namespaces


def probe() -> None:
    """Fill the caches `sandbox.plan` reads: the namespaces available to this server's
    user code (with a network namespace; the user namespace only when not root)."""
    own_user = os.geteuid() != 0
    namespaces.available(own_user, True)


probe()
