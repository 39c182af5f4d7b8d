"""Helpers for the tests (moved out of tests/examples/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


TODO = ROOT / "examples" / "todo"


EXAMPLE = TODO / "minibase.toml"


MINIBASE = [sys.executable, "-m", "minibase.cli"]


ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_", "WECHAT_"))}


@dataclass
class Served:
    url: str
    data: Path
