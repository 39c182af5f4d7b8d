"""The console's API routes, declared once: the adapter (``http.py``) serves them and the
OpenAPI document (``openapi.py``) lists them. Leaf module."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["API", "ConsoleRoute", "PREFIX"]

PREFIX = "/_/api"


@dataclass(frozen=True, slots=True)
class ConsoleRoute:
    method: str
    path: str  # under PREFIX; {name} is one path segment
    handler: str
    summary: str
    body: bool = False  # takes a JSON body

    @property
    def changes(self) -> bool:
        """State-changing: needs the X-CSRF-Token header (every method but GET)."""
        return self.method != "GET"


API: tuple[ConsoleRoute, ...] = (
    ConsoleRoute("POST", "/login", "login", "Log in as an admin (sets the session cookie)", body=True),
    ConsoleRoute("POST", "/logout", "logout", "End this admin session"),
    ConsoleRoute("GET", "/me", "me", "This admin and the CSRF token for state-changing calls"),
    ConsoleRoute("GET", "/overview", "overview", "Counts, traffic and recent audit events"),
    ConsoleRoute("GET", "/users", "users", "Find users (q: uid, openid/subject, unionid; provider)"),
    ConsoleRoute("GET", "/users/{uid}", "user", "A user's identities, sessions, documents and files"),
    ConsoleRoute("POST", "/users/{uid}/disable", "disable", "Disable a user and end their sessions"),
    ConsoleRoute("POST", "/users/{uid}/enable", "enable", "Enable a user again"),
    ConsoleRoute("POST", "/users/{uid}/revoke", "revoke", "End every session of a user"),
    ConsoleRoute("GET", "/collections", "collections", "Collections with their rules, schema and indexes"),
    ConsoleRoute(
        "POST",
        "/collections/{name}/query",
        "query",
        "Browse a collection (where, orderBy, cursor)",
        body=True,
    ),
    ConsoleRoute(
        "POST", "/collections/{name}/docs", "create", "Create a document (uid, id, fields)", body=True
    ),
    ConsoleRoute("GET", "/collections/{name}/docs/{uid}/{id}", "document", "One document"),
    ConsoleRoute(
        "PUT", "/collections/{name}/docs/{uid}/{id}", "save", "Replace a document's fields", body=True
    ),
    ConsoleRoute("DELETE", "/collections/{name}/docs/{uid}/{id}", "delete", "Delete a document"),
    ConsoleRoute("GET", "/files", "files", "Areas and the files under a prefix"),
    ConsoleRoute("GET", "/files/url", "file_url", "A short-lived URL to preview or download a file"),
    ConsoleRoute("DELETE", "/files", "delete_file", "Delete a file (key)"),
    ConsoleRoute("GET", "/audit", "audit", "Audit events (kind, uid, since, until, before)"),
    ConsoleRoute("GET", "/settings", "settings", "The effective config, secrets redacted"),
    ConsoleRoute("GET", "/export", "export", "Download users, identities and documents as JSONL (gzip)"),
    ConsoleRoute("POST", "/import", "import_", "Load a JSONL(.gz) export (streamed body)"),
)
