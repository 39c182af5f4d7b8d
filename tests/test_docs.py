"""The documentation stays true to the code: every config key is documented, every page
exists, and every relative link resolves.

docs/configuration.md holds one table per config section, under a heading naming the section
as TOML spells it (``[auth.alipay]``); each key is a row whose first cell starts with the key
in backticks. The keys are taken from the declarations of the typed records of
:mod:`minibase.config` (each field's metadata says how the file spells it, or that it is not
a key of the file) and from the parser's own list of accepted keys (what a file may say).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from minibase.config import Config, parse_config
from minibase.errors import ConfigError
from minibase.util.record import record_fields, record_meta

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The configuration page, in English and in Chinese: both list every key.
CONFIG_PAGES = [DOCS / "configuration.md", DOCS / "zh-CN" / "configuration.md"]

# Records that are one value in the file (a string), not a table of their own.
VALUE_RECORDS = {"Rate"}
# Name placeholder for tables keyed by the user's own names.
NAME = "NAME"


def _record_types(tp: Any) -> list[type]:
    """The record classes inside a field type (``X | None`` → [X])."""
    if isinstance(tp, type) and hasattr(tp, "__record_fields__"):
        return [tp]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _record_types(arg)]
    return []


def _mapping_values(tp: Any) -> Any:
    """The value type of a ``Mapping[str, V]`` field, else None."""
    origin = typing.get_origin(tp)
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return typing.get_args(tp)[1]
    return None


def config_keys(cls: type = Config, section: str = "") -> Iterator[tuple[str, str, str]]:
    """(section, key, where in the code) for every key the typed Config reads from the file.

    A record-typed field is a sub-table; ``Mapping[str, Record]`` is a table of named
    sub-tables (``collections.NAME``); ``Mapping[str, value]`` is one key whose entries are
    named by the user (``functions.timeouts``).
    """
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    for name in record_fields(cls):
        where = f"{cls.__name__}.{name}"
        meta = record_meta(cls, name)
        if "derived" in meta:  # not a key of the file: says where its value comes from
            continue
        sub, _, key = (meta.get("key") or name).rpartition(".")
        here = ".".join(p for p in (section, sub) if p)
        tp = hints[name]
        records = [r for r in _record_types(tp) if r.__name__ not in VALUE_RECORDS]
        values = _mapping_values(tp)
        if records:
            yield from config_keys(records[0], f"{here}.{key}".lstrip("."))
        elif values is not None and _record_types(values):
            yield from config_keys(_record_types(values)[0], f"{here}.{key}.{NAME}".lstrip("."))
        else:
            yield here, key, f"{where} in {cls.__module__.replace('.', '/')}.py"


def _page_sections(text: str) -> dict[str, set[str]]:
    """Section (from a heading holding `[section]`) → the keys of its tables' rows."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            m = re.search(r"`\[([A-Za-z0-9_.]+)\]`", line)
            current = sections.setdefault(m.group(1), set()) if m else None
        elif current is not None and line.startswith("|"):
            first = line.split("|")[1]
            current.update(re.findall(r"`([A-Za-z0-9_]+)(?:[`.])", first))
    return sections


def _undocumented(keys: list[tuple[str, str, str]], page: Path) -> list[str]:
    rel = page.relative_to(ROOT).as_posix()
    assert page.exists(), f"{rel} is missing"
    sections = _page_sections(page.read_text(encoding="utf-8"))
    missing = []
    for section, key, where in keys:
        full = f"{section}.{key}" if section else key
        heading = f"[{section}]" if section else "the top level"
        if section not in sections:
            missing.append(
                f"config key {full} ({where}) is not documented: {rel} has no section for it; "
                f"add a heading holding `{heading}` with a table whose rows are "
                f"| `{key}` | default | what it does |"
            )
        elif key not in sections[section]:
            missing.append(
                f"config key {full} ({where}) is not documented: add a row | `{key}` | default | "
                f"what it does | to the table under the `{heading}` heading of {rel}"
            )
    return missing


@pytest.mark.parametrize("page", CONFIG_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_config_field_is_documented(page: Path) -> None:
    keys = list(config_keys())
    assert len(keys) > 50, "the walk over the Config records found too few keys"
    missing = _undocumented(keys, page)
    assert not missing, "\n".join(missing)


def test_the_walk_finds_a_new_field() -> None:
    """The check above can fail: a key the page lacks is reported with its section."""
    where = "LimitsConfig.max_nonsense in minibase/config/limits.py"
    missing = _undocumented([("limits", "max_nonsense", where)], CONFIG_PAGES[0])
    assert missing and "add a row | `max_nonsense` |" in missing[0] and "`[limits]`" in missing[0]


# The parser's accepted keys: each table is probed with a key no table accepts, and the
# error lists the expected ones. That covers keys the records do not hold as fields.
_PROBE = "zz_probe_key"


def _probe(section: str) -> set[str]:
    raw: dict[str, Any] = {"auth": {"dev": {"enabled": True}}}
    table = raw
    for part in section.split(".") if section else []:
        table = table.setdefault("example" if part == NAME else part, {})
    table[_PROBE] = 1
    with pytest.raises(ConfigError) as e:
        parse_config(raw, environ={})
    m = re.search(r"expected one of: ([^)]*)\)", str(e.value))
    assert m and e.value.key == f"{section}.{_PROBE}".lstrip(".").replace(NAME, "example"), (
        f"probing [{section}] did not list its keys: {e.value}"
    )
    return set(m.group(1).split(", "))


@pytest.mark.parametrize("page", CONFIG_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_key_the_parser_accepts_is_documented(page: Path) -> None:
    by_section: dict[str, set[str]] = {}
    for section, key, _ in config_keys():
        by_section.setdefault(section, set()).add(key)
    keys: list[tuple[str, str, str]] = []
    for section, known in sorted(by_section.items()):
        accepted = _probe(section)
        assert known <= accepted, f"[{section}]: the walk's spelling of {known - accepted} is wrong"
        for k in sorted(accepted):
            sub = f"{section}.{k}".lstrip(".")
            if not any(s == sub or s.startswith(sub + ".") for s in by_section):  # a table, not a key
                keys.append((section, k, f"accepted in [{section}] by minibase/config/"))
    missing = _undocumented(keys, page)
    assert not missing, "\n".join(missing)


# ------------------------------------------------------------ links and pages

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted(DOCS.rglob("*.md"))]


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower-cased, punctuation dropped, spaces to hyphens."""
    out: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_relative_links_resolve() -> None:
    broken = []
    for page in _markdown_files():
        if not page.exists():
            continue
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in _LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto: not a file of the repository
            file, _, anchor = target.partition("#")
            dest = (page.parent / unquote(file)).resolve() if file else page
            rel = page.relative_to(ROOT)
            if not dest.exists():
                broken.append(f"{rel}: link to {target}: {file} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{rel}: link to {target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
            elif not dest.is_relative_to(ROOT):
                broken.append(f"{rel}: link to {target} leaves the repository")
    assert not broken, "\n".join(broken)


def test_docs_exist_for_every_topic() -> None:
    pages = [
        "README.md",
        "architecture.md",
        "http-api.md",
        "data.md",
        "files.md",
        "functions.md",
        "realtime.md",
        "configuration.md",
        "deploy-fc.md",
        "security.md",
        "development.md",
        "zh-CN/quickstart.md",
        "zh-CN/configuration.md",
        "zh-CN/deploy-fc.md",
    ]
    assert [p for p in pages if not (DOCS / p).exists()] == []
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    assert [p for p in pages[1:] if f"({p})" not in index] == [], "docs/README.md links every page"


# ------------------------------------------------------------ examples

# Placeholders for the "env:" names the examples read (the values only need to parse).
EXAMPLE_ENV = {
    "MINIBASE_SECRET": "s" * 32,
    "MINIBASE_STS_ROLE_ARN": "acs:ram::1234567890123456:role/minibase",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-example",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "example-secret",
}


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v
    return into


def _toml_examples() -> list[tuple[str, str]]:
    out = []
    for page in _markdown_files():
        if page.exists():
            text = page.read_text(encoding="utf-8")
            for i, block in enumerate(re.findall(r"```toml\n(.*?)```", text, re.S)):
                out.append((f"{page.relative_to(ROOT).as_posix()}#{i + 1}", block))
    return out


@pytest.mark.parametrize(("where", "block"), _toml_examples(), ids=[w for w, _ in _toml_examples()])
def test_toml_examples_are_valid_config(where: str, block: str, tmp_path: Path) -> None:
    """Every minibase.toml fragment the docs show parses (beside a dev login, in the TODO
    example's folder, so its schema and functions paths resolve)."""
    fragment = tomllib.loads(block)
    raw = _merge({"auth": {"dev": {"enabled": True}}}, fragment)
    parse_config(raw, base_dir=ROOT / "examples" / "todo", data_dir=tmp_path, environ=EXAMPLE_ENV)


# ------------------------------------------------------------ facts declared in the code


def _section_text(page: Path, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of the same level."""
    text = page.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"{page.relative_to(ROOT)} has no '## {heading}' section"
    return m.group(1)


def test_every_error_code_is_in_the_error_table() -> None:
    from minibase import errors

    table = _section_text(DOCS / "http-api.md", "Errors")
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d{3}) \|", table, re.M))
    codes = {
        cls.code: cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MinibaseError) and "code" in vars(cls)
    }
    wrong = [
        f"{code} {status}: add the row | `{code}` | {status} | when | to the table under '## Errors' "
        f"in docs/http-api.md"
        for code, status in sorted(codes.items())
        if rows.get(code) != str(status)
    ]
    assert len(codes) >= 12 and not wrong, "\n".join(wrong)


def test_every_deploy_option_is_documented() -> None:
    from minibase.cli import build_parser

    parser = build_parser()
    deploy = next(a for a in parser._actions if a.dest == "command").choices["deploy"]  # type: ignore[union-attr]
    fc = next(a for a in deploy._actions if a.dest == "target").choices["fc"]  # type: ignore[union-attr]
    options = [o for a in fc._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    assert len(options) > 10
    for page in (DOCS / "deploy-fc.md", DOCS / "zh-CN" / "deploy-fc.md"):
        rows = [
            line.split("|")[1]
            for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith("|")
        ]
        documented = {o for first in rows for o in re.findall(r"`(--[a-z-]+)", first)}
        missing = [o for o in options if o not in documented]
        assert not missing, f"{page.relative_to(ROOT)}: add rows for {missing} to its table of options"


def test_no_citation_of_a_document_outside_the_repository() -> None:
    out = subprocess.run(
        # -I skips binaries (stale bytecode); node_modules holds third-party code.
        [
            "grep",
            "-rnI",
            "--exclude-dir=node_modules",
            "--exclude-dir=__pycache__",
            "DESIGN" + " §",
            "minibase",
            "tests",
            "README.md",
            "README.zh-CN.md",
            "docs",
            "clients",
            "examples",
            "bench",
            "scripts",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # The pattern is split so this file does not find itself.
    assert out.returncode == 1, "cite docs/ instead:\n" + out.stdout
