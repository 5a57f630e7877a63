"""Put this folder on PYTHONPATH to run Python as if Numba could not be installed.

Python imports ``sitecustomize`` at start-up; this one puts a finder first on
``sys.meta_path`` that refuses ``numba`` and ``llvmlite`` (and their submodules) as a
missing package would: the fallback tests (tests/test_fallback.py) run pydeeplab
in such a subprocess.
"""

import sys
from importlib.abc import MetaPathFinder

BLOCKED = ("numba", "llvmlite")


class _NoNumba(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked by tests/no_numba)", name=fullname)
        return None


sys.meta_path.insert(0, _NoNumba())
