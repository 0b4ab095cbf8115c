"""Shared fixtures: a tiny KDQ catalog and a MovieLens-100k-format folder, built once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from movielens_fixture import write_ml100k

from kdq_lab.data.catalog import generate_catalog


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory) -> Path:
    """A valid tiny KDQ catalog (read-only: copy it before changing files)."""
    return generate_catalog(tmp_path_factory.mktemp("catalog") / "kdq-tiny", scale="tiny", seed=7, progress=False)


@pytest.fixture
def catalog_copy(tiny_catalog, tmp_path) -> Path:
    """A writable copy of the tiny catalog."""
    return Path(shutil.copytree(tiny_catalog, tmp_path / "kdq-tiny"))


@pytest.fixture(scope="session")
def ml100k_source(tmp_path_factory) -> Path:
    """A folder in the exact MovieLens-100k format."""
    return write_ml100k(tmp_path_factory.mktemp("ml") / "ml-100k")


@pytest.fixture(scope="session")
def tiny_split(tiny_catalog, tmp_path_factory):
    """The tiny catalog split per-user temporally, with validation."""
    from kdq_lab.data.splits import SplitConfig
    from kdq_lab.data.store import load_split, prepare

    return load_split(prepare(tiny_catalog, SplitConfig(kind="user_temporal"), tmp_path_factory.mktemp("processed")))


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> Path:
    return generate_catalog(tmp_path_factory.mktemp("catalog") / "kdq-small", scale="small", seed=7, progress=False)


@pytest.fixture(scope="session")
def tiny_parquet_catalog(tmp_path_factory) -> Path:
    """The tiny KDQ catalog stored as Parquet (as the large scale is), same content as ``tiny_catalog``."""
    return generate_catalog(
        tmp_path_factory.mktemp("catalog") / "kdq-tiny", scale="tiny", seed=7, progress=False, file_format="parquet"
    )
