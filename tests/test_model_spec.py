"""distributed.ModelSpec: what the driver tells Dask workers to build (no cluster needed)."""

import pytest
from dataset_fixtures import tiny_model

from pydeeplab import Segmenter
from pydeeplab.distributed import ModelSpec, worker_segmenter


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny_model())
    return path


def test_spec_carries_auto_unless_a_backend_was_chosen(model_path):
    # The driver resolves "auto" to a backend, but a worker may lack Numba: it must resolve for itself.
    seg = Segmenter(model_path, labels=tuple(str(k) for k in range(21)))
    assert seg.backend in ("numba", "numpy")
    assert ModelSpec.of(seg).backend == "auto"
    chosen = Segmenter(model_path, backend="numpy", labels=tuple(str(k) for k in range(21)))
    spec = ModelSpec.of(chosen, num_threads=1)
    assert spec.backend == "numpy"
    assert worker_segmenter(spec).backend == "numpy"
