"""``minibase backup`` and ``restore`` (docs/console.md#backup-and-restore): consistent
snapshots of the SQLite database through SQLite's online backup API, so the server keeps
serving while one is taken, to a local folder or to the configured S3/OSS bucket.

PostgreSQL has its own tools (``pg_dump``/``pg_restore``); TableStore its own backups.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidArgument, NotFound

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["BUCKET", "backup", "list_backups", "restore"]

BUCKET = "bucket"  # --to/--from value naming the configured files bucket
_NAME = re.compile(r"minibase-\d{8}T\d{6}(?:\.\d{3})?Z\.db")
_PAGES = 1024  # pages copied per step: other connections may write between steps


def _database(config: Config) -> Path:
    path = config.sqlite_path
    if path is None:
        raise ConfigError(
            "database.url",
            "minibase backup copies SQLite databases; for PostgreSQL use pg_dump/pg_restore (docs/console.md)",
        )
    if not Path(path).exists():
        raise NotFound(f"no database at {path}")
    return Path(path)


def snapshot(source: Path, target: Path) -> None:
    """Copy the live database ``source`` to ``target`` with the online backup API."""
    src = sqlite3.connect(source, timeout=10)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=_PAGES)
        finally:
            dst.close()
    finally:
        src.close()
    target.chmod(0o600)  # every user's data: owner-only, like the database


def _name(now: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"minibase-{stamp}.{int(now * 1000) % 1000:03d}Z.db"


def _bucket(config: Config) -> tuple[Any, str, str]:
    """(boto3 client, bucket, key prefix of backups) of the configured files bucket."""
    location = config.files.s3
    if location is None:
        raise ConfigError("files.url", "--to bucket needs files.url = s3://… or oss://…")
    from ..files.store.s3 import S3FileStore

    store = S3FileStore(
        location,
        access_key_id=config.files.access_key_id,
        secret_access_key=config.files.secret_access_key,
        session_token=config.files.session_token,
    )
    return store._make_client(), location.bucket, location.prefix + "backups/"


def list_backups(config: Config, where: str) -> list[str]:
    """The backups at ``where`` (a folder, or ``bucket``), oldest first."""
    if where == BUCKET:
        client, bucket, prefix = _bucket(config)
        names: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
        return sorted(n for n in names if _NAME.fullmatch(n))
    folder = Path(where)
    return (
        sorted(p.name for p in folder.glob("minibase-*.db") if _NAME.fullmatch(p.name))
        if folder.is_dir()
        else []
    )


def backup(config: Config, where: str, keep: int, now: float | None = None) -> str:
    """Snapshot the database to ``where`` (a folder or ``bucket``), then delete all but the
    newest ``keep`` snapshots there. Returns where the new one went."""
    if keep < 1:
        raise InvalidArgument("--keep must be at least 1")
    source = _database(config)
    name = _name(time.time() if now is None else now)
    if where == BUCKET:
        client, bucket, prefix = _bucket(config)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / name
            snapshot(source, local)
            client.upload_file(str(local), bucket, prefix + name)
        for old in list_backups(config, where)[:-keep]:
            client.delete_object(Bucket=bucket, Key=prefix + old)
        return f"s3://{bucket}/{prefix}{name}"
    folder = Path(where)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / name
    if target.resolve() == source.resolve():
        raise InvalidArgument("the backup folder holds the database itself")
    partial = folder / (name + ".partial")
    snapshot(source, partial)
    partial.rename(target)  # a snapshot in the folder is always complete
    for old in list_backups(config, where)[:-keep]:
        (folder / old).unlink()
    return str(target)


def restore(config: Config, where: str, name: str | None) -> str:
    """Put the snapshot ``name`` (default: the newest) from ``where`` back into the
    database, through the backup API: a running server sees the restored data on its
    next read (its connections stay valid). Returns the snapshot's name."""
    if name is None:
        found = list_backups(config, where)
        if not found:
            raise NotFound(f"no backups in {where}")
        name = found[-1]
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f"{name[:80]!r} is not a backup's name (minibase-<time>Z.db)")
    target = _database(config)
    with tempfile.TemporaryDirectory() as tmp:
        if where == BUCKET:
            client, bucket, prefix = _bucket(config)
            source = Path(tmp) / name
            try:
                client.download_file(bucket, prefix + name, str(source))
            except Exception as e:  # botocore's ClientError: the key is missing
                raise NotFound(f"no backup {name} in the bucket") from e
        else:
            source = Path(where) / name
            if not source.is_file():
                raise NotFound(f"no backup {source}")
        check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            ok = check.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise InvalidArgument(f"{name} is not a SQLite database: {e}") from None
        finally:
            check.close()
        if ok != "ok":
            raise InvalidArgument(f"{name} is damaged: {ok}")
        snapshot_into(source, target)
    return name


def snapshot_into(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
