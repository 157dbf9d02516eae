"""Shared test fixtures: everything offline, CPU-only, under pytest's tmp folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sample_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root shared by the tests that use the bundled sample suites (built once)."""
    return tmp_path_factory.mktemp("hbdata")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep HF/nilearn/skimage caches and the default data root out of the real home."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HEALTHBENCH_DATA", str(tmp_path / "default_data"))
