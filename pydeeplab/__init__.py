"""pydeeplab: DeepLab semantic segmentation as TensorFlow Lite runs it, in NumPy and Numba.

``pydeeplab.Interpreter`` has the API of ``tflite_runtime.interpreter.Interpreter``::

    import pydeeplab as tflite
    interpreter = tflite.Interpreter(model_path="deeplabv3_257_mv_gpu.tflite")
"""

from .errors import ModelError, UnsupportedOperatorError
from .interpreter import Interpreter
from .segment import Segmentation, Segmenter
from .tflite.reader import load_model, read_model

__version__ = "0.1.0"

__all__ = ["Interpreter", "Segmentation", "Segmenter", "ModelError", "UnsupportedOperatorError", "load_model", "read_model", "__version__"]
