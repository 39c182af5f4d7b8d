#!/usr/bin/env python3
"""Writes the JS SDK's code → status table (clients/js/src/codes.js) from minibase's error
tree, and beside it the calls both clients may send again after 503 Unavailable (from the
Python client's RETRY_SAFE), so the two clients cannot disagree.

Run it (``.venv/bin/python scripts/codes.py``) after adding or changing an error class in
minibase/errors.py or RETRY_SAFE in minibase/client.py; tests/test_errors.py fails while
the checked-in file differs. The table
is a JS module, not JSON: mini-programs cannot read a JSON file at run time, and the SDK
stays free of dependencies and loaders.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "clients" / "js" / "src" / "codes.js"


def render() -> str:
    """The module's text from the tree (and the Python client's retry-safe calls) as they are now."""
    sys.path.insert(0, str(ROOT))
    from minibase.client import RETRY_BATCH_OPS, RETRY_SAFE
    from minibase.errors import error_codes

    def names(ops: frozenset[str]) -> str:
        return "[" + ", ".join(f"'{op}'" for op in sorted(ops)) + "]"

    codes = "".join(f"  {code}: {status},\n" for code, status in error_codes().items())
    safe = "".join(f"  {fn}: {names(ops)},\n" for fn, ops in sorted(RETRY_SAFE.items()))
    return (
        "// Generated from minibase/errors.py and minibase/client.py by scripts/codes.py: do not edit by hand.\n"
        "\n"
        "/** HTTP status of each stable error code. */\n"
        f"export const CODE_STATUS = {{\n{codes}}}\n"
        "\n"
        "/** Calls sent again after 503 Unavailable: per function, the ops that cannot apply anything twice. */\n"
        f"export const RETRY_SAFE = {{\n{safe}}}\n"
        "\n"
        "/** A db batch is sent again after 503 Unavailable when every op in it is one of these. */\n"
        f"export const RETRY_BATCH_OPS = {names(RETRY_BATCH_OPS)}\n"
    )


def main() -> int:
    text = render()
    if TARGET.exists() and TARGET.read_text(encoding="utf-8") == text:
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(text.splitlines())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
