"""Reading a parsed TOML document: ``env:NAME`` values, sub-tables, unknown keys, paths.

It only reads; what a value means is the business of the records that declare it
(:mod:`.fields` and the section modules). Every error names the full key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["PLACEHOLDER", "Placeholders", "Reader", "check_keys"]

# What every ``env:NAME`` reads as when a config is checked without its environment
# (``minibase deploy``): a string long enough to pass as a secret.
PLACEHOLDER = "env-placeholder-" + "0" * 16


class Placeholders(Mapping[str, str]):
    """An environment in which every variable is set, to :data:`PLACEHOLDER`."""

    def __getitem__(self, name: str) -> str:
        return PLACEHOLDER

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def check_keys(table: Mapping[str, Any], key: str, allowed: Iterable[str]) -> None:
    """ConfigError naming the first key of ``table`` not in ``allowed`` (a typo should not
    silently fall back to a default)."""
    known = set(allowed)
    for k in table:
        if k not in known:
            where = f"{key}.{k}" if key else k
            raise ConfigError(where, f"unknown key (expected one of: {', '.join(sorted(known))})")


class Reader:
    """The environment and folder a config is read against.

    ``environ`` is where ``env:NAME`` values come from; ``base`` is the config file's folder,
    which relative paths are resolved against. With ``placeholders``, every variable is set
    to :data:`PLACEHOLDER` (or, for a key that declares one, to its kind's placeholder).
    """

    def __init__(self, environ: Mapping[str, str], base: Path, *, placeholders: bool = False) -> None:
        self.environ: Mapping[str, str] = Placeholders() if placeholders else environ
        self.base = base
        self.placeholders = placeholders

    def resolve(self, value: Any, key: str) -> Any:
        """``value``, or the variable it names if it is ``"env:NAME"`` (which must be set)."""
        if isinstance(value, str) and value.startswith("env:"):
            name = value[4:]
            if name not in self.environ or self.environ[name] == "":
                raise ConfigError(key, f"environment variable {name} is not set")
            return self.environ[name]
        return value

    def value(self, table: Mapping[str, Any], key: str, default: Any = None) -> Any:
        """The value of ``key``'s last part in ``table`` (``env:`` resolved; a list is left
        as it is, for its reader to resolve item by item), or ``default``."""
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in table:
            return default
        v = table[leaf]
        return v if isinstance(v, list) else self.resolve(v, key)

    def table(self, parent: Mapping[str, Any], key: str) -> dict[str, Any]:
        """The sub-table ``key`` of ``parent`` (empty if absent)."""
        v = parent.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(v, dict):
            raise ConfigError(key, "expected a table")
        return v

    def tables(self, parent: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
        """``[key.NAME]`` tables: each named sub-table of ``key``."""
        out = self.table(parent, key)
        for name, t in out.items():
            if not isinstance(t, dict):
                raise ConfigError(f"{key}.{name}", "expected a table")
        return out

    def env(self, name: str) -> str | None:
        """An environment variable minibase reads itself (not named in the file); None if unset."""
        return self.environ.get(name) or None

    def path(self, value: str) -> Path:
        """``value`` as a path, relative ones inside the config's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p
