"""``load_delegate`` and ``Delegate`` with LiteRT's signatures, for code that tries a delegate first.

LiteRT's documented pattern is::

    try:
        delegate = load_delegate("libedgetpu.so.1")
    except ValueError:
        delegate = None   # fall back to the CPU

pydeeplab runs every operator with its own kernels and cannot hand a graph to a
TfLiteDelegate (a C plugin that takes over part of a TFLite graph). So the library
is loaded the way LiteRT loads it, failing with the same errors (OSError when it
cannot be loaded, AttributeError when it is not a delegate plugin), and a real
delegate plugin then fails with the ValueError that sends such code to its CPU path.
"""

from __future__ import annotations

import ctypes
import os

#: The entry point every TFLite external delegate plugin exports.
_CREATE_SYMBOL = "tflite_plugin_create_delegate"


class Delegate:
    """Would wrap a TfLiteDelegate; here it checks the library and refuses to create one.

    Raises:
        OSError: the shared library cannot be loaded (as ctypes and LiteRT raise it).
        AttributeError: the library exports no ``tflite_plugin_create_delegate``.
        ValueError: it is a delegate plugin, which pydeeplab cannot use.
    """

    def __init__(self, library: str | os.PathLike, options: dict | None = None):
        lib = ctypes.CDLL(os.fspath(library))
        getattr(lib, _CREATE_SYMBOL)  # AttributeError naming the symbol, as in LiteRT
        raise ValueError(f"pydeeplab cannot run TfLiteDelegates: it runs every operator with its own "
                         f"kernels (the model runs unchanged without the delegate, options {dict(options or {})})")


def load_delegate(library: str | os.PathLike, options: dict | None = None) -> Delegate:
    """LiteRT's ``load_delegate``: raises, since pydeeplab cannot use a delegate (see the module doc).

    Args:
        library: the delegate's shared library name or path.
        options: the delegate's options (keys and values convertible to str).

    Raises:
        ValueError: ``Failed to load delegate from <library>`` with the reason, for a loadable
            delegate plugin (code following LiteRT's pattern falls back to the CPU).
        OSError, AttributeError: the library cannot be loaded or is not a delegate plugin,
            as LiteRT raises them.
    """
    try:
        return Delegate(library, options)
    except ValueError as exc:
        raise ValueError(f"Failed to load delegate from {os.fspath(library)}\n{exc}") from None
