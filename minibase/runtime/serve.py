"""``minibase serve``: one uvicorn process serving the ASGI app."""

from __future__ import annotations

import logging
import sys

from ..config import Config


def startup_notes(config: Config) -> list[str]:
    """Warnings a developer should see before the first request."""
    notes = []
    if config.auth.dev_enabled:
        notes.append(
            "WARNING: the 'dev' login provider is enabled: anyone can log in as any user "
            "with authCode 'dev:<name>'. Never enable [auth.dev] in production."
        )
    for name, hint in config.auth.unavailable.items():
        notes.append(f"note: login provider '{name}' is configured but not set up here: {hint}.")
    return notes


def serve(config: Config, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    import uvicorn

    from ..app import create_app

    # Built before uvicorn starts, so a bad key file or secret fails here, with its key named.
    app = create_app(config)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    for note in startup_notes(config):
        print(note, file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # one line per request costs more than the request itself
        server_header=False,
        lifespan="on",
    )
