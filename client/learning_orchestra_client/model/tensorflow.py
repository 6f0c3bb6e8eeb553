"""`ModelTensorflow`: a TensorFlow/Keras model kept on the server (``model/tensorflow``).

The class name is the original LO client's; the methods are `Model`'s.
"""

from __future__ import annotations

from ._model import AsyncModel, Model


class ModelTensorflow(Model):
    """TensorFlow models (blocking client).

    Example:
        >>> model = ModelTensorflow("http://34.66.75.31")
        >>> model.create_model_sync(
        ...     "mnist_net", "tensorflow.keras", "Sequential",
        ...     {"layers": ["#tensorflow.keras.layers.Flatten(input_shape=(28, 28))",
        ...                 "#tensorflow.keras.layers.Dense(10, activation='softmax')"]})
        {'result': '/api/learningOrchestra/v1/model/tensorflow/mnist_net'}
    """

    API_PATH = "/model/tensorflow"


class AsyncModelTensorflow(AsyncModel):
    """The asyncio twin of `ModelTensorflow`."""

    API_PATH = "/model/tensorflow"
