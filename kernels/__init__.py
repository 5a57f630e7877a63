"""pydeeplab's Numba kernels.

Importing the package imports no Numba (:mod:`.loaded_blas` is plain Python);
:func:`load_without_compiler`, called before the first kernel runs, makes a warm start load them
from Numba's on-disk cache without readying Numba's compiler. Importing it also gives every kernel
source one modification time (:func:`share_source_stamp`).
"""

from __future__ import annotations

import os
from pathlib import Path


def share_source_stamp(folder: Path | None = None) -> None:
    """Give every ``.py`` file of ``folder`` (this package's) the newest modification time among them.

    Numba's on-disk cache keys a compiled function on its own source file (modification time and
    size), but the code it keeps has the functions it calls from other files compiled in: after an
    edit of igemm.py, conv.py's cached convolutions would still run the old product. With one time
    for all, an edit of any kernel file makes every cached kernel recompile. A fresh install has one
    time already (nothing is written); files that cannot be touched (a read-only install) are left.
    """
    files = list((folder or Path(__file__).parent).glob("*.py"))
    stamps = {f: f.stat() for f in files}
    newest = max((st.st_mtime_ns for st in stamps.values()), default=0)
    for f, st in stamps.items():
        if st.st_mtime_ns != newest:
            try:
                os.utime(f, ns=(st.st_atime_ns, newest))
            except OSError:
                pass


share_source_stamp()


def load_without_compiler() -> bool:
    """Load this package's kernels from Numba's on-disk cache without readying Numba's compiler first:
    True when done (idempotent), False without a Numba whose cache class this knows (loads then stay
    as Numba does them).

    Before each load, Numba's cache refreshes the target context (``Cache.load_overload``). The first
    time, that imports and registers every typing and lowering registry Numba has (NumPy, random,
    typed containers, ...): 0.12-0.15 s of a 0.7 s warm start on the 2-core test machine, and only a
    compile needs it (a compile refreshes the context itself). Code from the cache needs only the
    symbols it links to: Numba's runtime (NRT, set up here), its C helpers (there since the context
    was made) and the hash secret (``numba.cpython.hashing`` adds it when imported). Only loads of
    this package's kernels change; any other function in the process loads as Numba does it.
    Checked with Numba 0.59.1 and 0.68.1: every shared model, warm, on 1 and 2 threads, gives the
    outputs of a cold run without Numba's registries loaded.
    """
    try:
        from numba.core import caching
        from numba.core.runtime.nrt import rtsys
    except Exception:  # no Numba, or a broken one: nothing will load
        return False
    cache = caching.Cache
    if getattr(cache.load_overload, "_pydeeplab_lean", False):
        return True
    if not all(hasattr(cache, name) for name in ("_load_overload", "_guard_against_spurious_io_errors")):
        return False
    numba_load = cache.load_overload

    def load_overload(self, sig, target_context):
        module = getattr(getattr(self, "_py_func", None), "__module__", "") or ""
        if not module.startswith(__name__ + "."):
            return numba_load(self, sig, target_context)
        import numba.cpython.hashing  # noqa: F401  (adds, on import, the symbols hashing code links to)

        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    load_overload._pydeeplab_lean = True
    cache.load_overload = load_overload
    return True
