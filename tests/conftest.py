"""Fixtures for the real data in ../shared/data (PYDEEPLAB_DATA points elsewhere)."""

from pathlib import Path

import pytest
from oracle import data_dir, require_data


@pytest.fixture(scope="session")
def model_path():
    """model_path(name) -> Path of a real model; skipped locally, failing in CI, when missing."""

    def get(name: str) -> Path:
        return require_data(data_dir() / "models" / f"{name}.tflite")

    return get


@pytest.fixture(scope="session")
def image_path():
    def get(name: str) -> Path:
        return require_data(data_dir() / "images" / name)

    return get


# -- a PASCAL VOC folder built from the shared samples (test_datasets, test_distributed) ------------


@pytest.fixture(scope="session")
def voc(tmp_path_factory):
    """(dataset root, ids): a VOCdevkit/VOC2012 folder of the 4 shared VOC samples, masks as palette PNGs."""
    from dataset_fixtures import voc_from_shared

    images = require_data(data_dir() / "images" / "voc").parent
    root = tmp_path_factory.mktemp("voc") / "VOCdevkit" / "VOC2012"
    ids = voc_from_shared(images, root)
    return root.parent.parent, ids


@pytest.fixture(scope="session")
def voc_local_json(voc, model_path):
    """`evaluate --dataset` on the VOC folder in this process: (exit status, JSON text)."""
    import contextlib
    import io

    from dataset_fixtures import DM05

    from pydeeplab.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["evaluate", "--model", str(model_path(DM05)), "--dataset", str(voc[0]), "--json"])
    return rc, out.getvalue()
