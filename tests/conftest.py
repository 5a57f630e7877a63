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
