"""The ``aggregate`` op's statement (docs/data.md#aggregation) for SQLite and PostgreSQL,
built from :mod:`minibase.data.sql`'s field expressions and filter compiler."""

from __future__ import annotations

from collections.abc import Sequence

from .filters import Filter, Path
from .sql import _TRUE, SQLITE, Dialect, Params, _compile, _Field, _field

__all__ = ["compile_aggregate"]

AccumulatorOp = str  # "count" | "sum" | "avg" | "min" | "max"


class _Fields:
    """The expressions reading each path. SQLite reads each field once per document, in a
    subquery (``json_type`` and ``json_extract`` each parse the whole body: the rank,
    number and string expressions of a few fields would parse it a dozen times)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.fields: dict[Path, _Field] = {}
        self.flags: dict[Path, str] = {}  # SQLite: whether a float was among a group's values
        self.inner: list[str] = []  # SQLite: the subquery's columns

    def __call__(self, path: Path) -> _Field:
        if path in self.fields:
            return self.fields[path]
        fld = _field(self.dialect, path)
        if self.dialect is SQLITE and fld.column is None:
            n = len(self.inner)
            lit = "'$." + ".".join(path) + "'"
            self.inner.append(f"json_type(body, {lit}) AS t{n}, json_extract(body, {lit}) AS v{n}")
            t, v = f"t{n}", f"v{n}"
            self.flags[path] = f"max({t} = 'real')"
            fld = _Field(
                rank=(
                    f"CASE {t} WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'true' THEN 1"
                    " WHEN 'false' THEN 1 WHEN 'array' THEN 4 WHEN 'object' THEN 5 ELSE 0 END"
                ),
                num=f"CASE {t} WHEN 'integer' THEN {v} WHEN 'real' THEN {v} WHEN 'true' THEN 1 ELSE 0 END",
                txt=f"CASE {t} WHEN 'text' THEN {v} ELSE '' END",
                column=None,
                present=f"{t} IS NOT NULL",
                absent=f"{t} IS NULL",
            )
        self.fields[path] = fld
        return fld

    def flag(self, path: Path) -> str:
        return self.flags.get(path) or self.dialect._float_flag(path)


def _accumulator(op: AccumulatorOp, fld: _Field, dialect: Dialect) -> list[str]:
    num = f"CASE WHEN {fld.rank} = 2 THEN {fld.num} END"
    if op == "sum":
        return [dialect._sum(num)]
    if op == "avg":
        return [dialect._sum(num), f"count({num})"]
    if op in ("min", "max"):
        return [
            f"{op}(CASE WHEN {fld.rank} = 1 THEN {fld.num} END)",
            f"{op}({num})",
            f"{op}(CASE WHEN {fld.rank} = 3 THEN {fld.txt} END)",
        ]
    raise ValueError(f"unknown accumulator {op!r}")


def compile_aggregate(
    dialect: Dialect,
    collection: str,
    where: Filter,
    keys: Sequence[Path],
    accumulators: Sequence[tuple[AccumulatorOp, Path | None]],
    max_groups: int,
) -> tuple[str, list[object]]:
    """``SELECT … GROUP BY`` the ``keys`` over the documents matching ``where``, at most
    ``max_groups`` rows, and its parameters.

    A row is, per key, ``(rank, num, txt, is_float)`` (documents whose key field holds an
    array or an object are left out), then per accumulator: ``count`` its count; ``sum``
    the exact sum of the numbers as decimal text (NULL without numbers); ``avg`` that sum
    and how many numbers; ``min``/``max`` the least/greatest boolean, number and string
    (three columns). :mod:`minibase.data.aggregate` decodes it.
    """
    p = Params(dialect)
    field = _Fields(dialect)
    select: list[str] = []
    group: list[str] = []
    conds: list[str] = []
    for path in keys:
        fld = field(path)
        if fld.column is not None:
            select += ("3", "0", fld.txt, "0")
            group.append(fld.txt)
        else:
            select += (fld.rank, fld.num, fld.txt, field.flag(path))
            group += (fld.rank, fld.num, fld.txt)
            conds.append(f" AND {fld.rank} < 4")
    for op, ref in accumulators:
        if op == "count" or ref is None:
            select.append("count(*)")
        else:
            select += _accumulator(op, field(ref), dialect)
    scan = f"collection = {p.add(collection)}"
    cond = _compile(where, dialect, p)
    if cond != _TRUE:
        scan += f" AND {cond}"
    if dialect is SQLITE:
        # The subquery's LIMIT keeps SQLite from flattening it into the grouping query.
        cols = ", ".join(["collection", "uid", "id", *field.inner])
        source = f"(SELECT {cols} FROM documents WHERE {scan} LIMIT -1) WHERE 1=1"  # noqa: S608 - validated paths, bound values
    else:
        source = f"documents WHERE {scan}"
    # Without keys, one group of every match (collection is the same in every row), and
    # none at all when nothing matches.
    by = ", ".join(group or ["collection"])
    sql = f"SELECT {', '.join(select or ['count(*)'])} FROM {source}{''.join(conds)} GROUP BY {by}"  # noqa: S608 - validated paths, bound values
    return f"{sql} LIMIT {p.add(max_groups)}", p.values
