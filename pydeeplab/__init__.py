"""pydeeplab: DeepLab semantic segmentation as TensorFlow Lite runs it, in NumPy and Numba.

``pydeeplab.Interpreter`` has the API of ``tflite_runtime.interpreter.Interpreter``::

    import pydeeplab as tflite
    interpreter = tflite.Interpreter(model_path="deeplabv3_257_mv_gpu.tflite")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ModelError, UnsupportedOperatorError
from .delegate import Delegate, load_delegate
from .interpreter import Interpreter, InterpreterWithCustomOps, OpResolverType
from .ops.base import OpContext, Prepared
from .ops.custom import register_custom_op, unregister_custom_op
from .signature import SignatureRunner
from .tflite.reader import load_model, read_model

if TYPE_CHECKING:
    from .segment import Segmentation, Segmenter
    from .verification import verify

__version__ = "0.1.0"

__all__ = ["Interpreter", "InterpreterWithCustomOps", "OpResolverType", "SignatureRunner", "Delegate",
           "load_delegate", "OpContext", "Prepared", "register_custom_op", "unregister_custom_op",
           "Segmentation", "Segmenter", "ModelError", "UnsupportedOperatorError", "load_model",
           "read_model", "verify", "__version__"]

#: Imported on first use: the segmentation API and verify pull in Pillow (and the
#: model manifest, LiteRT), which an interpreter-only program (and its start-up time) does without.
_LAZY = {"Segmentation": "segment", "Segmenter": "segment", "verify": "verification"}
#: Subpackages imported on first use; pydeeplab.report is callable: pydeeplab.report(model, image, out).
_LAZY_MODULES = ("report",)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        from importlib import import_module

        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
