"""The exceptions pydeeplab raises on purpose.

Both derive from ValueError so that code written for tflite_runtime, which
raises ValueError for a bad model or a bad call, catches them unchanged.
"""


class ModelError(ValueError):
    """The model file is not a TFLite model we can read or run.

    The message names what is wrong (which table, index or field), so that a
    user can tell a truncated download from an unsupported operator.
    """


class UnsupportedOperatorError(ModelError):
    """The model uses operators (or operator variants) pydeeplab does not implement."""


class CustomOpRegistrationError(ValueError):
    """A custom operator registration that cannot work (bad name, not callable, name taken)."""
