"""The baseline of ``bench/run.py``: a bare Starlette JSON endpoint.

One route, ``GET /`` → ``{"data": {"hello": "world"}}``, served by uvicorn with exactly the
settings ``minibase serve`` uses (``minibase.runtime.serve.uvicorn_options``: its protocol
class with the header timeout and coalesced writes, access log off, no ``server`` header,
lifespan on) in one worker; loop "auto" (uvloop when installed).

    .venv/bin/python bench/bare_app.py --port 8001 [--http h11]
"""

from __future__ import annotations

import argparse
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"data": {"hello": "world"}})


app = Starlette(routes=[Route("/", hello, methods=["GET"])])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    # Only for the reference row of `run.py --h11-baseline`; minibase serve uses "auto".
    p.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    p.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    args = p.parse_args()

    import uvicorn

    from minibase.runtime.serve import uvicorn_options

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    options = uvicorn_options(args.log_level)
    if args.http != "auto":  # the reference rows only: uvicorn's own protocol class
        options["http"] = args.http
    uvicorn.run(app, host=args.host, port=args.port, loop=args.loop, **options)


if __name__ == "__main__":
    main()
