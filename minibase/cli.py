"""The ``minibase`` command. The environment is read here, at the edge, and nowhere deeper
than config loading."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config


def _config(args: argparse.Namespace) -> Config:
    from .config import load_config

    data = args.data or os.environ.get("MINIBASE_DATA") or None
    return load_config(args.config, data_dir=data)


def cmd_serve(args: argparse.Namespace) -> int:
    from .runtime.serve import serve
    from .runtime.workers import default_workers

    config = _config(args)
    workers = args.workers or default_workers()
    print(
        f"minibase: serving '{config.app.name}' on http://{args.host}:{args.port} "
        f"(data in {config.data_dir}; {workers} worker{'s' if workers > 1 else ''})",
        file=sys.stderr,
        flush=True,
    )
    return serve(config, args.host, args.port, args.log_level, workers)


def cmd_keys_alipay(args: argparse.Namespace) -> int:
    from .runtime.keys import write_alipay_keys

    private, public, one_line = write_alipay_keys(Path(args.out), force=args.force)
    print(f"wrote {private} (keep it secret) and {public}", file=sys.stderr)
    print("Paste this public key into the Alipay console (接口加签方式 → 公钥):", file=sys.stderr)
    print(one_line)
    return 0


def cmd_deploy_fc(args: argparse.Namespace) -> int:
    from .runtime.deploy import DeployOptions, write_project

    options = DeployOptions(
        region=args.region,
        python=args.python,
        memory=args.memory,
        timeout=args.timeout,
        role=args.role,
        log_project=args.log_project,
        log_store=args.log_store,
        function_name=args.name,
        event_functions=tuple(args.event_function or ()),
        access=args.access,
    )
    if not args.no_deps:
        print("minibase: installing dependencies for Function Compute ...", file=sys.stderr, flush=True)
    result = write_project(args.config, args.out, options, install_deps=not args.no_deps, force=args.force)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {result.s_yaml}, {result.deploy_md} and {result.code}/; next: cd {result.out} && s deploy")
    return 0


def _admin(args: argparse.Namespace, action: str) -> int:
    """Run one store action against the configured database (takes effect on the next request
    everywhere: sessions and users are checked on every request)."""
    import asyncio

    from .core import Minibase
    from .util.timefmt import now

    config = _config(args)

    async def run() -> int:
        core = Minibase.from_config(config)
        await core.store.open()
        try:
            if action == "revoke":
                n = await core.store.revoke_user_sessions(args.uid, now())
                print(f"revoked {n} session(s) of {args.uid}")
                return 0
            changed = await core.store.set_user_disabled(args.uid, action == "disable")
            if not changed:
                print(f"minibase: no user {args.uid}", file=sys.stderr)
                return 1
            if action == "disable":
                await core.store.revoke_user_sessions(args.uid, now())
            print(f"{action}d user {args.uid}")
            return 0
        finally:
            await core.store.close()

    return asyncio.run(run())


def cmd_run(args: argparse.Namespace) -> int:
    """Run one @schedule job now, in this process (against the configured database)."""
    import asyncio
    import logging

    from .core import Minibase

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    config = _config(args)

    async def run() -> int:
        core = Minibase.from_config(config)
        if core.events is None or args.name not in core.events.specs.schedules:
            print(f"minibase: no @schedule named {args.name!r}", file=sys.stderr)
            return 1
        await core.start()
        try:
            ok = await core.events.run_now(args.name)
        finally:
            await core.stop()
        print(f"{args.name}: {'done' if ok else 'failed (see the log above)'}")
        return 0 if ok else 1

    return asyncio.run(run())


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=os.environ.get("MINIBASE_CONFIG", "minibase.toml"),
        help="path of minibase.toml (default: $MINIBASE_CONFIG or ./minibase.toml)",
    )
    p.add_argument("--data", help="data directory (default: $MINIBASE_DATA or ./data beside the config)")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1024, got {text!r}")
    return n


def _serve_parser(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the HTTP API")
    _config_args(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    s.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="processes serving requests on one socket (default: the number of CPUs; 1: a single process)",
    )
    s.set_defaults(func=cmd_serve)


def _deploy_parser(sub: Any) -> None:
    d = sub.add_parser("deploy", help="write a deployable project")
    dsub = d.add_subparsers(dest="target", required=True)
    df = dsub.add_parser("fc", help="Function Compute 3.0 via Serverless Devs (s.yaml + code package)")
    df.add_argument("--config", default=os.environ.get("MINIBASE_CONFIG", "minibase.toml"))
    df.add_argument("--out", required=True, help="folder for s.yaml, DEPLOY.md and code/")
    df.add_argument("--region", default="cn-hangzhou")
    df.add_argument("--python", default="3.12", choices=["3.12", "3.10"], help="FC Python runtime")
    df.add_argument("--memory", type=int, default=512, help="MB (default 512)")
    df.add_argument("--timeout", type=int, default=30, help="seconds per invocation (default 30)")
    df.add_argument("--role", help="RAM role ARN for the functions")
    df.add_argument("--log-project", help="SLS project (default: auto)")
    df.add_argument("--log-store", help="SLS logstore (with --log-project)")
    df.add_argument("--name", help="the HTTP function's name (default: [app] service)")
    df.add_argument(
        "--event-function", action="append", metavar="NAME", help="also deploy NAME as an event function"
    )
    df.add_argument("--access", default="default", help="Serverless Devs credential alias")
    df.add_argument("--no-deps", action="store_true", help="copy minibase only, not its dependencies")
    df.add_argument("--force", action="store_true", help="replace s.yaml, DEPLOY.md and code/ in --out")
    df.set_defaults(func=cmd_deploy_fc)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minibase", description="A backend for mini-programs.")
    sub = p.add_subparsers(dest="command", required=True)

    _serve_parser(sub)

    k = sub.add_parser("keys", help="generate keys")
    ksub = k.add_subparsers(dest="kind", required=True)
    ka = ksub.add_parser("alipay", help="a new RSA-2048 app key pair for Alipay OpenAPI")
    ka.add_argument("--out", required=True, help="directory for the PEM files")
    ka.add_argument("--force", action="store_true", help="overwrite existing key files")
    ka.set_defaults(func=cmd_keys_alipay)

    ss = sub.add_parser("sessions", help="manage sessions")
    ssub = ss.add_subparsers(dest="action", required=True)
    sr = ssub.add_parser("revoke", help="revoke every session of a user (logs them out everywhere)")
    sr.add_argument("--uid", required=True)
    _config_args(sr)
    sr.set_defaults(func=lambda a: _admin(a, "revoke"))

    _deploy_parser(sub)

    rn = sub.add_parser("run", help="run one @schedule job now")
    rn.add_argument("name", help="the job's name, as @schedule names it")
    _config_args(rn)
    rn.set_defaults(func=cmd_run)

    us = sub.add_parser("users", help="manage users")
    usub = us.add_subparsers(dest="action", required=True)
    for action, text in (
        ("disable", "refuse the user's logins and end their sessions"),
        ("enable", "allow the user again"),
    ):
        u = usub.add_parser(action, help=text)
        u.add_argument("uid")
        _config_args(u)
        u.set_defaults(func=lambda a, action=action: _admin(a, action))

    from .console.cli import add_commands

    add_commands(sub, _config_args, _config)  # admins, export, import, backup, restore
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"minibase: config error: {e}", file=sys.stderr)
        return 2
    except FileExistsError as e:
        print(f"minibase: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
