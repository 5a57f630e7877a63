"""What pydeeplab does to its process: environment variables, and the fallbacks it reports."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=600)


def test_import_and_a_numba_interpreter_leave_the_environment_untouched():
    """`import pydeeplab` changes no environment variable; neither does starting Numba's threads,
    which sets GOMP_SPINCOUNT only while libgomp reads it (pydeeplab.threads)."""
    result = _run("""
        import os
        before = dict(os.environ)
        import pydeeplab
        assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
        from pydeeplab.threads import start_numba_threads
        start_numba_threads()
        assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
        import numba
        assert numba.threading_layer() in ("omp", "tbb", "workqueue")
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_default_backend_starts_numba_threads_with_the_spin_count():
    """An Interpreter whose backend resolves to numba ("auto", the default) starts Numba's
    threads itself, while the spin count is set (libgomp reads it once, then)."""
    result = _run("""
        import os, numba
        from pydeeplab import Interpreter, threads
        from pydeeplab.tflite.writer import ModelBuilder
        from pydeeplab.tflite.schema import BuiltinOperator, TensorType
        seen = []
        get = numba.get_num_threads
        def watch():  # the call that starts the pool: what GOMP_SPINCOUNT is then
            seen.append(os.environ.get("GOMP_SPINCOUNT"))
            return get()
        numba.get_num_threads = watch
        b = ModelBuilder(description="relu")
        x, y = b.add_tensor("x", TensorType.FLOAT32, (1, 4)), b.add_tensor("y", TensorType.FLOAT32, (1, 4))
        b.add_operator(BuiltinOperator.RELU, [x], [y])
        b.set_inputs([x]); b.set_outputs([y])
        it = Interpreter(model_content=b.finish())
        assert it.backend == "numba" and threads._numba_started, (it.backend, threads._numba_started)
        assert seen[:1] == [threads.OPENMP_SPIN_COUNT], seen
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_user_spin_count_is_kept():
    result = _run("""
        import os
        os.environ["GOMP_SPINCOUNT"] = "7"
        from pydeeplab.threads import start_numba_threads
        start_numba_threads()
        assert os.environ["GOMP_SPINCOUNT"] == "7"
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_gemm_without_blas_warns_once_and_stays_exact():
    """Without a usable CBLAS the kernels' matrix products fall back to a Numba loop: said, not silent."""
    result = _run("""
        import warnings
        import numpy as np
        import pydeeplab.kernels.loaded_blas
        pydeeplab.kernels.loaded_blas.cblas_gemm = lambda: None  # as in a process whose NumPy has no CBLAS
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from pydeeplab.kernels import blas
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(messages) == 1 and "plain Numba loop" in messages[0], messages
        assert not blas.HAVE_BLAS
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((5, 7), np.float32), rng.standard_normal((7, 3), np.float32)
        c = np.empty((5, 3), np.float32)
        blas.gemm(a, b, c)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-6)
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_missing_libm_warns_once(monkeypatch):
    import ctypes.util

    from pydeeplab.reference import activation

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    expf = activation._libm_float_function("expf", lambda v: np.exp(v.astype(np.float32)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = expf(np.array([0.0, 1.0], np.float32))
        expf(np.array([2.0], np.float32))
    assert [str(w.message).split(",")[0] for w in caught] == ["the C library's expf is not loadable here"]
    np.testing.assert_array_equal(first, np.exp(np.array([0.0, 1.0], np.float32)))


def test_no_blas_thread_control_is_said_once(monkeypatch):
    from pydeeplab import threads

    monkeypatch.setattr(threads, "_blas", [])
    monkeypatch.setattr(threads, "_said_no_blas_control", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with threads.blas_threads(1):
                pass
    assert len(caught) == 1 and "no OpenBLAS thread control" in str(caught[0].message)
