"""`BuilderPycaret`, `BuilderAutokeras`: a whole AutoML script as one step
(``builder/pycaret``, ``builder/autokeras``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.builder.builder.BuilderPycaret``; a method that returns the
server's answer returns the whole parsed JSON object (``{"result": ...}``), or with
``pretty_response=True`` that object as an indented JSON string. `BuilderAutokeras` (LO had
none) has the same methods under ``autokeras`` names; the `timeout` of the ``*_sync``
methods, `delete_execution_async` and the asyncio twins are additions.

The code runs as `FunctionPython`'s does (the same sandbox and the same ``parameters``:
``"$step"``, ``"$step.key"``, ``"#expression"``) and must assign ``response``. Files it
writes in its working directory (``pull().to_csv('score')``, ``save_model(...)``) are kept
as the step's files; `BuilderPycaret.search_report` reads one back as text.
"""

from __future__ import annotations

from .._service import AsyncService, SyncService, operation
from .._step import CodeStepPlans
from .._transport import Plan, Request, raise_for_answer

#: LO's route for reading a file a builder/pycaret script wrote.
REPORT_PATH = "/explore/getlocaldatapycaret"


class _Pycaret(CodeStepPlans):
    API_PATH = "/builder/pycaret"

    run_pycaret_sync = CodeStepPlans.run_sync
    run_pycaret_async = CodeStepPlans.run_async

    @operation
    def search_report(self, file_name: str) -> Plan[str]:
        """The text of file `file_name` that a builder/pycaret script wrote, e.g. the
        ``'score'`` of ``classification.pull().to_csv('score', sep='\\t')``.

        LO's route ``GET /explore/getlocaldatapycaret``, with the name as the ``filename``
        query parameter (LO sent it as a JSON body of a GET, which proxies may drop).

        Raises:
            NotFound: no builder/pycaret step wrote a file of that name.
        """
        response = yield Request("GET", REPORT_PATH, params={"filename": file_name})
        raise_for_answer(response)
        return response.text

    #: The name the AutoML monograph's Titanic script uses for `search_report`.
    search_builder_register_predictions = search_report


class _Autokeras(CodeStepPlans):
    API_PATH = "/builder/autokeras"

    run_autokeras_sync = CodeStepPlans.run_sync
    run_autokeras_async = CodeStepPlans.run_async


class BuilderPycaret(_Pycaret, SyncService):
    """A whole PyCaret script as one step (blocking client).

    Example:
        >>> builder = BuilderPycaret("http://34.66.75.31")
        >>> builder.run_pycaret_sync(
        ...     "titanic_pycaret",
        ...     parameters={"train": "$titanic"},
        ...     code="from pycaret import classification\\n"
        ...     "classification.setup(data=train, target='Survived', session_id=1)\\n"
        ...     "classification.compare_models(include=['lr'], fold=3)\\n"
        ...     "classification.pull().to_csv('score', sep='\\t')\\n"
        ...     "response = None\\n",
        ... )
        {'result': '/api/learningOrchestra/v1/builder/pycaret/titanic_pycaret'}
        >>> print(builder.search_report("score"))   # the leaderboard, tab-separated

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries``.
    """


class AsyncBuilderPycaret(_Pycaret, AsyncService):
    """The asyncio twin of `BuilderPycaret`: the same methods, to be awaited."""


class BuilderAutokeras(_Autokeras, SyncService):
    """A whole AutoKeras script as one step (blocking client); methods as
    `BuilderPycaret`'s, named ``run_autokeras_sync``/``run_autokeras_async``.

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries``.
    """


class AsyncBuilderAutokeras(_Autokeras, AsyncService):
    """The asyncio twin of `BuilderAutokeras`: the same methods, to be awaited."""


#: The spelling of LO's ``ModelAutoKeras`` (capital K).
BuilderAutoKeras = BuilderAutokeras
AsyncBuilderAutoKeras = AsyncBuilderAutokeras
