"""A real, throwaway PostgreSQL server for the tests.

``pg_server`` (session scope) runs one server for the whole test session: a fresh cluster
in a temporary directory, listening on 127.0.0.1 and a free port, tuned for speed
(``fsync=off``: never do that outside tests). ``pg_url`` (function scope) creates a fresh
database per test and drops it afterwards. Import both into ``tests/conftest.py``.

Missing PostgreSQL server binaries FAIL the tests that need them (never skip): on Debian,
``apt-get install -y postgresql``.

As root, ``initdb`` and the server run as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgServer", "find_pg_bindir", "pg_server", "pg_url"]

# Enough for every pool a test opens at once (pools of up to 10, several stores per test).
MAX_CONNECTIONS = 200

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": str(MAX_CONNECTIONS),
    "shared_buffers": "'64MB'",
    # Speed over durability against power loss (never do this outside tests). Commits still
    # reach the kernel before they are acknowledged (synchronous_commit stays on), so a
    # server killed with `pg_ctl stop -m immediate` recovers every acknowledged write.
    "fsync": "off",
    "full_page_writes": "off",
    "checkpoint_timeout": "'30min'",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "log_destination": "'stderr'",
}


def find_pg_bindir() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin``; None when there is no server installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass

    def version(p: str) -> tuple[int, ...]:
        name = Path(p).parent.name
        return tuple(int(x) for x in name.split(".") if x.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file() and (c / "postgres").is_file():
            return c
    return None


def _scratch_dir() -> str | None:
    """Where clusters live: a RAM disk when there is a roomy one (creating a database makes
    hundreds of files, several times faster there), else the default temporary directory."""
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= 1 << 30:
            return shm
    except OSError:
        pass
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in its own temporary directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.host = "127.0.0.1"
        self.port = 0
        self.user = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="minibase-pg-", dir=_scratch_dir()))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.running = False

    # ---------------------------------------------------------------- processes

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root, env=_clean_env()
        )

    def _tool(self, name: str) -> str:
        return str(self.bindir / name)

    def init(self) -> None:
        r = self._run(
            self._tool("initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        settings = {**_SETTINGS, "unix_socket_directories": f"'{self.root}'"}
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write("\n# minibase tests\n")
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")

    def launch(self) -> None:
        """``init`` and a first ``start`` on a free port; the cluster is removed on failure."""
        try:
            self.init()
            for attempt in range(3):  # the free port may be taken between probe and bind
                try:
                    self.start()
                    return
                except RuntimeError:
                    if attempt == 2:
                        raise
                    self.port = 0
        except BaseException:
            self.destroy()
            raise

    def start(self) -> None:
        """Start (or restart, keeping the same port) the server and wait until it answers."""
        if self.port == 0:
            self.port = _free_port()
        r = self._run(
            self._tool("pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            f"-p {self.port}",
        )
        if r.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{self.log_tail()}"
            )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` (``immediate`` is a crash as far as clients can tell)."""
        r = self._run(self._tool("pg_ctl"), "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.datadir))
        self.running = False
        if r.returncode != 0 and "Is server running?" not in r.stderr:
            raise RuntimeError(f"pg_ctl stop failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def destroy(self) -> None:
        """Stop the server (if running) and remove its directory. Idempotent."""
        try:
            if self.datadir.exists() and (self.datadir / "postmaster.pid").exists():
                self.stop("fast")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # ----------------------------------------------------------------- databases

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def sql(self, statement: str) -> str:
        """Run one statement as the superuser on the ``postgres`` database (via psql)."""
        r = subprocess.run(
            [
                self._tool("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                "postgres",
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_clean_env(),
        )
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {statement!r}:\n{r.stderr}")
        return r.stdout

    def create_database(self, name: str | None = None) -> str:
        name = name or "t_" + secrets.token_hex(6)
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _clean_env() -> dict[str, str]:
    # No PG* variables from the caller's environment may redirect the tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def start_server() -> PgServer:
    """A new, started server; fails the calling test if PostgreSQL is not installed."""
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found via `pg_config --bindir`"
            " or /usr/lib/postgresql/*/bin: install them (Debian: apt-get install -y postgresql)",
            pytrace=False,
        )
    server = PgServer(bindir)
    server.launch()
    return server


# One server per process even if the fixture is imported into several modules (each import
# is its own fixture definition to pytest): reference-counted, stopped with the last user.
_lock = threading.Lock()
_shared: PgServer | None = None
_users = 0


def _acquire() -> PgServer:
    global _shared, _users
    with _lock:
        if _shared is None:
            _shared = start_server()
            atexit.register(_shared.destroy)
        _users += 1
        return _shared


def _release() -> None:
    global _shared, _users
    with _lock:
        _users -= 1
        if _users == 0 and _shared is not None:
            server, _shared = _shared, None
            atexit.unregister(server.destroy)
            server.destroy()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (``.url_for(dbname)``, ``.create_database()``...)."""
    server = _acquire()
    try:
        yield server
    finally:
        _release()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database (``t_<random>``), dropped after the test."""
    if not pg_server.running:  # a test that stopped the server must not break the next ones
        pg_server.start()
    name = pg_server.create_database()
    try:
        yield pg_server.url_for(name)
    finally:
        if not pg_server.running:
            pg_server.start()
        pg_server.drop_database(name)
