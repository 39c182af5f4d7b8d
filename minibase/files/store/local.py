"""Files on local disk, served through minibase's own ``/files/...`` routes (``..http``).

Layout under the root directory::

    <key>                              the bytes, e.g. users/u_abc/photos/cat.jpg
    <dir>/.~mb-meta/<name>.json        its metadata: content type, uploader, md5, version, ...
    <dir>/.~mb-tmp-<random>            an upload in progress (or left by a crash)
    <dir>/.~mb-thumb/<name>/<size>-<tag>.<fmt>   a cached thumbnail of one version of it
                                       (removed when the file is replaced or removed)

Path segments starting with ``.~mb`` are refused by the ``files`` function, so these
never collide with a client's names. A segment may be at most 250 bytes here (filesystems
allow 255 a name, and the metadata file adds ``.json``): longer ones are
``InvalidArgument`` as soon as an upload URL is asked for. A file named ``a`` and a folder ``a/`` cannot both
exist on disk (they can in S3): such an upload answers ``Conflict``.

Writes are atomic: the body streams into a temp file in the target's directory, is
fsynced, then renamed over the target (``os.replace``) and the directories fsynced. A
crashed or refused upload never leaves a half file under the real name. The metadata file
records the inode, size and mtime of the bytes it describes; when they do not match (a
crash between the two renames) it is ignored and the file reads as
``application/octet-stream``.

Versions: every write gets a random id (``gen`` in its metadata; a file without valid
metadata has ``i<inode>-<size>-<mtime_ns>`` instead). Unlike the md5 ETag it differs
between two writes of the same bytes, so a URL bound to a version cannot be replayed
against a removed-and-recreated file.

Signed URLs (and what their ``Expect`` and ``Version`` bind): :mod:`.local_urls`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets as _secrets
import shutil
import stat as _stat
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ...errors import Conflict, Internal, InvalidArgument, PayloadTooLarge
from ..paths import RESERVED_SEGMENT_PREFIX, check_path
from ..thumbs import Thumbnailer
from .base import DEFAULT_CONTENT_TYPE, FileInfo, UploadCondition
from .local_io import OpenFile, fsync_dir, in_thread
from .local_urls import SignedUrls, UrlSigner

try:  # cross-process commit lock where the platform has it
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["MAX_NAME_BYTES", "LocalFileStore"]

_TMP = RESERVED_SEGMENT_PREFIX + "-tmp-"
_META_DIR = RESERVED_SEGMENT_PREFIX + "-meta"
_LOCK_FILE = RESERVED_SEGMENT_PREFIX + "-lock"
_THUMB_DIR = RESERVED_SEGMENT_PREFIX + "-thumb"
_WRITE_CHUNK = 256 * 1024
# Filesystems allow 255 bytes a name, and "<name>.json" holds its metadata.
MAX_NAME_BYTES = 250


class LocalFileStore(SignedUrls):
    """A :class:`~.base.FileStore` on a directory; bytes move through :class:`..http.LocalFilesApp`."""

    kind = "local"
    needs_base_url = True

    def __init__(
        self,
        root: str | os.PathLike[str],
        secrets: Sequence[str],
        *,
        mount: str = "/files",
        clock: Callable[[], float] = time.time,
        public_prefixes: Sequence[str] = (),
        public_max_age: int = 300,
        thumbs: Thumbnailer | None = None,
    ) -> None:
        self.thumbs = thumbs
        self.root = Path(root)
        # Keys under these are readable by anyone at their stable, unsigned URL.
        self.public_prefixes = tuple(public_prefixes)
        self.public_max_age = public_max_age
        self.signer = UrlSigner(secrets)
        self.mount = "/" + mount.strip("/")
        self.clock = clock
        self._lock = threading.Lock()

    # ------------------------------------------------------------------- paths

    def _path(self, key: str) -> Path:
        # Keys come from the files function or a signed URL; check again before any disk access.
        check_path(key, "key")
        segments = key.split("/")
        _check_names(segments)
        return self.root.joinpath(*segments)

    @staticmethod
    def _meta_path(blob: Path) -> Path:
        return blob.parent / _META_DIR / (blob.name + ".json")

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ---------------------------------------------------------------- reading

    def _info(self, key: str, blob: Path, st: os.stat_result) -> FileInfo:
        meta: dict[str, Any] = {}
        try:
            raw = orjson.loads(self._meta_path(blob).read_bytes())
            if (
                isinstance(raw, dict)
                and raw.get("ino") == st.st_ino
                and raw.get("size") == st.st_size
                and raw.get("mtime_ns") == st.st_mtime_ns
            ):
                meta = raw
        except (OSError, orjson.JSONDecodeError):
            pass
        return FileInfo(
            key=key,
            size=st.st_size,
            content_type=str(meta.get("contentType") or DEFAULT_CONTENT_TYPE),
            updated=float(meta.get("updated") or st.st_mtime),
            uploader=meta.get("uploader") or None,
            etag=f'"{meta["md5"]}"'
            if meta.get("md5")
            else f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"',
            version=str(meta["gen"])
            if meta.get("gen")
            else f"i{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}",
        )

    def _stat(self, key: str) -> FileInfo | None:
        blob = self._path(key)
        try:
            st = os.lstat(blob)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not _stat.S_ISREG(st.st_mode):
            return None
        return self._info(key, blob, st)

    async def stat(self, key: str) -> FileInfo | None:
        return await in_thread(self._stat, key)

    def _open(self, key: str) -> OpenFile | None:
        blob = self._path(key)
        try:
            fd = os.open(blob, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError:  # e.g. ELOOP: a symlink, which this store never makes
            return None
        try:
            st = os.fstat(fd)
            if not _stat.S_ISREG(st.st_mode):
                os.close(fd)
                return None
            return OpenFile(fd, self._info(key, blob, st))
        except BaseException:
            os.close(fd)
            raise

    async def open(self, key: str) -> OpenFile | None:
        """The file at ``key`` opened for reading (consistent even if replaced meanwhile)."""
        return await in_thread(self._open, key)

    # ------------------------------------------------------------- thumbnails

    @staticmethod
    def _thumb_dir(blob: Path) -> Path:
        return blob.parent / _THUMB_DIR / blob.name

    def _open_thumb(self, key: str, size: str) -> tuple[FileInfo, OpenFile] | None:
        if self.thumbs is None:
            raise InvalidArgument("thumbnails are not configured: set [files.thumbs] sizes")
        spec = self.thumbs.spec(size)
        original = self._open(key)
        if original is None:
            return None
        try:
            info = original.info
            tag = hashlib.sha256(
                f"{info.version}\n{self.thumbs.format}\n{self.thumbs.quality}".encode()
            ).hexdigest()[:20]
            folder = self._thumb_dir(self._path(key))
            stem = f"{spec.name}-{tag}"
            cached = next(
                (
                    folder / f"{stem}.{f}"
                    for f in ("jpeg", "png", "webp")
                    if (folder / f"{stem}.{f}").is_file()
                ),
                None,
            )
            if cached is None:
                with os.fdopen(os.dup(original.fd), "rb") as fp:
                    thumb = self.thumbs.render(fp, spec)
                folder.mkdir(parents=True, exist_ok=True)
                for old in folder.glob(f"{spec.name}-*"):  # renders of earlier versions
                    old.unlink(missing_ok=True)
                cached = folder / f"{stem}.{thumb.format}"
                tmp = folder / f"{_TMP}{_secrets.token_hex(8)}"
                tmp.write_bytes(thumb.data)
                os.replace(tmp, cached)
            fd = os.open(cached, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        finally:
            original.close()
        st = os.fstat(fd)
        content_type = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[cached.suffix[1:]]
        thumb_info = FileInfo(
            key, st.st_size, content_type, info.updated, info.uploader, f'"{tag}-{spec.name}"', info.version
        )
        return info, OpenFile(fd, thumb_info)

    async def open_thumb(self, key: str, size: str) -> tuple[FileInfo, OpenFile] | None:
        """The thumbnail of size ``size`` of the file at ``key`` (rendered and cached on first
        use, for this version of the file), opened, and the original's info; None: no file."""
        return await in_thread(self._open_thumb, key, size)

    def _walk(
        self, directory: Path, key_base: str, name_prefix: str, after: str | None
    ) -> Iterator[tuple[str, Path, os.stat_result]]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        items: list[tuple[str, bool, os.DirEntry[str]]] = []
        for entry in entries:
            name = entry.name
            if name.startswith(RESERVED_SEGMENT_PREFIX) or not name.startswith(name_prefix):
                continue
            if entry.is_dir(follow_symlinks=False):
                # Every key below starts with "name/": sorting on that keeps key order.
                items.append((key_base + name + "/", True, entry))
            elif entry.is_file(follow_symlinks=False):
                items.append((key_base + name, False, entry))
        items.sort(key=lambda item: item[0])
        for key, is_dir, entry in items:
            if is_dir:
                if after is not None and after >= key and not after.startswith(key):
                    continue  # the whole folder sorts before the cursor
                yield from self._walk(Path(entry.path), key, "", after)
            elif after is None or key > after:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield key, Path(entry.path), st

    def _list(self, prefix: str, start_after: str | None, limit: int) -> tuple[list[FileInfo], str | None]:
        dir_part, _, name_prefix = prefix.rpartition("/")
        if dir_part:
            check_path(dir_part, "prefix")
            _check_names(dir_part.split("/"))
        directory = self.root.joinpath(*dir_part.split("/")) if dir_part else self.root
        out: list[FileInfo] = []
        for key, path, st in self._walk(
            directory, dir_part + "/" if dir_part else "", name_prefix, start_after
        ):
            if len(out) >= limit:
                return out, out[-1].key
            out.append(self._info(key, path, st))
        return out, None

    async def list(
        self, prefix: str, *, start_after: str | None, limit: int
    ) -> tuple[list[FileInfo], str | None]:
        return await in_thread(self._list, prefix, start_after, limit)

    # ---------------------------------------------------------------- writing

    @contextlib.contextmanager
    def _commit_lock(self) -> Iterator[None]:
        """Serializes renames and removals, across threads and (with fcntl) processes."""
        with self._lock:
            if fcntl is None:  # pragma: no cover
                yield
                return
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / _LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _create_temp(self, blob: Path) -> tuple[int, Path]:
        for _ in range(5):
            try:
                blob.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise Conflict("a file exists where this path needs a folder") from None
            if blob.is_dir():
                raise Conflict("a folder exists at this path")
            tmp = blob.parent / f"{_TMP}{_secrets.token_hex(8)}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            except FileNotFoundError:
                continue  # the folder was pruned by a concurrent remove: make it again
            return fd, tmp
        raise Internal("could not create a temporary file")  # pragma: no cover

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def _check_condition(self, key: str, condition: UploadCondition | None) -> None:
        if condition is None:
            return
        info = self._stat(key)
        if (info.version if info is not None else None) == condition.version:
            return
        if condition.version is None:
            raise Conflict("a file was stored at this path after this upload URL was made: ask for a new one")
        raise Conflict("the file was replaced or removed after this upload URL was made: ask for a new one")

    def check_condition(self, key: str, condition: UploadCondition | None) -> None:
        """:class:`Conflict` if ``key`` does not hold what ``condition`` says (now; :meth:`write`
        checks again at the commit, which is what counts)."""
        self._check_condition(key, condition)

    def _commit(
        self,
        fd: int,
        tmp: Path,
        blob: Path,
        key: str,
        content_type: str,
        uploader: str | None,
        md5: str,
        condition: UploadCondition | None,
    ) -> FileInfo:
        os.fsync(fd)
        st = os.fstat(fd)
        updated = self.clock()
        gen = _secrets.token_hex(16)
        meta = {
            "contentType": content_type,
            "uploader": uploader,
            "updated": updated,
            "md5": md5,
            "gen": gen,
            "size": st.st_size,
            "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
        }
        meta_tmp = blob.parent / f"{_TMP}{_secrets.token_hex(8)}.json"
        mfd = os.open(meta_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            self._write_all(mfd, orjson.dumps(meta))
            os.fsync(mfd)
        finally:
            os.close(mfd)
        meta_path = self._meta_path(blob)
        try:
            with self._commit_lock():
                if blob.is_dir():
                    raise Conflict("a folder exists at this path")
                # Under the lock every writer and remover waits: what is checked here is
                # what the rename replaces.
                self._check_condition(key, condition)
                meta_path.parent.mkdir(exist_ok=True)
                os.replace(tmp, blob)
                os.replace(meta_tmp, meta_path)
                shutil.rmtree(self._thumb_dir(blob), ignore_errors=True)  # of the replaced file
        finally:
            meta_tmp.unlink(missing_ok=True)
        for directory in (blob.parent, meta_path.parent):
            fsync_dir(directory)
        return FileInfo(key, st.st_size, content_type, updated, uploader, f'"{md5}"', gen)

    async def write(
        self,
        key: str,
        body: AsyncIterator[bytes],
        *,
        size: int | None,
        content_type: str,
        uploader: str | None,
        condition: UploadCondition | None = None,
        min_size: int = 0,
        max_size: int | None = None,
    ) -> FileInfo:
        """Store exactly ``size`` bytes (None: ``min_size``..``max_size``) from ``body`` at
        ``key``, atomically.

        More bytes: :class:`PayloadTooLarge` as soon as they arrive; fewer:
        :class:`InvalidArgument`; the key no longer as ``condition`` says: :class:`Conflict`.
        Either way (and on a disconnect) nothing is stored.
        """
        if size is not None:
            min_size = max_size = size
        if max_size is None:
            raise ValueError("write needs size or max_size")
        blob = self._path(key)
        fd, tmp = await in_thread(self._create_temp, blob)
        committed = False
        try:
            received = 0
            digest = hashlib.md5(usedforsecurity=False)
            pending: list[bytes] = []
            buffered = 0
            async for chunk in body:
                received += len(chunk)
                if received > max_size:
                    raise PayloadTooLarge(
                        f"the file is larger than the {max_size} bytes the URL was signed for"
                    )
                digest.update(chunk)
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= _WRITE_CHUNK:
                    await in_thread(self._write_all, fd, b"".join(pending))
                    pending, buffered = [], 0
            if received < min_size:
                signed = size if size is not None else f"at least {min_size}"
                raise InvalidArgument(f"the file has {received} bytes; the URL was signed for {signed}")
            if pending:
                await in_thread(self._write_all, fd, b"".join(pending))
            info = await in_thread(
                self._commit, fd, tmp, blob, key, content_type, uploader, digest.hexdigest(), condition
            )
            committed = True
            return info
        finally:
            os.close(fd)
            if not committed:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _remove(self, key: str) -> None:
        blob = self._path(key)
        meta = self._meta_path(blob)
        with self._commit_lock():
            try:
                if _stat.S_ISDIR(os.lstat(blob).st_mode):
                    return  # a folder, not a file
                blob.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return
            meta.unlink(missing_ok=True)
            thumbs = self._thumb_dir(blob)
            shutil.rmtree(thumbs, ignore_errors=True)
            with contextlib.suppress(OSError):
                thumbs.parent.rmdir()  # the folder's thumbnail folder, once empty
            # Prune folders left empty, up to (not including) the root.
            for directory in (meta.parent, *blob.parents):
                if directory == self.root or self.root not in directory.parents:
                    break
                try:
                    directory.rmdir()
                except OSError:
                    if directory != meta.parent:
                        break

    async def remove(self, key: str) -> None:
        await in_thread(self._remove, key)

    async def close(self) -> None:
        return None


def _check_names(segments: list[str]) -> None:
    for segment in segments:
        if len(segment.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise InvalidArgument(
                f"path segments may be at most {MAX_NAME_BYTES} bytes in local file storage"
            )
