"""`minibase admins`, `export`/`import` and `backup`/`restore` as a user runs them
(minibase.cli.main), on real SQLite, the backup against a live server."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import pytest

from minibase.app import create_app
from minibase.cli import main
from minibase.client import Client
from minibase.config import load_config
from minibase.core import Minibase
from tests.support.config import SECRET, SERVICE
from tests.support.live import run_uvicorn

TOML = f"""
[app]
name = "todo"
service = "{SERVICE}"
default_collection = "todo_list"
secret = "{SECRET}"

[auth.dev]
enabled = true

[rate_limits]
login_per_ip = "off"
login_per_subject = "off"
calls_per_user = "off"
calls_per_ip = "off"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "minibase.toml"
    path.write_text(TOML)
    return path


def run(*args: str) -> int:
    return main(list(args))


def test_admins_create_list_password_remove(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(config_file), "--data", str(tmp_path / "data")]
    monkeypatch.setenv("MINIBASE_ADMIN_PASSWORD", "first password 123")
    assert run("admins", "create", *base, "--email", "ops@example.com") == 0
    assert run("admins", "create", *base, "--email", "ops@example.com") == 1
    assert "exists already" in capsys.readouterr().err
    assert run("admins", "list", *base) == 0
    assert "ops@example.com" in capsys.readouterr().out
    monkeypatch.setenv("MINIBASE_ADMIN_PASSWORD", "short")
    assert run("admins", "password", *base, "--email", "ops@example.com") == 1
    assert "at least 10" in capsys.readouterr().err
    monkeypatch.setenv("MINIBASE_ADMIN_PASSWORD", "second password 456")
    assert run("admins", "password", *base, "--email", "ops@example.com") == 0
    db = sqlite3.connect(tmp_path / "data" / "minibase.db")
    [(stored,)] = db.execute("SELECT password_hash FROM console_admins").fetchall()
    db.close()
    assert stored.startswith("scrypt$") and "second" not in stored
    assert run("admins", "remove", *base, "--email", "ops@example.com") == 0
    assert run("admins", "remove", *base, "--email", "ops@example.com") == 1
    # No password anywhere and no terminal: a clear refusal, nothing created.
    monkeypatch.delenv("MINIBASE_ADMIN_PASSWORD")
    with pytest.raises(SystemExit, match="MINIBASE_ADMIN_PASSWORD"):
        run("admins", "create", *base, "--email", "x@example.com")


def _seed(url: str) -> None:
    for name in ("alice", "bob"):
        c = Client(url, SERVICE)
        try:
            c.login(auth_code=f"dev:{name}")
            for i in range(30):
                c.db("put", obj={"id": f"{name}-{i}", "title": f"todo {i} 中文", "n": i, "done": i % 2 == 0})
        finally:
            c.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_export_import_round_trip_is_byte_identical(config_file: Path, tmp_path: Path, suffix: str) -> None:
    config = load_config(config_file, data_dir=tmp_path / "a")
    with run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url:
        _seed(url)
    first, second = tmp_path / f"first{suffix}", tmp_path / f"second{suffix}"
    assert (
        run("export", "--config", str(config_file), "--data", str(tmp_path / "a"), "--out", str(first)) == 0
    )
    assert run("import", "--config", str(config_file), "--data", str(tmp_path / "b"), str(first)) == 0
    assert (
        run("export", "--config", str(config_file), "--data", str(tmp_path / "b"), "--out", str(second)) == 0
    )
    assert first.read_bytes() == second.read_bytes()
    text = gzip.decompress(first.read_bytes()) if suffix.endswith(".gz") else first.read_bytes()
    assert text.count(b'"type":"document"') == 60 and "中文".encode() in text
    # The imported database serves the same data.
    config_b = load_config(config_file, data_dir=tmp_path / "b")
    with run_uvicorn(create_app(config_b, core=Minibase.from_config(config_b))) as url:
        c = Client(url, SERVICE)
        try:
            c.login(auth_code="dev:alice")
            assert c.db("get", id="alice-7")["title"] == "todo 7 中文"
        finally:
            c.close()
    assert (
        run("import", "--config", str(config_file), "--data", str(tmp_path / "b"), str(tmp_path / "nope"))
        == 1
    )


def test_backup_and_restore_on_a_live_server(config_file: Path, tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "backups"
    base = ["--config", str(config_file), "--data", str(data)]
    config = load_config(config_file, data_dir=data)
    with run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url:
        alice = Client(url, SERVICE)
        try:
            alice.login(auth_code="dev:alice")
            alice.db("put", obj={"id": "kept", "v": 1})
            # Taken while the server serves (and writes): the online backup API.
            assert run("backup", *base, "--to", str(folder), "--keep", "2") == 0
            [snapshot] = sorted(folder.glob("minibase-*.db"))
            assert snapshot.stat().st_mode & 0o777 == 0o600
            alice.db("put", obj={"id": "lost", "v": 2})
            alice.db("update", id="kept", set={"v": 99})
            assert run("restore", *base, "--from", str(folder)) == 0
            # The running server answers from the restored database at once.
            assert alice.db("get", id="kept")["v"] == 1
            assert alice.db("get", id="lost") is None
            alice.db("put", obj={"id": "after", "v": 3})  # and keeps writing
            assert alice.db("get", id="after")["v"] == 3
        finally:
            alice.close()
    # --keep: only the newest N stay.
    for _ in range(3):
        assert run("backup", *base, "--to", str(folder), "--keep", "2") == 0
    assert len(list(folder.glob("minibase-*.db"))) == 2
    # A damaged snapshot is refused, nothing restored.
    bad = folder / "minibase-20990101T000000.000Z.db"
    bad.write_bytes(b"not a database" * 100)
    assert run("restore", *base, "--from", str(folder)) == 1
    assert run("restore", *base, "--from", str(folder), "--name", "../../etc/passwd") == 1


def test_backup_refuses_postgres_with_a_pointer_to_pg_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pg.toml"
    path.write_text(TOML + '\n[database]\nurl = "postgresql://u@127.0.0.1:1/db"\n')
    assert run("backup", "--config", str(path), "--to", str(tmp_path / "b")) == 2
    assert "pg_dump" in capsys.readouterr().err
