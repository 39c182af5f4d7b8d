"""SQLite's search index for ``$search`` (docs/data.md#text-search): FTS5 with the trigram
tokenizer, kept by triggers in every write's own transaction.

- ``search_fields``: what the config declares (collection, JSON path such as ``$.title``);
  :func:`sync` makes it match the config at start, indexing existing documents of a newly
  declared field and dropping the rows of one no longer declared.
- ``search_rows``: one row per (document, declared field holding a string); its rowid is
  the FTS row's, so a document's entries are found and removed through an index.
- ``doc_search``: the FTS5 table (the strings). The compiled ``$search`` looks candidates
  up there, then tests the exact semantics on the document itself.

The triggers fire on every insert, replace, update and delete of ``documents`` (the writes
of ``store/writes.py`` and any other), but do nothing for a collection that declares no
search field. Tables and triggers are created only once a collection declares one, so a
SQLite built without FTS5 serves everything else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from ..data.filters import Path
from ..errors import ConfigError

__all__ = ["sync"]

_UNINDEX = """
    DELETE FROM doc_search WHERE rowid IN
        (SELECT rowid FROM search_rows WHERE collection = {r}.collection AND uid = {r}.uid AND id = {r}.id);
    DELETE FROM search_rows WHERE collection = {r}.collection AND uid = {r}.uid AND id = {r}.id;
"""
_INDEX = """
    INSERT INTO search_rows (collection, uid, id, field)
        SELECT NEW.collection, NEW.uid, NEW.id, f.field FROM search_fields f
        WHERE f.collection = NEW.collection AND json_type(NEW.body, f.field) = 'text';
    INSERT INTO doc_search (rowid, text)
        SELECT r.rowid, json_extract(NEW.body, r.field) FROM search_rows r
        WHERE r.collection = NEW.collection AND r.uid = NEW.uid AND r.id = NEW.id;
"""
_DECLARED = "EXISTS (SELECT 1 FROM search_fields WHERE collection = {r}.collection)"

_DDL = [
    "CREATE TABLE IF NOT EXISTS search_fields (collection TEXT NOT NULL, field TEXT NOT NULL,"
    " PRIMARY KEY (collection, field)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS search_rows (rowid INTEGER PRIMARY KEY, collection TEXT NOT NULL,"
    " uid TEXT NOT NULL, id TEXT NOT NULL, field TEXT NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS search_rows_key ON search_rows (collection, uid, id, field)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS doc_search USING fts5(text, tokenize = 'trigram')",
    # INSERT OR REPLACE fires no delete trigger (recursive_triggers is off): an insert
    # first drops whatever the key had.
    "CREATE TRIGGER IF NOT EXISTS documents_search_insert AFTER INSERT ON documents"
    f" WHEN {_DECLARED.format(r='NEW')} BEGIN {_UNINDEX.format(r='NEW')} {_INDEX} END",
    "CREATE TRIGGER IF NOT EXISTS documents_search_update AFTER UPDATE ON documents"
    f" WHEN {_DECLARED.format(r='OLD')} OR {_DECLARED.format(r='NEW')}"
    f" BEGIN {_UNINDEX.format(r='OLD')} {_INDEX} END",
    "CREATE TRIGGER IF NOT EXISTS documents_search_delete AFTER DELETE ON documents"
    f" WHEN {_DECLARED.format(r='OLD')} BEGIN {_UNINDEX.format(r='OLD')} END",
]


def json_path(path: Path) -> str:
    return "$." + ".".join(path)


def sync(conn: sqlite3.Connection, declared: Mapping[str, Sequence[Path]]) -> None:
    """Make the search index match ``declared`` (collection -> fields), inside the
    caller's transaction."""
    want = {(c, json_path(p)) for c, paths in declared.items() for p in paths}
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_fields'").fetchone()
    if not want and not exists:
        return
    if want:
        for sql in _DDL:
            try:
                conn.execute(sql)
            except sqlite3.OperationalError as e:
                if "fts5" not in str(e) and "trigram" not in str(e):
                    raise
                collection = min(c for c, _ in want)
                raise ConfigError(
                    f"collections.{collection}.search",
                    "needs SQLite's FTS5 with the trigram tokenizer (SQLite 3.34 or later, built"
                    f" with FTS5); this one has not: {e}. Use PostgreSQL, or drop the declaration.",
                ) from None
    have = set(conn.execute("SELECT collection, field FROM search_fields").fetchall())
    for c, f in sorted(have - want):
        conn.execute(
            "DELETE FROM doc_search WHERE rowid IN"
            " (SELECT rowid FROM search_rows WHERE collection = ? AND field = ?)",
            (c, f),
        )
        conn.execute("DELETE FROM search_rows WHERE collection = ? AND field = ?", (c, f))
        conn.execute("DELETE FROM search_fields WHERE collection = ? AND field = ?", (c, f))
    for c, f in sorted(want - have):
        # The documents already stored: indexed now, in this transaction.
        conn.execute("INSERT INTO search_fields VALUES (?, ?)", (c, f))
        conn.execute(
            "INSERT INTO search_rows (collection, uid, id, field) SELECT collection, uid, id, ?"
            " FROM documents WHERE collection = ? AND json_type(body, ?) = 'text'",
            (f, c, f),
        )
        conn.execute(
            "INSERT INTO doc_search (rowid, text) SELECT r.rowid, json_extract(d.body, r.field)"
            " FROM search_rows r JOIN documents d"
            " ON d.collection = r.collection AND d.uid = r.uid AND d.id = r.id"
            " WHERE r.collection = ? AND r.field = ?",
            (c, f),
        )
