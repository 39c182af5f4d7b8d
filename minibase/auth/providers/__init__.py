"""Login providers, built from the config. Platform modules are imported only if used."""

from __future__ import annotations

from pathlib import Path

from ...config import AuthConfig
from ...errors import ConfigError
from .base import Identity, Provider

__all__ = ["Identity", "Provider", "build_providers"]


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(key, f"cannot read {path}: {e.strerror}") from None


def build_providers(auth: AuthConfig) -> dict[str, Provider]:
    """One provider per configured platform; ConfigError (naming the key) for bad keys."""
    out: dict[str, Provider] = {}
    if auth.alipay is not None:
        from .alipay import AlipayProvider

        a = auth.alipay
        private = _read(a.private_key_file, "auth.alipay.private_key_file")
        public = _read(a.alipay_public_key_file, "auth.alipay.alipay_public_key_file")
        try:
            out["alipay"] = AlipayProvider(a.app_id, private, public, a.gateway, a.timeout)
        except ValueError as e:
            raise ConfigError("auth.alipay", str(e)) from None
    if auth.wechat is not None:
        from .wechat import WechatProvider

        w = auth.wechat
        out["wechat"] = WechatProvider(w.app_id, w.secret, w.api, w.timeout)
    if auth.douyin is not None:
        from .douyin import DouyinProvider

        d = auth.douyin
        out["douyin"] = DouyinProvider(d.app_id, d.secret, d.api, d.timeout)
    if auth.dev_enabled:
        from .dev import DevProvider

        out["dev"] = DevProvider()
    return out
