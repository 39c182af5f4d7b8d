#!/usr/bin/env python3
"""Writes the JS SDK's code → status table (clients/js/src/codes.js) from minibase's error tree.

Run it (``.venv/bin/python scripts/codes.py``) after adding or changing an error class in
minibase/errors.py; tests/test_errors.py fails while the checked-in file differs. The table
is a JS module, not JSON: mini-programs cannot read a JSON file at run time, and the SDK
stays free of dependencies and loaders.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "clients" / "js" / "src" / "codes.js"


def render(codes: dict[str, int]) -> str:
    rows = "".join(f"  {code}: {status},\n" for code, status in codes.items())
    return (
        "// Generated from minibase/errors.py by scripts/codes.py: do not edit by hand.\n"
        "\n"
        "/** HTTP status of each stable error code. */\n"
        f"export const CODE_STATUS = {{\n{rows}}}\n"
    )


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from minibase.errors import error_codes

    text = render(error_codes())
    if TARGET.exists() and TARGET.read_text(encoding="utf-8") == text:
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(text.splitlines())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
