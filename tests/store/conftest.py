"""Fixtures of the store tests: the fake TableStore server the data suite starts too."""

from tests.data.conftest import fake_tablestore  # noqa: F401  (fixture)
