from __future__ import annotations

import subprocess
import sys

import minibase


def test_all_is_sorted_and_resolves() -> None:
    assert minibase.__all__ == sorted(minibase.__all__)
    for name in minibase.__all__:
        assert getattr(minibase, name) is not None


def test_import_is_light() -> None:
    """`import minibase` must not drag in the HTTP stack or crypto (cold start)."""
    code = "import sys, minibase; print(' '.join(sorted(sys.modules)))"
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    for heavy in ("starlette", "uvicorn", "httpx", "cryptography", "sqlite3"):
        assert heavy not in mods, heavy
