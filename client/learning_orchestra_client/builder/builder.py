"""`BuilderPycaret`, `BuilderAutokeras`: a whole AutoML script as one step
(``builder/pycaret``, ``builder/autokeras``); `BuilderSparkMl`: PySpark feature code, then
one fitted Spark MLlib classifier per output table (``builder/sparkml``).

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

`BuilderSparkMl` is the original client's class of that name, methods and parameters alike:
one POST makes a predictions table per classifier, ``{test_dataset_name}{code}``, each a step
of its own to wait for, page and delete (``wait``, ``search_builder_register_predictions``,
``delete_builder``).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from .._service import START_ONLY, AsyncService, SyncService, operation
from .._step import CodeStepPlans, StepPlans
from .._transport import Plan, Request, answer_of, raise_for_answer, treat
from ..observe._plans import follow_plan

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


class _SparkMl(StepPlans):
    API_PATH = "/builder/sparkml"

    @operation
    def run_spark_ml_sync(
        self,
        train_dataset_name: str,
        test_dataset_name: str,
        modeling_code: str,
        model_classifiers: list[str],
        pretty_response: bool = False,
        *,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Run PySpark `modeling_code` on two tables, fit each classifier of
        `model_classifiers` on its features, and block until every predictions table is
        stored.

        Args:
            train_dataset_name: the table bound as ``training_df`` (a Spark DataFrame).
            test_dataset_name: the table bound as ``testing_df``; also the prefix of the
                outputs' names, ``{test_dataset_name}{code}`` (e.g. ``titanic_testingLR``).
            modeling_code: PySpark code that defines ``features_training`` (a vector column
                ``features`` and a numeric ``label``), ``features_testing`` and optionally
                ``features_evaluation``, on which ``accuracy`` and ``F1`` are measured.
            model_classifiers: codes of the classifiers to fit, one output each: ``"LR"``
                (logistic regression), ``"DT"`` (decision tree), ``"RF"`` (random forest),
                ``"GB"`` (gradient-boosted trees), ``"NB"`` (naive Bayes).
            pretty_response: return the answer as an indented JSON string.
            description: free text kept with every output.
            timeout: overall seconds to wait for all the outputs; None for no limit.

        Returns:
            The server's whole answer to the POST, one URL path per classifier in the order
            asked: ``{"result": ["/api/learningOrchestra/v1/builder/sparkml/<name>", ...]}``.
            Each output's metadata (`wait`, `search_builder`) holds its ``accuracy``, ``F1``,
            ``fitTime`` (seconds) and ``classifier``.

        Raises:
            StepFailed: an output failed, e.g. the code raised or defined no
                ``features_training`` (``exc.exception`` says why; the first output to end
                failed is named).
            InvalidRequest: an unknown classifier code, a table that does not exist, a test
                table whose columns differ from the training table's.
            Conflict: an output of that name exists (delete it first: outputs are not
                re-run in place).
        """
        body: dict[str, Any] = {
            "trainDatasetName": train_dataset_name,
            "testDatasetName": test_dataset_name,
            "modelingCode": modeling_code,
            "classifiersList": list(model_classifiers),
        }
        if description is not None:
            body["description"] = description
        response = yield Request("POST", self.api_path, json=body)
        envelope = answer_of(response)
        if timeout is not START_ONLY:
            yield from follow_plan(output_names(envelope["result"]), timeout, self._long_poll)
        return treat(envelope, pretty_response)

    run_spark_ml_async = run_spark_ml_sync.starting(
        """Start the builder and return at once with its outputs' paths,
        ``{"result": ["<URL path of {test_dataset_name}{code}>", ...]}``; `wait` on each
        output's name. Arguments as in `run_spark_ml_sync`."""
    )

    search_all_builders = StepPlans.search_all

    @operation
    def search_builder_register_predictions(
        self,
        builder_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Plan[Any]:
        """A page of the predictions table `builder_name` (``{test_dataset_name}{code}``):
        ``{"result": [metadata, row, ...]}``; ``skip=1`` skips the metadata (see
        `DatasetCsv.search_dataset_content` for `query`, `limit` and `skip`)."""
        return self._search_content(builder_name, query, limit, skip, pretty_response)

    @operation
    def search_builder(self, builder_name: str, pretty_response: bool = False) -> Plan[Any]:
        """The metadata of output `builder_name`, ``{"result": [metadata]}``: its status,
        ``accuracy``, ``F1``, ``fitTime`` and ``classifier`` (LO's page of one item)."""
        return self._search_content(builder_name, None, 1, 0, pretty_response)

    @operation
    def delete_builder(self, builder_name: str, pretty_response: bool = False) -> Plan[Any]:
        """Delete output `builder_name` (one classifier's predictions; the others stay):
        ``{"result": "<a one-line message>"}``."""
        return self._delete(builder_name, pretty_response)

    @operation
    def wait(self, dataset_name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until output `dataset_name` is stored and return its metadata (LO's wait:
        `timeout` is the poll interval, see `Observer.wait`). Raises `StepFailed` when that
        output failed, with the reason (its classifier's error, or the modeling code's)."""
        return self._wait(dataset_name, timeout)


def output_names(paths: Any) -> list[str]:
    """The step names at the end of the URL paths a builder/sparkml POST answers."""
    listed = paths if isinstance(paths, list) else [paths]
    return [urllib.parse.unquote(str(path).rstrip("/").rsplit("/", 1)[-1]) for path in listed]


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


class BuilderSparkMl(_SparkMl, SyncService):
    """Spark MLlib classifiers on features made by PySpark code (blocking client).

    Example:
        >>> builder = BuilderSparkMl("http://34.66.75.31")
        >>> answer = builder.run_spark_ml_async(
        ...     train_dataset_name="titanic_training_projection",
        ...     test_dataset_name="titanic_testing_projection",
        ...     modeling_code=modeling_code,  # defines features_training, features_testing
        ...     model_classifiers=["LR", "DT"],
        ... )
        >>> answer
        {'result': ['/api/learningOrchestra/v1/builder/sparkml/titanic_testing_projectionLR',
                    '/api/learningOrchestra/v1/builder/sparkml/titanic_testing_projectionDT']}
        >>> builder.wait("titanic_testing_projectionLR")["accuracy"]
        0.81

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries``.
    """


class AsyncBuilderSparkMl(_SparkMl, AsyncService):
    """The asyncio twin of `BuilderSparkMl`: the same methods, to be awaited."""


#: The spelling of the other builders' classes (``BuilderPycaret``).
BuilderSparkml = BuilderSparkMl
AsyncBuilderSparkml = AsyncBuilderSparkMl
