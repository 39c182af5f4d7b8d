"""The console's commands: ``minibase admins create/list/remove/password``, ``export``,
``import``, ``backup`` and ``restore`` (docs/console.md). The environment is read here:
``MINIBASE_ADMIN_PASSWORD`` (else a prompt)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MinibaseError

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["add_commands"]

ConfigOf = Callable[[argparse.Namespace], "Config"]


def _password(confirm: bool = True) -> str:
    given = os.environ.get("MINIBASE_ADMIN_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        raise SystemExit("minibase: set MINIBASE_ADMIN_PASSWORD or run in a terminal to type the password")
    first = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise SystemExit("minibase: the passwords differ")
    return first


def _run(config: Config, work: Callable[[Any], Any]) -> int:
    """Run ``work(console)`` with the configured database open."""
    from ..core import Minibase
    from .api import Console

    async def run() -> int:
        core = Minibase.from_config(config)
        await core.store.open()
        try:
            await work(Console(core))
            return 0
        except MinibaseError as e:
            print(f"minibase: {e.message}", file=sys.stderr)
            return 1
        finally:
            await core.store.close()

    return asyncio.run(run())


class _Progress:
    """One line on stderr, rewritten at most ten times a second."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.shown = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        now = time.monotonic()
        if now - self.shown >= 0.1:
            self.shown = now
            self.show(n)

    def show(self, n: int, end: str = "") -> None:
        line = f"{self.what}: {n:,}"
        print(("\r" + line) if self.tty else line, end=end if self.tty else "\n", file=sys.stderr, flush=True)


def add_commands(
    sub: Any, config_args: Callable[[argparse.ArgumentParser], None], config_of: ConfigOf
) -> None:
    """Add the console's commands to the ``minibase`` parser's subcommands."""
    a = sub.add_parser("admins", help="manage the admin console's admins (not app users)")
    asub = a.add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("create", _admins_create, "add an admin (password: $MINIBASE_ADMIN_PASSWORD or a prompt)"),
        ("list", _admins_list, "list the admins"),
        ("remove", _admins_remove, "remove an admin"),
        (
            "password",
            _admins_password,
            "set an admin's password (password: $MINIBASE_ADMIN_PASSWORD or a prompt)",
        ),
    ):
        p = asub.add_parser(name, help=text)
        if name != "list":
            p.add_argument("--email", required=True)
        config_args(p)
        p.set_defaults(func=partial(func, config_of=config_of))

    e = sub.add_parser("export", help="write users, identities and documents as JSON Lines (.gz: gzip)")
    e.add_argument("--out", required=True, help="the file: F.jsonl, or F.jsonl.gz for gzip; - for stdout")
    config_args(e)
    e.set_defaults(func=partial(_export, config_of=config_of))

    i = sub.add_parser("import", help="load an export (.jsonl or .jsonl.gz); existing rows are kept")
    i.add_argument("file", help="the export file; - for stdin")
    config_args(i)
    i.set_defaults(func=partial(_import, config_of=config_of))

    b = sub.add_parser("backup", help="snapshot the SQLite database (online) to a folder or the files bucket")
    b.add_argument("--to", required=True, help="a folder, or 'bucket' for the configured S3/OSS files bucket")
    b.add_argument("--keep", type=int, default=7, help="snapshots kept there (default 7)")
    config_args(b)
    b.set_defaults(func=partial(_backup, config_of=config_of))

    r = sub.add_parser("restore", help="put a snapshot back into the SQLite database")
    r.add_argument("--from", dest="source", required=True, help="the backup folder, or 'bucket'")
    r.add_argument("--name", help="the snapshot (default: the newest)")
    config_args(r)
    r.set_defaults(func=partial(_restore, config_of=config_of))


def _admins_create(args: argparse.Namespace, config_of: ConfigOf) -> int:
    password = _password()

    async def work(console: Any) -> None:
        email = await console.create_admin(args.email, password)
        print(f"created admin {email}; log in at http://127.0.0.1:8000/_/ (minibase serve)")

    return _run(config_of(args), work)


def _admins_list(args: argparse.Namespace, config_of: ConfigOf) -> int:
    async def work(console: Any) -> None:
        for admin in await console.admins():
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(admin["created"]))
            print(f"{admin['email']}\t(since {created} UTC)")

    return _run(config_of(args), work)


def _admins_remove(args: argparse.Namespace, config_of: ConfigOf) -> int:
    async def work(console: Any) -> None:
        await console.remove_admin(args.email)
        print(f"removed admin {args.email} (their console sessions are over)")

    return _run(config_of(args), work)


def _admins_password(args: argparse.Namespace, config_of: ConfigOf) -> int:
    new = _password()

    async def work(console: Any) -> None:
        await console.set_password(args.email, new)
        print(f"changed the password of {args.email} (their console sessions are over)")

    return _run(config_of(args), work)


def _export(args: argparse.Namespace, config_of: ConfigOf) -> int:
    from .transfer import export_stream

    progress = _Progress("exported rows")
    gz = args.out.endswith(".gz")
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115

    async def work(console: Any) -> None:
        await console.ready()
        async for chunk in export_stream(console.store, gzip=gz, progress=progress):
            out.write(chunk)
        print(f"\nexported to {args.out}", file=sys.stderr)

    try:
        return _run(config_of(args), work)
    finally:
        if out is not sys.stdout.buffer:
            out.close()


def _import(args: argparse.Namespace, config_of: ConfigOf) -> int:
    from .transfer import import_stream

    progress = _Progress("imported bytes")
    if args.file != "-" and not Path(args.file).is_file():
        print(f"minibase: no file {args.file}", file=sys.stderr)
        return 1
    source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            chunk = await asyncio.to_thread(source.read, 1 << 20)
            if not chunk:
                return
            yield chunk

    async def work(console: Any) -> None:
        await console.ready()
        counts = await import_stream(console.store, chunks(), progress)
        print(
            f"\nimported {counts['users']} users, {counts['identities']} identities,"
            f" {counts['documents']} documents",
            file=sys.stderr,
        )

    try:
        return _run(config_of(args), work)
    finally:
        if source is not sys.stdin.buffer:
            source.close()


def _backup(args: argparse.Namespace, config_of: ConfigOf) -> int:
    from .backup import backup

    try:
        print(f"wrote {backup(config_of(args), args.to, args.keep)}")
    except MinibaseError as e:
        print(f"minibase: {e.message}", file=sys.stderr)
        return 1
    return 0


def _restore(args: argparse.Namespace, config_of: ConfigOf) -> int:
    from .backup import restore

    try:
        print(f"restored {restore(config_of(args), args.source, args.name)}")
    except MinibaseError as e:
        print(f"minibase: {e.message}", file=sys.stderr)
        return 1
    return 0
