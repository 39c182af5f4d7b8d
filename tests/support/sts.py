"""Helpers shared by tests (from tests/auth/test_sts.py)."""

from __future__ import annotations

AK = "LTAI5tMinibaseTestKey"


SK = "caller-secret-0123456789abcdefghij"


TOKEN = "CAIS-caller-token-of-the-fc-runtime"


ACCOUNT = "1234567890123456"


ROLE = f"acs:ram::{ACCOUNT}:role/minibase-invoker"


ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
    "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
}
