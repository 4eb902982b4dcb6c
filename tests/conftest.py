"""Shared test fixtures: where the project's and the shared data live."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
# ../shared next to the checkout: real benchmark ground truth and tokenizers, read only when present.
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny CLIP and tiny LVLMs every test shares (tests/tiny_models.py), built once per session."""
    from tiny_models import TinyModels, single_thread

    with single_thread():
        return TinyModels(tmp_path_factory.getbasetemp() / "tiny_models")
