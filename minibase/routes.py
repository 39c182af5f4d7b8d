"""The HTTP routes, declared once. Leaf module (no HTTP library: it is imported at cold start).

:data:`ROUTES` drives the three places that need the routes: the app's fast dispatcher
(``minibase.app``: the function routes, matched here by :class:`Router` without Starlette),
Starlette's table behind it (which answers the other routes, and 405 for a function route
called with another method), and the OpenAPI ``paths`` (``minibase.openapi``: one operation
per route and method, its path parameters read from the template).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from .util.record import record

__all__ = ["FC_API", "ROUTES", "Route", "Router"]

FC_API = "/2016-08-15"  # FC's API version: the prefix of its Invoke API and HTTP-trigger paths

_PARAM = re.compile(r"\{(\w+)\}")


@record
class Route:
    """One route: ``path`` a template (``{name}`` stands for one non-empty path segment)."""

    path: str
    methods: tuple[str, ...]
    handler: str  # what serves it: the app's method ``_<handler>`` or a Starlette endpoint
    name: str  # its OpenAPI operationId (with the method appended when it has several)
    fast: bool = False  # served by the app's own dispatcher (the function routes: the hot path)
    mounted: bool = False  # served under a prefix by a sub-app (only in OpenAPI, when it is served)

    @property
    def params(self) -> tuple[str, ...]:
        """The path parameters' names, in the order they appear."""
        return tuple(m.group(1) for seg in self.path.split("/") if (m := _PARAM.fullmatch(seg)))


ROUTES: tuple[Route, ...] = (
    Route("/session", ("POST",), "session", "session", fast=True),
    Route(FC_API + "/proxy/{service}/session/", ("POST",), "session", "sessionProxy", fast=True),
    Route(FC_API + "/proxy/{service}/session", ("POST",), "session", "sessionProxyNoSlash", fast=True),
    Route("/invoke/{function}", ("POST",), "invoke", "invoke", fast=True),
    Route(
        FC_API + "/services/{service}/functions/{function}/invocations",
        ("POST",),
        "fc_invoke",
        "fcInvoke",
        fast=True,
    ),
    # @webhook handlers: payment notifications and other callers' requests (docs/events.md)
    Route("/webhooks/{name}", ("POST",), "webhook", "webhook", fast=True),
    Route("/healthz", ("GET", "HEAD"), "healthz", "healthz"),
    Route("/openapi.json", ("GET",), "openapi", "openapi"),
    # Realtime watches (docs/realtime.md): served by minibase.realtime.http
    Route("/realtime", ("GET",), "realtime", "realtime", mounted=True),
    Route("/realtime/sse", ("POST",), "realtime_sse", "realtimeEvents", mounted=True),
    # The local files backend's signed URLs, served under /files/ by files.http.LocalFilesApp.
    Route("/files/{key}", ("PUT", "POST", "GET"), "files", "file", mounted=True),
)


_Compiled = tuple[Callable[[list[str]], Any], Any, Callable[[list[str]], Any], bool, Route]


class Router:
    """Matches a request against routes by method and path segments: one dict lookup on
    (method, segment count), then the literal segments compared at once (``itemgetter``:
    no regex and no Python loop on the hot path)."""

    CACHED = 1024  # matched (method, path) pairs remembered: the hot path is a few paths

    def __init__(self, routes: Iterable[Route]) -> None:
        self._table: dict[tuple[str, int], list[_Compiled]] = {}
        self._cache: dict[tuple[str, str], tuple[Route, tuple[str, ...]]] = {}
        for route in routes:
            segments = route.path.split("/")
            literals = [i for i, s in enumerate(segments) if not _PARAM.fullmatch(s)]
            params = [i for i, s in enumerate(segments) if _PARAM.fullmatch(s)]
            compiled = (
                itemgetter(*literals),
                itemgetter(*literals)(segments),
                itemgetter(*params) if params else _no_params,
                len(params) == 1,
                route,
            )
            for method in route.methods:
                self._table.setdefault((method, len(segments)), []).append(compiled)

    def match(self, method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
        """The route of ``method path`` and its parameters' values (in template order), or None."""
        hit = self._cache.get((method, path))
        if hit is not None:
            return hit
        hit = self._match(method, path)
        if hit is not None and len(self._cache) < self.CACHED:  # bounded: paths are the caller's
            self._cache[(method, path)] = hit
        return hit

    def _match(self, method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
        parts = path.split("/")
        candidates = self._table.get((method, len(parts)))
        if candidates is not None:
            for literals, expected, params, single, route in candidates:
                if literals(parts) == expected:
                    values = (params(parts),) if single else params(parts)
                    if "" not in values:  # a parameter is one non-empty segment
                        return route, values
        return None


def _no_params(parts: list[str]) -> tuple[str, ...]:
    return ()
