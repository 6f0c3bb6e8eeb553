"""The generic operations behind every LO step family: create, list, read a page, delete, wait.

Each family module declares LO's method names and parameters once (see `_service`) and maps
them onto these plans; the blocking and asyncio classes follow from that declaration.

Return values are LO's: a method that returns the server's answer returns the whole parsed
JSON object (``{"result": ...}``), or with ``pretty_response=True`` that object as an
indented JSON string; `wait` returns the step's metadata itself.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, ClassVar

import httpx

from ._service import START_ONLY, operation
from ._transport import BASE_PATH, Plan, Request, answer_of, decode_body, quote_name, treat
from .observe._plans import wait_plan


def table_step_body(
    input_name: str, output_name: str, names: list[str] | None = None
) -> dict[str, Any]:
    """The body of a step that makes a table from a table (projection, histogram, ...)."""
    body: dict[str, Any] = {"inputDatasetName": input_name, "outputDatasetName": output_name}
    if names is not None:
        body["names"] = list(names)
    return body


def call_body(
    name: str,
    module_path: str,
    class_name: str,
    class_parameters: dict[str, Any] | None,
    method_name: str,
    method_parameters: dict[str, Any] | None,
    description: str,
) -> dict[str, Any]:
    """`modulePath.class(**classParameters).method(**methodParameters)`, named `name`."""
    return {
        "name": name,
        "modulePath": module_path,
        "class": class_name,
        "classParameters": dict(class_parameters or {}),
        "method": method_name,
        "methodParameters": dict(method_parameters or {}),
        "description": description,
    }


class StepPlans:
    """Plans of the operations on the steps of one type (the route is `api_path`)."""

    #: Route of the step type, relative to the REST base path (set by subclasses).
    API_PATH: ClassVar[str] = ""

    _api_path: str | None = None
    _long_poll: float

    def __init__(self, cluster_ip: str, api_path: str | None = None, **options: Any) -> None:
        """`cluster_ip` and the keyword-only options (``token``, ``timeout``, ``long_poll``,
        ``client``, ``retries``) are `SyncService`'s; `api_path` overrides `API_PATH`."""
        self._set_api_path(api_path)
        super().__init__(cluster_ip, **options)  # type: ignore[call-arg]

    @property
    def api_path(self) -> str:
        """The route requests go to: `API_PATH`, unless the constructor was given another."""
        return self._api_path or self.API_PATH

    def _set_api_path(self, api_path: str | None) -> None:
        path = api_path or self.API_PATH
        if not path:
            raise ValueError("api_path is required, e.g. '/dataset/csv'")
        if path.startswith(BASE_PATH):  # LO passed the full path
            path = path[len(BASE_PATH) :]
        self._api_path = "/" + path.strip("/")

    def _item_path(self, name: str) -> str:
        return f"{self.api_path}/{quote_name(name)}"

    def _submit(
        self,
        body: dict[str, Any],
        name: str,
        pretty_response: bool,
        timeout: float | None,
        *,
        method: str = "POST",
    ) -> Plan[Any]:
        """Send `body` to the family's route, then `_settle` the answer."""
        response = yield Request(method, self.api_path, json=body)
        return (yield from self._settle(response, name, pretty_response, timeout))

    def _settle(
        self, response: httpx.Response, name: str, pretty_response: bool, timeout: float | None
    ) -> Plan[Any]:
        """Unless `timeout` is `START_ONLY`, wait until step `name` has ended, at most
        `timeout` seconds (StepFailed if it failed); the server's whole answer, LO-treated."""
        envelope = answer_of(response)
        if timeout is not START_ONLY:
            yield from wait_plan(name, timeout, self._long_poll)
        return treat(envelope, pretty_response)

    def _get(self, path: str, params: dict[str, Any], pretty_response: bool) -> Plan[Any]:
        response = yield Request("GET", path, params=params)
        return treat(answer_of(response), pretty_response)

    @operation
    def search_all(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Plan[Any]:
        """The metadata of every step of this type (not their content):
        ``{"result": [metadata, ...]}``; `skip` and `limit` page it. Each family has it
        under LO's name too (``search_all_datasets``, ``search_all_projections``, ...)."""
        params: dict[str, Any] = {"skip": skip}
        if limit is not None:
            params["limit"] = limit
        return self._get(self.api_path, params, pretty_response)

    def _search_content(
        self,
        name: str,
        query: dict[str, Any] | str | None,
        limit: int,
        skip: int,
        pretty_response: bool,
    ) -> Plan[Any]:
        params: dict[str, Any] = {"limit": limit, "skip": skip}
        if query:
            params["query"] = query if isinstance(query, str) else json.dumps(query)
        return self._get(self._item_path(name), params, pretty_response)

    def _delete(self, name: str, pretty_response: bool) -> Plan[Any]:
        """LO's delete: a step that is not there is nothing to do — a warning, not an error
        (LO's scripts start by deleting what a previous run left; its client returned
        ``{}`` then). The server's answer, LO-treated."""
        response = yield Request("DELETE", self._item_path(name))
        if response.status_code == 404:
            body = decode_body(response)
            message = body.get("result") if isinstance(body, dict) else None
            warnings.warn(f"nothing to delete: {message or name}", stacklevel=2)
            return treat({"result": message or f"there is no step named {name!r}"}, pretty_response)
        return treat(answer_of(response), pretty_response)

    def _wait(self, name: str, timeout: float | None) -> Plan[dict[str, Any]]:
        """LO's ``wait(name, timeout)``: until the step ends, however long that takes.

        As with LO's change-stream wait, `timeout` is how long each poll lasts, not a
        limit on the wait; None uses the client's `long_poll`.
        """
        return wait_plan(name, None, timeout or self._long_poll)

    @operation
    def search_content(
        self,
        name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Plan[Any]:
        """A page of step `name`: ``{"result": [metadata, item, ...]}`` — table rows, or
        run records newest first (``skip=1, limit=1`` is the latest run). `skip` and `limit`
        apply to that combined list, as in LO; `query` filters table rows (MongoDB syntax,
        a dict or a JSON string). Each family has it under LO's name too."""
        return self._search_content(name, query, limit, skip, pretty_response)

    @operation
    def delete(self, name: str, pretty_response: bool = False) -> Plan[Any]:
        """Delete step `name` and its output, cancelling it if it runs:
        ``{"result": "<a one-line message>"}``. Each family has it under LO's name too."""
        return self._delete(name, pretty_response)

    @operation
    def wait(self, name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until step `name` has ended and return its metadata (LO's ``wait``).

        As LO's change-stream wait did, this waits as long as the step takes: `timeout` is
        how long each poll lasts, not a limit (`Orchestra.step(name).wait(timeout=...)` is
        a deadline). Raises `StepFailed` when the step failed."""
        return self._wait(name, timeout)


class MethodStepPlans(StepPlans):
    """train, tune, evaluate and predict: LO gave them the same parameters, so their
    operations are declared once here and each family names them as LO did
    (``create_training_sync = MethodStepPlans.create_sync``, ...)."""

    @operation
    def create_sync(
        self,
        name: str,
        model_name: str,
        parent_name: str,
        method_name: str,
        parameters: dict[str, Any] | None,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Call `method_name(**parameters)` on the object stored by step `parent_name`, on
        the server, sandboxed, and block until what it gives is stored as step `name`.

        What is kept is the toolkit's decision: a training keeps the fitted model (a new
        object: the parent's is never changed; a Keras ``History`` lands in the metadata
        as ``history``, each epoch as progress); a tune keeps the best model of its search
        (``bestParams``, ``bestScore``; scikit-learn: a search estimator's ``cvResults``;
        TensorFlow: ``searchSpace``/``objective`` in `parameters`, the ``trials``); an
        evaluation keeps its metrics, readable as ``wait(name)["metrics"]``; a prediction
        keeps the predictions (an array or a table).

        Args:
            name: the new step's name.
            model_name: the model step the pipeline started from (LO's ``modelName``).
            parent_name: the step whose stored object's method is called: the model, or a
                step that stored a model (a training, a tune step).
            method_name: the method to call (``"fit"``, ``"predict"``, ``"score"``, ...).
            parameters: its keyword arguments; values may be literals, ``"$step"`` /
                ``"$step.key"`` (another step's output) or ``"#expr"`` (a Python expression
                evaluated in the sandbox).
            description: free text kept with the step.
            pretty_response: return the answer as an indented JSON string.
            timeout: overall seconds to wait; None for no limit.

        Returns:
            The server's whole answer, ``{"result": "<the step's URL path>"}``.

        Raises:
            StepFailed: the call failed (``exc.exception`` names a bad method or parameter).
            InvalidRequest: a parent or a referenced step that does not exist, or a parent
                that holds no object to call.
        """
        body = {
            "name": name,
            "modelName": model_name,
            "parentName": parent_name,
            "method": method_name,
            "methodParameters": dict(parameters or {}),
            "description": description,
        }
        return self._submit(body, name, pretty_response, timeout)

    create_async = create_sync.starting(
        """Start the method call and return at once (call `wait` to block on it); arguments
        as in the ``*_sync`` method."""
    )


class CodeStepPlans(StepPlans):
    """function/python and the builders (builder/pycaret, builder/autokeras): user code run
    by the server, sandboxed, with the same body and LO's "execution" names, so their
    operations are declared once here and each family names its run methods as LO did
    (``run_function_sync = CodeStepPlans.run_sync``, ...)."""

    @operation
    def run_sync(
        self,
        name: str,
        parameters: dict[str, Any],
        code: str,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Run `code` as step `name` and block until it has ended.

        Args:
            name: name of the step and of its output (letters, digits, ``_`` and ``-``).
            parameters: the code's variables, ``{name: value}``; values may be literals,
                ``"$step"`` (another step's output, e.g. a dataset as a pandas DataFrame),
                ``"$step.key"`` (an item of a dict output) or ``"#expression"`` (evaluated
                in the sandbox).
            code: Python source that assigns ``response``, the step's output (``None`` is
                fine when what matters is the files the code writes: they are kept as the
                step's files).
            description: free text kept with the step.
            pretty_response: return the answer as an indented JSON string.
            timeout: overall seconds to wait; None for no limit.

        Returns:
            The server's whole answer to the POST, ``{"result": "<the step's URL path>"}``.

        Raises:
            StepFailed: the code failed: ``exc.exception`` says why (e.g. the error and its
                line), ``exc.traceback`` shows where in the code.
            InvalidRequest: e.g. a parameter name that is not a Python variable name, or a
                ``$reference`` to a step that does not exist.
        """
        body = {
            "name": name,
            "functionParameters": parameters,
            "function": code,
            "description": description,
        }
        return self._submit(body, name, pretty_response, timeout)

    run_async = run_sync.starting(
        """Start running `code` and return at once (call `wait` to block on it); arguments
        as in the ``*_sync`` method."""
    )

    search_all_executions = StepPlans.search_all
    search_execution_content = StepPlans.search_content
    delete_execution = StepPlans.delete
    #: LO's other name for `delete_execution` (the deletion is immediate).
    delete_execution_async = StepPlans.delete
