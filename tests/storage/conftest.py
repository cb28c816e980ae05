from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.chainstore import ChainStore
from tests.storage.builders import open_store


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node-data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[ChainStore]:
    s = open_store(data_dir)
    yield s
    s.close()
