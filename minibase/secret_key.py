"""The server's MAC secret when the config gives none: generated once into the data dir."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from .errors import ConfigError

FILENAME = "secret.key"


def load_or_create(data_dir: Path) -> str:
    """Read ``<data_dir>/secret.key``, creating it (mode 0600) on first start.

    Safe when several processes start at once: the file appears atomically (written to a
    temp file, then hard-linked into place; the loser of the race reads the winner's).
    """
    path = data_dir / FILENAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{FILENAME}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    if len(text) < 32:
        raise ConfigError(str(path), "the secret key file is shorter than 32 characters")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigError(str(path), "the secret key file must not be readable by others (chmod 600)")
    return text
