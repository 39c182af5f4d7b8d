"""`backup --to bucket` / `restore --from bucket`: snapshots in the configured files bucket
(S3 protocol: moto behind the gateway that checks SigV4 signatures as S3 does)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from minibase.config import Config
from minibase.console.backup import BUCKET, backup, list_backups, restore
from minibase.errors import ConfigError, NotFound
from tests.fakes.s3server import REGION, SigV4Gateway
from tests.support.files import files_config, make_bucket


def _docs(config: Config) -> dict[str, int]:
    db = sqlite3.connect(str(config.sqlite_path))
    try:
        return dict(db.execute("SELECT id, v FROM marker ORDER BY id").fetchall())
    finally:
        db.close()


def _put(config: Config, doc_id: str, v: int) -> None:
    assert config.sqlite_path is not None
    config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(config.sqlite_path))
    try:
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS marker (id TEXT PRIMARY KEY, v INTEGER)")
            db.execute("INSERT OR REPLACE INTO marker VALUES (?, ?)", (doc_id, v))
    finally:
        db.close()


def test_backup_to_the_bucket_and_restore_from_it(
    make_config: Callable[..., Config], s3_endpoint: tuple[str, SigV4Gateway]
) -> None:
    endpoint = s3_endpoint[0]
    bucket = make_bucket(endpoint)
    config = files_config(
        make_config, f"s3://{bucket}/app?endpoint={endpoint}&region={REGION}&path_style=true"
    )
    _put(config, "kept", 1)
    where = backup(config, BUCKET, keep=2, now=1_800_000_000.0)
    assert where.startswith(f"s3://{bucket}/app/backups/minibase-"), where
    _put(config, "lost", 2)
    _put(config, "kept", 99)
    assert _docs(config) == {"kept": 99, "lost": 2}
    name = restore(config, BUCKET, None)
    assert where.endswith(name)
    assert _docs(config) == {"kept": 1}
    # --keep: only the newest N stay in the bucket.
    for i in range(3):
        backup(config, BUCKET, keep=2, now=1_800_000_100.0 + i)
    kept = list_backups(config, BUCKET)
    assert len(kept) == 2 and kept == sorted(kept)
    with pytest.raises(NotFound):
        restore(config, BUCKET, "minibase-20990101T000000.000Z.db")


def test_backup_to_bucket_needs_a_bucket(make_config: Callable[..., Config]) -> None:
    config = files_config(make_config, "file://files")
    _put(config, "kept", 1)
    with pytest.raises(ConfigError, match=r"files\.url"):
        backup(config, BUCKET, keep=1)
