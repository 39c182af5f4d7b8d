"""Phone numbers: the platform's answer to the mini-program's phone-number button,
exchanged or decrypted with the platform, then stored on the user (``ctx.user.phone``).

- WeChat: ``{code}`` from ``<button open-type="getPhoneNumber">`` →
  ``getuserphonenumber`` (the app's access token) → ``phone_info.phoneNumber``.
- Alipay: ``{response}`` (``my.getPhoneNumber``'s answer: ``response``, ``sign``, …) →
  Alipay's RSA2 signature checked, AES-decrypted with ``[auth.alipay] aes_key`` → ``mobile``.
- Dev logins: ``{phone}`` as given (development only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..auth.sessions import Caller
from ..errors import InvalidArgument, Unavailable

if TYPE_CHECKING:
    from .services import PlatformServices

__all__ = ["link_phone"]

_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,30}")


async def link_phone(services: PlatformServices, caller: Caller, event: Mapping[str, Any]) -> str:
    if services.store is None:
        raise Unavailable("phone numbers need a SQLite or PostgreSQL database")
    provider = caller.provider
    if provider == "wechat":
        client = services.client("wechat")
        if client is None:
            raise InvalidArgument("[auth.wechat] is not configured on this server")
        info = await client._phone(event.get("code"))
        phone = info["phoneNumber"]
    elif provider == "alipay":
        client = services.client("alipay")
        if client is None:
            raise InvalidArgument("[auth.alipay] is not configured on this server")
        answer = event.get("response")
        if answer is None:
            raise InvalidArgument("response is required: my.getPhoneNumber's answer")
        phone = client.decrypt_phone(answer)
    elif provider == "dev":
        phone = event.get("phone")
        if not isinstance(phone, str):
            raise InvalidArgument("a dev login links {phone: '<number>'}")
    else:
        raise InvalidArgument(f"linkPhone is not available for {provider} logins")
    if not isinstance(phone, str) or not _PHONE.fullmatch(phone.strip()):
        raise InvalidArgument("the platform's answer is not a phone number")
    phone = phone.strip()
    await services.store.set_phone(caller.uid, phone, services.clock())
    return phone
