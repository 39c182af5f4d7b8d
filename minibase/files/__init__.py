"""The ``files`` function and its backends (docs/files.md).

* :class:`FilesFunction` — the function itself: ``uploadUrl``, ``uploadForm``,
  ``downloadUrl``, ``downloadUrls``, ``stat``, ``list``, ``remove``.
* :func:`build_file_store` — the backend ``files.url`` names: :class:`LocalFileStore`
  (``file://DIR``) or ``S3FileStore`` (``s3://``, ``oss://``; needs the ``s3`` extra).
* :class:`LocalFilesApp` — the ASGI app serving the local backend's signed URLs (and public
  areas' stable ones, thumbnails and form uploads) at ``/files/{key}``.
"""

from __future__ import annotations

from .api import FilesFunction
from .http import LocalFilesApp
from .store import FileInfo, FileStore, LocalFileStore, SignedUpload, UploadCondition, build_file_store

__all__ = [
    "FileInfo",
    "FileStore",
    "FilesFunction",
    "LocalFileStore",
    "LocalFilesApp",
    "SignedUpload",
    "UploadCondition",
    "build_file_store",
]
