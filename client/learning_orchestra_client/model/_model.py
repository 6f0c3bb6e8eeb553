"""`Model` / `AsyncModel`: the client of ``model/{scikitlearn,tensorflow,pycaret,autokeras}``.

Method names and parameters are those of the original LO client's ``model._model.Model``
(``create_model_sync``/``_async``, ``search_all_models``, ``search_model``,
``delete_model``, ``wait``), and so is the body: the name is sent as ``modelName``.
``search_model_content`` and ``delete_model_async`` are the names of LO's older releases.
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans
from .._transport import Plan


class _Models(StepPlans):
    @operation
    def create_model_sync(
        self,
        name: str,
        module_path: str,
        class_name: str,
        class_parameters: dict[str, Any] | None,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Build ``module_path.class_name(**class_parameters)`` on the server, sandboxed,
        and block until the object is stored as model step `name`.

        Train, tune, evaluate and predict steps then call its methods (their
        ``parent_name``). Parameter values may be literals, ``"$step"`` / ``"$step.key"``
        (another step's output) or ``"#expr"``, a Python expression evaluated in the
        sandbox: ``{"estimator": "#sklearn.linear_model.LogisticRegression()"}`` or
        ``{"layers": ["#tensorflow.keras.layers.Dense(10)"]}``.

        Args:
            name: the model step's name (sent as ``modelName``, as LO did).
            module_path: the class's module, inside the toolkit (``"sklearn.linear_model"``,
                ``"tensorflow.keras"``).
            class_name: the class (``"LogisticRegression"``, ``"Sequential"``).
            class_parameters: keyword arguments of the constructor.
            description: free text kept with the step.
            pretty_response: return the answer as an indented JSON string.
            timeout: overall seconds to wait; None for no limit.

        Returns:
            The server's whole answer, ``{"result": "<the model's URL path>"}``.

        Raises:
            StepFailed: the object could not be built (``exc.exception`` names a bad class
                or parameter).
            InvalidRequest: a module outside the toolkit, a reference to no step.
        """
        body = {
            "modelName": name,
            "modulePath": module_path,
            "class": class_name,
            "classParameters": dict(class_parameters or {}),
            "description": description,
        }
        return self._submit(body, name, pretty_response, timeout)

    create_model_async = create_model_sync.starting(
        """Start building a model and return at once (call `wait` to block on it)."""
    )

    search_all_models = StepPlans.search_all

    @operation
    def search_model(self, name: str, pretty_response: bool = False) -> Plan[Any]:
        """``{"result": [metadata, run record, ...]}`` of a model step (newest run first)."""
        return self._search_content(name, None, 10, 0, pretty_response)

    search_model_content = StepPlans.search_content

    delete_model = StepPlans.delete

    delete_model_async = StepPlans.delete

    wait = StepPlans.wait


class Model(_Models, SyncService):
    """Model steps of one toolkit (blocking client); see `ModelScikitLearn`."""


class AsyncModel(_Models, AsyncService):
    """The asyncio twin of `Model`: the same methods, to be awaited."""
