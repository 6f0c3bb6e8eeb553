"""One adapter per ML toolkit: what is specific to scikit-learn, TensorFlow, ... (DESIGN.md).

A toolkit module (`toolkits/scikitlearn.py`, ...) declares a `TOOLKIT` (the packages a
`modulePath` may name, the distributions whose versions are recorded as `libraries`, the
environment its sandboxed child needs) and the hooks its sandboxed child calls: always
`natural(value)` (the value in its natural, storable form) and `plot(value, path)` (a PNG of
it); when defined, `outcome(step, target, result)` (what a step keeps, and metadata such as
metrics), `extra_arguments(step, target, method, arguments)` (e.g. a progress callback),
`invoke(step, target, method, arguments, call)` (runs an "invoke" call itself: a search) and
`construct(step, cls, class_parameters, new, call)` (builds a model step's object itself: a
PyCaret experiment, then its `setup`).
docs/architecture.md, "Toolkit protocol", has the whole picture. An adapter that stores
its toolkit's objects its own way (Keras models as `.keras`) declares those formats on its
`TOOLKIT` (`formats`) and the codecs themselves as its module's `CODECS` (core/formats.py).
Declaring a `TOOLKIT` imports nothing heavy: the API process reads it. `toolkits/calls.py`
turns a toolkit into its step types.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata

from ..core.steptype import SANDBOX_BASE_MODULES, SandboxFamily


@dataclass(frozen=True)
class Toolkit:
    tool: str  # the `{tool}` of routes: "scikitlearn"
    title: str  # for messages: "scikit-learn"
    extra: str  # the pyproject extra that installs it: "sklearn"
    packages: tuple[str, ...]  # the top-level packages a modulePath may start with
    distributions: tuple[str, ...]  # whose versions go into a step's `libraries`
    adapter: str  # the module holding natural() and plot(), imported in the sandbox only
    env: Mapping[str, str] = field(default_factory=dict)  # for the sandboxed child
    # Imported by the family's pre-started sandbox interpreters (sandbox/pool.py) before
    # they get a job, besides the base modules: the toolkit itself, e.g. ("sklearn",).
    preimport: tuple[str, ...] = ()
    # The formats the adapter's codecs store outputs in, each with its main file (what a
    # folder in that format must hold): {"keras": "model.keras"}. The codecs are the
    # adapter module's `CODECS` (core/formats.py), imported only by a job that saves a value
    # of this toolkit or loads one of these formats.
    formats: Mapping[str, str] = field(default_factory=dict)
    # The keys of a step's metadata its adapter reports (`outcome`): "metrics", "history",
    # ... Only these are kept of what the sandboxed child reports (sandbox/protocol.py).
    metadata: tuple[str, ...] = ()
    # Whether its steps plot (explore/{tool}): its interpreters then import matplotlib too.
    plots: bool = True

    @property
    def family(self) -> SandboxFamily:
        """The sandbox family of this toolkit's steps: its own pool of interpreters."""
        # matplotlib: explore steps plot with it (~0.25 s to import)
        plotting = ("matplotlib.pyplot",) if self.plots else ()
        modules = (*SANDBOX_BASE_MODULES, *plotting, *self.preimport, self.adapter)
        return SandboxFamily(self.tool, modules, tuple(sorted(self.env.items())))

    def libraries(self) -> dict[str, str]:
        """Installed versions of the toolkit's distributions (read without importing them)."""
        versions = {}
        for name in self.distributions:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return versions


#: Every toolkit module of this package: `toolkits/{tool}.py` declares its `TOOLKIT`.
TOOLKITS = ("scikitlearn", "tensorflow", "pycaret", "autokeras")


def toolkit(tool: str) -> Toolkit:
    """The adapter declared for `tool` ("scikitlearn", "tensorflow")."""
    declared: Toolkit = importlib.import_module(f"{__name__}.{tool}").TOOLKIT
    return declared


@functools.cache
def declared_toolkits() -> tuple[Toolkit, ...]:
    """The declarations of every toolkit (`TOOLKITS`), read without importing any toolkit."""
    return tuple(toolkit(tool) for tool in TOOLKITS)


__all__ = ["TOOLKITS", "Toolkit", "declared_toolkits", "toolkit"]
