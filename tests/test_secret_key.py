from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minibase.errors import ConfigError
from minibase.secret_key import load_or_create


def test_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "d")
    assert len(first) >= 32
    assert stat.S_IMODE((tmp_path / "d" / "secret.key").stat().st_mode) == 0o600
    assert load_or_create(tmp_path / "d") == first


def test_racing_starts_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create(tmp_path), range(16)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_refuses_a_world_readable_key(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    os.chmod(tmp_path / "secret.key", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create(tmp_path)
