"""The local file store's disk calls off the event loop, and its open files. Disk errors
that are the disk's fault (full, failing, read-only) answer Unavailable, not Internal."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...errors import Unavailable
from .base import FileInfo

__all__ = ["READ_CHUNK", "OpenFile", "fsync_dir", "in_thread"]

log = logging.getLogger("minibase.files.local")

READ_CHUNK = 256 * 1024
T = TypeVar("T")
# errno values that mean the disk, not the request, is the problem.
_OUTAGE_ERRNOS = frozenset(
    e
    for e in (
        errno.ENOSPC,
        errno.EIO,
        errno.EROFS,
        errno.ENFILE,
        errno.EMFILE,
        getattr(errno, "EDQUOT", None),
    )
    if e is not None
)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread``, except that a cancelled caller still waits for the thread, so
    a file descriptor it uses is never closed under it; a failing disk is Unavailable."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise
    except OSError as e:
        if e.errno not in _OUTAGE_ERRNOS:
            raise
        # A full, failing or read-only disk: nothing a request did wrong, and it may pass.
        log.error("the file store's disk failed: %s", e)
        raise Unavailable("the file store is unavailable") from e


@dataclass(slots=True)
class OpenFile:
    """An open file and what it is; read it with :meth:`read`, then :meth:`close` it."""

    fd: int
    info: FileInfo

    async def chunks(self, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """``length`` bytes (default: to the end) from offset ``start``."""
        left = self.info.size - start if length is None else length
        offset = start
        while left > 0:
            chunk = await in_thread(os.pread, self.fd, min(READ_CHUNK, left), offset)
            if not chunk:
                return
            left -= len(chunk)
            offset += len(chunk)
            yield chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)
