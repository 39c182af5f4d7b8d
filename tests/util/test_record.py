from __future__ import annotations

from typing import Any

import pytest

from minibase.util.record import field, record, record_fields, replace


@record
class Point:
    """A record for the tests."""

    x: int
    y: int = 0
    tags: dict[str, Any] = field(default_factory=dict)
    secret: str = field(default="s3cret", repr=False)

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_init_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags, p.secret) == (1, 0, {}, "s3cret")
    assert Point(1).tags is not Point(1).tags  # a fresh default each time
    assert Point(1, 2, {"a": 1}, "k") == Point(x=1, y=2, tags={"a": 1}, secret="k")
    assert Point(3, -4).norm1 == 7


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, {}, "s", 5), {}), ((1,), {"z": 1}), ((1,), {"x": 2})],
)
def test_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_frozen_slotted_hashable() -> None:
    p = Point(1, 2, secret="x")
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.other = 1  # type: ignore[attr-defined]
    assert not hasattr(p, "__dict__")

    @record
    class Pair:
        """Hashable fields only."""

        a: int
        b: str = ""

    assert len({Pair(1, "x"), Pair(1, "x"), Pair(2, "x")}) == 2
    assert hash(Pair(1, "x")) == hash(Pair(1, "x"))
    with pytest.raises(TypeError):  # like a frozen dataclass holding a dict
        hash(p)


def test_equality_is_by_type_and_fields() -> None:
    @record
    class Other:
        """Same fields, another type."""

        x: int
        y: int = 0

    assert Point(1) == Point(1) and Point(1) != Point(2)
    assert Point(1) != Other(1)
    assert Point(1) != (1, 0)


def test_repr_hides_secrets() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags={})"


def test_replace_and_fields() -> None:
    p = Point(1, 2, {"a": 1})
    q = replace(p, y=5)
    assert (q.x, q.y, q.tags) == (1, 5, {"a": 1}) and p.y == 2
    assert record_fields(Point) == ("x", "y", "tags", "secret") == record_fields(p)
    with pytest.raises(TypeError):
        replace(p, z=1)


def test_a_required_field_after_a_default_is_refused() -> None:
    with pytest.raises(TypeError):

        @record
        class Bad:
            """Out of order."""

            a: int = 1
            b: int


def test_deepcopy_and_pickle_round_trip() -> None:
    import copy
    import pickle

    p = Point(1, 2, {"a": [1, 2]}, "k")
    for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p)), copy.copy(p)):  # noqa: S301
        assert q == p
        assert type(q) is Point
        assert q.secret == "k"
    deep = copy.deepcopy(p)
    assert deep.tags is not p.tags and deep.tags["a"] is not p.tags["a"]  # deep, not shared


def test_config_deepcopies_and_pickles() -> None:
    import copy
    import pickle

    from minibase.config import load_config

    # A whole Config (records nested in records, rules, tuples, mappings) copies and pickles
    # to an equal value.
    cfg = load_config("examples/todo/minibase.toml", environ={})
    assert copy.deepcopy(cfg) == cfg
    assert pickle.loads(pickle.dumps(cfg)) == cfg  # noqa: S301 (our own bytes)


@record(compiled=True)
class FastPoint:
    """The same record with a generated ``__init__`` (hot-path values)."""

    x: int
    y: int = 0
    tags: dict[str, Any] = field(default_factory=dict)
    secret: str = field(default="s3cret", repr=False)


@pytest.mark.parametrize("cls", [Point, FastPoint])
def test_both_flavours_behave_alike(cls: Any) -> None:
    p = cls(1)
    assert (p.x, p.y, p.tags, p.secret) == (1, 0, {}, "s3cret")
    assert cls(1).tags is not cls(1).tags
    assert cls(1, 2, {"a": 1}, "k") == cls(x=1, y=2, tags={"a": 1}, secret="k")
    assert repr(cls(1, 2)) == f"{cls.__name__}(x=1, y=2, tags={{}})"
    assert replace(p, y=3).y == 3 and cls.__match_args__ == ("x", "y", "tags", "secret")
    for args, kwargs in [((), {}), ((1, 2, {}, "s", 5), {}), ((1,), {"z": 1}), ((1,), {"x": 2})]:
        with pytest.raises(TypeError):
            cls(*args, **kwargs)
    with pytest.raises(AttributeError):
        p.x = 5
    assert not hasattr(p, "__dict__")
    assert Point(1) != FastPoint(1)  # another type, same fields


def test_compiled_records_hash_by_fields() -> None:
    @record(compiled=True)
    class Pair:
        """Hashable fields only."""

        a: int
        b: str = ""

    assert len({Pair(1, "x"), Pair(1, "x"), Pair(2, "x")}) == 2
    assert Pair.__init__.__qualname__.endswith("Pair.__init__")
    match Pair(3, "y"):
        case Pair(a, b):
            assert (a, b) == (3, "y")
