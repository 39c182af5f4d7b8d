"""File backends: local disk and S3-compatible object storage, behind one protocol."""

from __future__ import annotations

from collections.abc import Sequence

from ...config import Config
from ...errors import ConfigError
from .base import FileInfo, FileStore, SignedUpload, UploadCondition
from .local import LocalFileStore

__all__ = ["FileInfo", "FileStore", "LocalFileStore", "SignedUpload", "UploadCondition", "build_file_store"]


def build_file_store(config: Config, secrets: Sequence[str]) -> FileStore:
    """The store ``files.url`` names. ``secrets`` are the server's MAC secrets (the first
    signs, all verify): the local backend signs its URLs with a key derived from them."""
    from ..thumbs import Thumbnailer

    files = config.files
    root = config.files_root
    thumbs = Thumbnailer.from_config(files)
    if root is not None:
        return LocalFileStore(
            root,
            secrets,
            public_prefixes=files.public_prefixes,
            public_max_age=int(files.public_max_age),
            thumbs=thumbs,
        )
    location = files.s3
    if location is None:  # pragma: no cover - parse_config refuses other schemes
        raise ConfigError("files.url", "expected file://, s3:// or oss://")
    from .s3 import S3FileStore

    return S3FileStore(
        location,
        access_key_id=files.access_key_id,
        secret_access_key=files.secret_access_key,
        session_token=files.session_token,
        public_url=files.public_url,
        thumbs=thumbs,
    )
