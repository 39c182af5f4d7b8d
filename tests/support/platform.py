"""Helpers for the tests (moved out of tests/platform/conftest.py: conftest files hold fixtures only)."""

from __future__ import annotations

import secrets
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from minibase.app import create_app
from minibase.config import Config, parse_config
from minibase.core import Minibase
from tests.support.config import Live, base_raw
from tests.support.live import run_uvicorn


def write_module(tmp_path: Path, source: str) -> str:
    name = f"fns_{secrets.token_hex(4)}"  # unique: modules are cached per process
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def make_config(
    tmp_path: Path, environ: dict[str, str] | None = None, data: str = "data", **sections: Any
) -> Config:
    """A config whose functions module lives in ``tmp_path``; ``data``: its data folder."""
    return parse_config(
        base_raw(**sections), data_dir=tmp_path / data, base_dir=tmp_path, environ=environ or {}
    )


@contextmanager
def serve(*configs: Config, clock: Callable[[], float] = time.time) -> Iterator[list[Live]]:
    """One real server per config (several configs on one database: several instances)."""
    with ExitStack() as stack:
        servers = []
        for config in configs:
            core = Minibase(config, clock=clock)
            url = stack.enter_context(run_uvicorn(create_app(config, core=core)))
            servers.append(Live(url, core))
        try:
            yield servers
        finally:
            for s in servers:
                for c in s.clients:
                    c.close()
