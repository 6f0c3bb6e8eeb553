"""One adapter per ML toolkit (scikit-learn, TensorFlow, AutoKeras, PyCaret, Spark MLlib).

Empty until the model-lifecycle issues: dataset and observe need no toolkit.
"""
