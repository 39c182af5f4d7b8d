"""ASGI app factories for bench/servers.py: the bare app and minibase built from
``BENCH_CONFIG``/``BENCH_DATA``, for ASGI servers that import an app by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def minibase() -> Any:
    from minibase.app import create_app
    from minibase.config import load_config

    return create_app(load_config(Path(os.environ["BENCH_CONFIG"]), data_dir=os.environ["BENCH_DATA"]))


def bare() -> Any:
    from bare_app import app

    return app
