"""`EvaluateScikitLearn`: scikit-learn evaluations (``evaluate/scikitlearn``).

The class name is the original LO client's; the methods are `Evaluate`'s.
"""

from __future__ import annotations

from ._evaluate import AsyncEvaluate, Evaluate


class EvaluateScikitLearn(Evaluate):
    """scikit-learn evaluations (blocking client).

    Example:
        >>> evaluate = EvaluateScikitLearn("http://34.66.75.31")
        >>> evaluate.create_evaluate_sync(
        ...     "titanic_lr_score", "titanic_lr", "titanic_lr_trained", "score",
        ...     {"X": "$titanic_test_features", "y": "$titanic_test_labels"})
        {'result': '/api/learningOrchestra/v1/evaluate/scikitlearn/titanic_lr_score'}
    """

    API_PATH = "/evaluate/scikitlearn"


class AsyncEvaluateScikitLearn(AsyncEvaluate):
    """The asyncio twin of `EvaluateScikitLearn`."""

    API_PATH = "/evaluate/scikitlearn"
