"""The sandboxed child: `python -m learning_orchestra.sandbox.child <inputs/sandbox.json>`.

Started by a job's worker (see `learning_orchestra.sandbox`), already as the unprivileged
sandbox user when the server runs as root, in the job's `work/` folder. Before it reads
anything the user sent it confines itself: it dies with the worker, takes the CPU-time and
process limits, and applies Landlock. Then it loads the parameters (parents' outputs from
their verified copies, `#expr` values evaluated here), runs the code with the parameters as
variables (a `Request`) or calls a toolkit's class (a `Call`: transform/explore steps), and
writes `response` in its natural format, the plot a `Call` asks for, and a JSON report to
`out/`. A `Job` (builder/sparkml) is a toolkit's function that runs the whole job itself
and hands over several outputs one by one (`Outputs`), each announced as soon as it is
written; its report only says whether the job as a whole ended well.
Anything the code prints goes to the worker's log file, i.e. the run's `functionMessage`.

Pooled (sandbox/pool.py): the server's supervisor starts, per sandbox family, a zygote
(`--zygote`) with the sandbox's scrubbed environment; it imports the family's modules and
then only forks, on request, pooled interpreters: copies of a clean interpreter, each for
one job. A pooled interpreter waits on its control socket for its job (the config's path,
the run's environment and the log's fd, from the job's worker) and runs it in a fork of
itself, which confines itself and runs exactly as above; the pooled interpreter only waits
for that fork, kills whatever it left and reports its exit code to the worker.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import difflib
import importlib
import inspect
import json
import linecache
import math
import os
import re
import resource
import signal
import socket
import struct
import sys
import tempfile
import traceback
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any

from . import PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, _prctl, landlock, mounts, namespaces, seccomp
from .protocol import (
    ACCEPTED,
    EXITED,
    FILENAME,
    MAX_MESSAGE,
    MAX_PROGRESS,
    MAX_TRACEBACK,
    OUTPUT_EVENTS,
    OUTPUTS,
    PROGRESS_ENV,
    READY,
    REPORT,
    RESPONSE,
    Call,
    Expression,
    Failure,
    Job,
    Request,
    StagedOutput,
)

PR_SET_PDEATHSIG = 1
MAX_JOB_MESSAGE = 1 << 20
MAX_LISTED = 1000  # keys or columns named in the report
#: Toolkits an `#expr` may use by name, imported only when the expression mentions them.
EXPR_MODULES = {
    "np": "numpy",
    "numpy": "numpy",
    "pd": "pandas",
    "pandas": "pandas",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "sklearn": "sklearn",
    "autokeras": "autokeras",
}


# -- confinement ----------------------------------------------------------------------------
def die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)


def limit(cpu_seconds: int, max_processes: int | None) -> None:
    """CPU seconds (SIGXCPU, then SIGKILL one second later), no core files, process count."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        cpu_seconds = min(cpu_seconds, max(hard - 1, 1))
    # SIGXCPU can be caught; the hard limit's SIGKILL cannot.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if max_processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))


def become(user: dict[str, int]) -> None:
    """Drop root for the sandbox user for good: no supplementary groups, real, effective
    and saved ids all changed."""
    os.setgroups([])
    os.setgid(user["gid"])
    os.setuid(user["uid"])
    if os.getuid() != user["uid"] or os.geteuid() != user["uid"] or os.getgid() != user["gid"]:
        raise OSError(f"could not become uid {user['uid']}")


def confine(config: dict[str, Any]) -> None:
    """Everything the worker asked for, in order, before any user input is read."""
    unshare = config.get("unshare")
    if unshare is not None:
        namespaces.enter(own_user=unshare["user"], network=unshare["network"])
    if config.get("mounts"):
        if unshare is None:
            raise OSError(
                "folders the code needs are closed to LO_SANDBOX_USER and no mount namespace "
                "can be made here (it needs CAP_SYS_ADMIN)"
            )
        mounts.isolate(config["mounts"], config.get("binds", ()))
    if config.get("user") is not None:
        become(config["user"])
    elif unshare is not None and unshare["user"]:
        namespaces.drop_capabilities()
    os.chdir(config["work"])  # again: in the new namespace, by its path
    die_with_parent(config["parent"])  # after the uid change, which clears it
    limit(config["cpu_seconds"], config.get("max_processes"))
    if config.get("block_unix_sockets"):
        seccomp.block_unix_sockets()
    rules = config.get("landlock")
    if rules is not None:  # the worker found Landlock available: never run without it
        landlock.restrict(
            rules["read"], rules["write"], rules["write_files"], rules.get("tcp_ports")
        )


# -- parameters -----------------------------------------------------------------------------
def evaluate(expression: Expression) -> Any:
    """An `#expr` value, with numpy/np, pandas/pd and the ML toolkits available by name."""
    source = expression.source
    try:
        code = compile(source, "#expr", "eval")
    except SyntaxError as exc:
        raise Failure(f"#{source}: not a valid Python expression: {exc.msg}") from None
    namespace: dict[str, Any] = {}
    for name, module in EXPR_MODULES.items():
        if re.search(rf"\b{name}\b", source):
            try:
                namespace[name] = importlib.import_module(module)
            except ImportError:
                raise Failure(
                    f"#{source}: uses {module}, which is not installed on this server"
                ) from None
            for dotted in re.findall(rf"\b{name}((?:\.[A-Za-z_]\w*)+)", source):
                _import_submodules(module, dotted)
    try:
        return eval(code, namespace)
    except Exception as exc:
        raise Failure(f"#{source}: {type(exc).__name__}: {exc}", _trace(exc, "#expr")) from None


def _import_submodules(package: str, dotted: str) -> None:
    """Import the submodules `dotted` names under `package` (`.linear_model` of
    `sklearn.linear_model.LogisticRegression()`): scikit-learn, for one, does not import its
    submodules, so the attribute would not exist. Stops at the first name that is not one."""
    path = package
    for part in dotted.lstrip(".").split("."):
        path = f"{path}.{part}"
        try:
            importlib.import_module(path)
        except Exception:  # not a submodule (a class, a function): eval reports real errors
            return


def load(staged: StagedOutput) -> Any:
    from ..core.errors import JobFailed
    from ..core.formats import read_item, read_output

    folder = Path(staged.folder)
    try:
        if staged.key is None:
            return read_output(folder, staged.format, staged.files, staged.name)
        return read_item(folder, staged.format, staged.files, staged.key, staged.name)
    except JobFailed as exc:
        raise Failure(str(exc)) from None
    except Exception as exc:
        ref = f"${staged.name}" + ("" if staged.key is None else f".{staged.key}")
        raise Failure(f"{ref}: could not load it: {type(exc).__name__}: {exc}") from None


def resolve(value: Any, cache: dict[tuple[str, str | None], Any]) -> Any:
    """`value` with every marker replaced by what it stands for."""
    if isinstance(value, StagedOutput):
        ref = (value.name, value.key)
        if ref not in cache:
            cache[ref] = load(value)
        return cache[ref]
    if isinstance(value, Expression):
        return evaluate(value)
    if isinstance(value, dict):
        return {k: resolve(v, cache) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, cache) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, cache) for v in value)
    return value


# -- running --------------------------------------------------------------------------------
def _user_frames(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """The traceback from the user's code on (our runner's frames left out)."""
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != filename:
        start = start.tb_next
    return start or tb


def _trace(exc: BaseException, filename: str) -> str:
    """The traceback of `exc` from the user's code on, the user's frames first; then the
    exceptions it came from (a library's ``raise ... from err``), with their frames."""
    user = exc.__traceback__
    lines = traceback.format_exception(type(exc), exc, _user_frames(user, filename), chain=False)
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        lines.append("\nwhich came from:\n\n")
        lines += traceback.format_exception(type(cause), cause, cause.__traceback__)
    text = "".join(lines)
    return text if len(text) <= MAX_TRACEBACK else text[:MAX_TRACEBACK] + "\n..."


def _line(exc: BaseException) -> int | None:
    """The line of the user's code the exception came through last."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def run_prelude(prelude: tuple[str, ...]) -> None:
    """Call each ``"module:function"`` of a request's prelude (named by the worker, never by
    the user), before the user's code runs."""
    for name in prelude:
        module, function = name.split(":")
        try:
            getattr(importlib.import_module(module), function)()
        except Exception as exc:
            message = f"the step's prelude {name} failed: {type(exc).__name__}: {exc}"
            raise Failure(message) from None


def run(request: Request, parameters: dict[str, Any]) -> Any:
    """Execute the code with `parameters` bound as (global) variables; its `response`."""
    namespace = execute(request.code, parameters)
    if "response" not in namespace:
        raise Failure("the code must assign `response`: its value is the step's output")
    return namespace["response"]


def compiled(source: str) -> CodeType:
    """User code `source` compiled (its tracebacks show its lines); a `Failure` saying where
    its syntax is wrong otherwise (a toolkit's `Job` checks so before starting anything)."""
    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    try:
        return compile(source, FILENAME, "exec")
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        trace = "".join(traceback.format_exception_only(type(exc), exc))
        raise Failure(f"{type(exc).__name__}{where}: {exc.msg}{text}", trace) from None


def execute(source: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Execute user code `source` with `parameters` bound as (global) variables; the names it
    left defined. Its errors are a `Failure` whose traceback starts in the user's code (also
    for a toolkit's `Job`, which runs user code itself: builder/sparkml's modelingCode)."""
    code = compiled(source)
    # One dict as globals: names the code defines at top level are visible in its functions.
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    namespace.update(parameters)
    try:
        exec(code, namespace)
    except SystemExit as exc:
        raise Failure(
            f"the code called exit({exc.code!r}): assign `response` and let the code end instead"
        ) from None
    except BaseException as exc:
        line = _line(exc)
        where = f" (line {line})" if line else ""
        raise Failure(
            f"{type(exc).__name__}: {exc}{where}", _trace(exc, FILENAME), type(exc).__name__
        ) from None
    return namespace


# -- calling a toolkit (transform/explore steps) ----------------------------------------------
def _import(module_path: str) -> Any:
    """The module `module_path`; also one reached as an attribute (`tensorflow.math`)."""
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        parent, _, attr = module_path.rpartition(".")
        missing = exc
    except Exception as exc:
        raise Failure(
            f"modulePath: importing {module_path} failed: {type(exc).__name__}: {exc}",
            _trace(exc, ""),
        ) from None
    module = _import(parent) if parent else None
    if module is None or not inspect.ismodule(getattr(module, attr, None)):
        raise Failure(f"modulePath: there is no module {module_path} ({missing})") from None
    return getattr(module, attr)


def _attribute(owner: Any, name: str, field: str, where: str) -> Any:
    """`owner.name`, or a Failure naming `field` and the closest names `owner` has."""
    if not name.startswith("_") or name == "__call__":
        try:
            return getattr(owner, name)
        except AttributeError:
            pass
    close = difflib.get_close_matches(name, [n for n in dir(owner) if not n.startswith("_")])
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise Failure(f"{field} {name!r} not found in {where}{hint}")


def _checked_call(function: Any, arguments: dict[str, Any], field: str, what: str) -> Any:
    """`function(**arguments)`; a Failure naming `field` when the names do not fit its
    signature, and one naming `what` when the call itself raises. A `*args` parameter is
    given by its name with a list: `{"arrays": [X, y]}` calls `function(X, y)`."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have none: let the call decide
        signature = None
    positional: tuple[Any, ...] = ()
    if signature is not None:
        star = next((p for p in signature.parameters.values() if p.kind is p.VAR_POSITIONAL), None)
        if star is not None and star.name in arguments:
            arguments = dict(arguments)
            given = arguments.pop(star.name)
            if not isinstance(given, list | tuple):
                raise Failure(
                    f"{field}: {star.name} of {what} is *{star.name}: give it as a list of "
                    "the positional arguments"
                )
            positional = tuple(given)
        accepted = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        ]
        listed = f"(its parameters: {', '.join(accepted) or 'none'})"
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = [] if takes_any else [n for n in arguments if n not in accepted]
        if unknown:  # named first: a misspelt name also makes a required one look missing
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise Failure(f"{field}: {what} has no parameter {unknown[0]!r}{hint} {listed}")
        try:
            signature.bind(*positional, **arguments)
        except TypeError as exc:
            raise Failure(f"{field}: {exc} for {what} {listed}") from None
    try:
        return function(*positional, **arguments)
    except Exception as exc:
        name = type(exc).__name__
        raise Failure(f"{what}: {name}: {exc}", _trace(exc, ""), name) from None


def _class_of(request: Call) -> tuple[Any, str]:
    """The object `request.class_name` of module `request.module_path` (a class, or a
    submodule or other callable), and its qualified name for messages."""
    where = str(request.module_path)
    name = str(request.class_name)
    module = _import(where)
    owner = getattr(module, name, None)
    if owner is None:
        with contextlib.suppress(ImportError):
            owner = importlib.import_module(f"{where}.{name}")
    if owner is None:
        owner = _attribute(module, name, "class", where)
    return owner, f"{where}.{name}"


def construct(adapter: Any, request: Call, class_parameters: dict[str, Any]) -> Any:
    """The "construct" shape: `module_path.class_name(**class_parameters)`, or, when the
    adapter defines `construct(step, cls, class_parameters, new, call)`, whatever it makes
    of it (a PyCaret experiment is built without arguments, then set up with them).
    `new(arguments)` is the checked construction of the class; `call(obj, method,
    arguments)` a checked method call whose faults name classParameters."""
    owner, qualified = _class_of(request)
    if inspect.ismodule(owner) or not callable(owner):
        raise Failure(f"class: {qualified} is a {type(owner).__name__}, not a class")

    def new(arguments: dict[str, Any]) -> Any:
        return _checked_call(owner, arguments, "classParameters", qualified)

    custom = getattr(adapter, "construct", None)
    if custom is None:
        return new(class_parameters)

    def checked(obj: Any, name: str, given: dict[str, Any]) -> Any:
        bound = _attribute(obj, name, "method", qualified)
        return _checked_call(bound, given, "classParameters", f"{qualified}.{name}")

    try:
        return custom(request.step, owner, class_parameters, new, checked)
    except Failure:
        raise
    except Exception as exc:
        name = type(exc).__name__
        raise Failure(f"{qualified}: {name}: {exc}", _trace(exc, ""), name) from None


def invoke(target: Any, method: str, method_parameters: dict[str, Any], where: str) -> Any:
    """`target.method(**method_parameters)`, naming the field at fault when it does not fit."""
    bound = _attribute(target, method, "method", where)
    if not callable(bound):
        raise Failure(f"method: {where}.{method} is not callable")
    return _checked_call(bound, method_parameters, "methodParameters", f"{where}.{method}")


def construct_and_call(request: Call, parameters: dict[str, Any]) -> tuple[Any, Any]:
    """The "construct+call" shape: `module_path.class_name(**classParameters)`, then its
    `method(**methodParameters)`; (the object, the method's result).

    `class_name` may also name a submodule (`sklearn` + `model_selection`, for module
    functions such as `train_test_split`; classParameters must then be empty) or any other
    callable that builds the object. A class method or static method is called on the class
    itself when classParameters is empty (e.g. `ConfusionMatrixDisplay.from_predictions`)."""
    owner, qualified = _class_of(request)
    class_parameters = parameters.get("classParameters") or {}
    method = str(request.method)
    static = inspect.isclass(owner) and isinstance(
        inspect.getattr_static(owner, method, None), classmethod | staticmethod
    )
    if inspect.ismodule(owner) or (static and not class_parameters):
        if class_parameters:
            raise Failure(
                f"classParameters: {qualified} is a module, not a class: leave them empty"
            )
        target = owner
    elif callable(owner):
        target = _checked_call(owner, class_parameters, "classParameters", qualified)
    else:
        raise Failure(f"class: {qualified} is a {type(owner).__name__}, not a class")
    return target, invoke(target, method, parameters.get("methodParameters") or {}, qualified)


def _invoke_as_adapter_says(
    adapter: Any, step: str, target: Any, method: str, arguments: dict[str, Any]
) -> Any:
    """The "invoke" shape's call: `target.method(**arguments)`, or, when the adapter
    defines `invoke(step, target, method, arguments, call)`, whatever it makes of it (a
    TensorFlow tune runs fit on clones of the model); `call(obj, method, arguments)` is the
    checked call above, for the adapter to use."""
    where = type(target).__name__
    custom = getattr(adapter, "invoke", None)
    if custom is None:
        return invoke(target, method, arguments, where)

    def checked(obj: Any, name: str, given: dict[str, Any]) -> Any:
        return invoke(obj, name, given, type(obj).__name__)

    try:
        return custom(step, target, method, arguments, checked)
    except Failure:
        raise
    except Exception as exc:
        name = type(exc).__name__
        raise Failure(f"{where}.{method}: {name}: {exc}", _trace(exc, ""), name) from None


def call(request: Call, parameters: dict[str, Any], out: Path) -> tuple[Any, dict[str, Any]]:
    """Run the call in its shape; (the value to store, metadata for the step), as the
    toolkit's adapter decides (`outcome`, `natural`), plotted when asked."""
    adapter = importlib.import_module(request.adapter)
    if request.shape == "construct":
        target = construct(adapter, request, parameters.get("classParameters") or {})
        result = None
    elif request.shape == "invoke":
        target = parameters["target"]
        method = str(request.method)
        arguments = dict(parameters.get("methodParameters") or {})
        extra = getattr(adapter, "extra_arguments", None)
        if extra is not None:
            what = f"methodParameters could not be prepared for {method}"
            arguments = _hook(what, extra, request.step, target, method, arguments)
        result = _invoke_as_adapter_says(adapter, request.step, target, method, arguments)
    else:
        target, result = construct_and_call(request, parameters)
    outcome = getattr(adapter, "outcome", None)
    value, metadata = (
        _hook(
            f"the result ({type(result).__name__}) could not be kept",
            outcome,
            request.step,
            target,
            result,
        )
        if outcome is not None
        else (target if result is None else result, {})
    )
    value = _hook(
        f"the result ({type(value).__name__}) could not be stored", adapter.natural, value
    )
    if request.plot:
        what = f"the result ({type(value).__name__}) could not be plotted"
        _hook(what, adapter.plot, value, out / Path(request.plot).name)
    return value, metadata


def _hook(what: str, hook: Any, *args: Any) -> Any:
    """An adapter hook's answer; what it raises fails the step, saying `what` happened (a
    `Failure` it raises says so itself)."""
    try:
        return hook(*args)
    except Failure:
        raise
    except Exception as exc:
        raise Failure(f"{what}: {type(exc).__name__}: {exc}", _trace(exc, "")) from None


def progress(**fields: Any) -> None:
    """Report progress (``epoch=3, epochs=10, loss=0.4``): the job's worker shows the
    latest report as the step's `progress`. Fields must be JSON; a report over 4 KiB is
    dropped. Read from the environment, not a global: the running child is `__main__`,
    and code that imports this module gets a second copy of it."""
    path = os.environ.get(PROGRESS_ENV)
    line = json.dumps(_finite(fields), default=str)
    if path and len(line) <= MAX_PROGRESS:
        with open(path, "a") as handle:
            handle.write(line + "\n")


def _finite(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with NaN and infinite floats as None (JSON has no such numbers)."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in fields.items()
    }


# -- a toolkit's whole job (builder/sparkml) -------------------------------------------------
class Outputs:
    """What a `Job` function hands its outputs over with, one at a time: it writes output
    `key` into `folder(key)`, then calls `ready(key, **metadata)`, or `failed(key, message)`
    when that output could not be made; the worker commits (or fails) each output as soon
    as its event is written, while the job goes on with the next."""

    def __init__(self, out: Path, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self._root = out / OUTPUTS
        self._events = out / OUTPUT_EVENTS

    def folder(self, key: str) -> Path:
        """Where output `key` is written: a folder that does not exist yet (the worker
        copies the regular files directly in it)."""
        self._root.mkdir(exist_ok=True)
        return self._root / key

    def ready(self, key: str, **metadata: Any) -> None:
        """Output `key` is complete in `folder(key)`: the worker commits it now."""
        self._event({"key": key, "ok": True, "metadata": _finite(metadata)})

    def failed(self, key: str, message: str, trace: str | None = None) -> None:
        """Output `key` could not be made: the worker fails its step with `message`."""
        self._event({"key": key, "ok": False, "message": message[:MAX_MESSAGE], "traceback": trace})

    def _event(self, event: dict[str, Any]) -> None:
        with self._events.open("a") as handle:  # the worker reads complete lines only
            handle.write(json.dumps(event, default=str) + "\n")


def run_job(job: Job, out: Path) -> None:
    """Call the `Job`'s function with its parameters and an `Outputs` writer. What it raises
    fails the outputs it has not announced (a `Failure` with its own message)."""
    module, _, name = job.function.partition(":")
    function = getattr(importlib.import_module(module), name)
    _hook(f"the job {job.function} failed", function, job.parameters, Outputs(out, job.outputs))


def describe(response: Any, kind: str, fmt: str) -> dict[str, Any]:
    """What the report tells about the response (recorded in the step's metadata)."""
    report: dict[str, Any] = {"kind": kind, "format": fmt, "type": type(response).__name__}
    if isinstance(response, dict):
        report["keys"] = [str(k) for k in list(response)[:MAX_LISTED]]
    if fmt == "list":
        report["items"] = len(response)
    if fmt == "npy":
        report["shape"] = [int(n) for n in response.shape]
    if fmt == "parquet":
        report["fields"] = [str(c) for c in list(response.columns)[:MAX_LISTED]]
        report["rows"] = len(response)
    return report


def save(response: Any, folder: Path) -> dict[str, Any]:
    from ..core.formats import save_output

    folder.mkdir()
    try:
        kind, fmt = save_output(folder, response)
    except Exception as exc:
        raise Failure(
            f"`response` could not be stored: {type(exc).__name__}: {exc}", _trace(exc, FILENAME)
        ) from None
    return describe(response, kind, fmt)


def main(argv: list[str], parent: int | None = None) -> int:
    """Run the job whose config is at `argv[1]`; `parent`: the pid to die with, when not
    the worker's (a pooled interpreter's fork dies with the pooled interpreter)."""
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # nothing of the server's is inherited
    config = json.loads(Path(argv[1]).read_text())
    if parent is not None:
        config["parent"] = parent
    out = Path(config["out"])
    report: dict[str, Any]
    try:
        confine(config)
    except Exception as exc:  # never run the code less confined than asked
        report = {"ok": False, "message": f"the code could not be sandboxed: {exc}"}
        (out / REPORT).write_text(json.dumps(report))
        os._exit(0)
    try:
        import cloudpickle

        with open(config["request"], "rb") as handle:
            request: Request | Call | Job = cloudpickle.load(handle)  # by the worker: trusted
        metadata: dict[str, Any] = {}
        if isinstance(request, Job):
            run_job(request, out)
            report = {"ok": True}
        else:
            parameters = resolve(request.parameters, {})
            if isinstance(request, Call):
                response, metadata = call(request, parameters, out)
            else:
                run_prelude(request.prelude)
                response = run(request, parameters)
            report = {"ok": True, **save(response, out / RESPONSE), "metadata": metadata}
    except Failure as failure:
        report = {
            "ok": False,
            "message": failure.message,
            "traceback": failure.trace,
            "exception": failure.kind,
        }
    except MemoryError:
        report = {"ok": False, "message": "MemoryError", "exception": "MemoryError"}
    (out / REPORT).write_text(json.dumps(report, default=str))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    # Not a normal exit: threads the code left running must not keep the job alive.
    os._exit(0)


# -- pooled: started ahead of need ----------------------------------------------------------
def _children() -> list[int]:
    """This process's children (it is single-threaded here)."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN
        import psutil

        with contextlib.suppress(psutil.Error):
            return [child.pid for child in psutil.Process().children()]
        return []


def kill_leftovers() -> None:
    """Kill and reap every process left under this one, until none is left: what the code
    started, setsid or not (this process is their subreaper: when their parent dies they
    become its children, killed in the next round)."""
    for _ in range(1000):
        left = _children()
        if not left:
            return
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _reap_children(*_: Any) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def zygote(control: int, parent: int, modules: list[str]) -> None:
    """A family's zygote: import `modules`, then fork a pooled interpreter (`pooled`) for
    each socket the supervisor sends on `control`, answering its pid. It never sees a job,
    and dies with the supervisor. Never returns."""
    die_with_parent(parent)
    # Its /proc files (and those of its forks until they get a job) stay closed to user
    # code running as the same user (non-root server): no reading, no ptrace.
    _prctl(PR_SET_DUMPABLE, 0)
    os.closerange(3, control)
    os.closerange(control + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir("/")
    for module in modules:  # the family's toolkits; a broken one is the job's problem
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    with contextlib.suppress(Exception):  # the adapters that storing a response asks (~9 ms)
        from ..core.formats import saving_codecs

        saving_codecs()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopped by the supervisor, not a tty
    signal.signal(signal.SIGCHLD, _reap_children)  # its pooled interpreters, once done
    sock = socket.socket(fileno=control)
    me = os.getpid()
    try:
        sock.sendall(READY)
        while True:
            message, fds, _, _ = socket.recv_fds(sock, 16, 1)
            if not message:
                os._exit(0)  # the supervisor is gone or stops the pool
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                try:
                    sock.close()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    pooled(fds[0], me)
                finally:
                    os._exit(1)
            os.close(fds[0])
            sock.sendall(struct.pack("!i", pid))
    except OSError:
        os._exit(1)


def pooled(control: int, parent: int) -> None:
    """A pooled interpreter (see the module docstring): forks at once the process that will
    take the job and run it, waits for that one to end, kills whatever it left and reports
    its exit code on `control`. Never returns."""
    die_with_parent(parent)  # the zygote, which dies with the server
    # Like the worker: the run's orphans become ours (killed below), and our /proc files
    # stay closed to the code, which runs as our user where the server is not root.
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    sock = socket.socket(fileno=control)
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            _take_job(sock, me)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    kill_leftovers()
    with contextlib.suppress(OSError):  # the worker is gone (or it never got a job)
        sock.sendall(EXITED + struct.pack("!i", os.waitstatus_to_exitcode(status)))
    os._exit(0)


def _take_job(sock: socket.socket, parent: int) -> None:
    """The run of a pooled interpreter: wait for the job on `sock`, close it, and run the
    job (`main`) as a freshly started child would. Never returns."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        sock.sendall(READY)
        message, fds, _, _ = socket.recv_fds(sock, MAX_JOB_MESSAGE, 1)
        if not message or len(fds) != 1:
            os._exit(0)  # the pool let it go (stale, or the server stops)
        job = json.loads(message)
        sock.sendall(ACCEPTED)
    except (OSError, ValueError):
        os._exit(1)
    sock.close()  # nothing of it is left to the code
    _prctl(PR_SET_DUMPABLE, 1)  # as a freshly started child (the memory watch reads it)
    log_fd = fds[0]
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.umask(0o077)
    os.environ.clear()
    os.environ.update(job["env"])
    tempfile.tempdir = None  # TMPDIR is the run's now
    os.chdir(job["cwd"])
    if sys.path and sys.path[0] == "/":  # the zygote's cwd, where a fresh child has `work/`
        sys.path[0] = job["cwd"]
    sys.argv = [__file__, job["config"]]
    main(sys.argv, parent=parent)
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        zygote(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    sys.exit(main(sys.argv))
