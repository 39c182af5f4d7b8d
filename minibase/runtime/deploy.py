"""``minibase deploy fc``: a Serverless Devs project for Function Compute 3.0.

It writes, into one folder::

    s.yaml       the fc3 component's project: the HTTP function (and optional event functions)
    DEPLOY.md    what to set and run, and what was decided for you
    code/        the code package: index.py, minibase.toml, the developer's functions module,
                 the web folder and schema files, minibase itself and its dependencies

Secrets are never written: the config must name them ``"env:NAME"`` (a literal secret is
refused), and s.yaml passes each such variable from the deploying shell with
``${env('NAME', '')}``. The YAML is emitted here (every string double-quoted), so
deploying needs no YAML library.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import PROVIDERS, Config, parse_config, read_toml
from ..errors import ConfigError
from .wheels import (
    PLATFORM,
    compile_bytecode,
    install_dependencies,
    missing_requirements,
    pip_command,
    requirements,
    target_python,
)

__all__ = [
    "EXTRA_RULES",
    "DeployOptions",
    "Project",
    "build_s_yaml",
    "compile_bytecode",
    "deploy_md",
    "install_dependencies",
    "missing_requirements",
    "pip_command",
    "read_project",
    "render_yaml",
    "requirements",
    "target_python",
    "write_project",
]

# FC runtime per --python (FC's built-in Python runtimes minibase runs on: it needs >= 3.10).
RUNTIMES = {"3.10": "python3.10", "3.12": "python3.12"}
UNSUPPORTED_PYTHON = {"3.9": "minibase needs Python 3.10 or newer; FC's python3.9 runtime cannot run it"}
DATA_DIR = "/tmp/minibase"  # noqa: S108 - FC's only writable place; per instance, a cache
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "OPTIONS")

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_WORDS = ("secret", "password", "token", "private_key")
_REGION_RE = re.compile(r"[a-z]{2}-[a-z0-9-]+")


@dataclass(frozen=True)
class DeployOptions:
    region: str = "cn-hangzhou"
    python: str = "3.12"
    memory: int = 512  # MB, a multiple of 64
    timeout: int = 30  # seconds per invocation
    role: str | None = None  # RAM role ARN for the functions
    log_project: str | None = None  # SLS project and logstore; both or neither ("auto")
    log_store: str | None = None
    function_name: str | None = None  # default: [app] service
    event_functions: tuple[str, ...] = ()  # minibase functions to deploy as event functions
    access: str = "default"  # the Serverless Devs credential alias

    def check(self) -> None:
        if self.python in UNSUPPORTED_PYTHON:
            raise ConfigError("--python", UNSUPPORTED_PYTHON[self.python])
        if self.python not in RUNTIMES:
            raise ConfigError("--python", f"expected one of {', '.join(RUNTIMES)}")
        if not _REGION_RE.fullmatch(self.region):
            raise ConfigError("--region", "expected a region id such as cn-hangzhou")
        if not (128 <= self.memory <= 32768) or self.memory % 64:
            raise ConfigError("--memory", "expected MB between 128 and 32768, a multiple of 64")
        if not 1 <= self.timeout <= 86400:
            raise ConfigError("--timeout", "expected seconds between 1 and 86400")
        if (self.log_project is None) != (self.log_store is None):
            raise ConfigError("--log-project", "--log-project and --log-store go together")
        if self.function_name is not None and not _NAME_RE.fullmatch(self.function_name):
            raise ConfigError("--name", "letters, digits, '_' and '-', starting with a letter or '_'")
        for fn in self.event_functions:
            if not _NAME_RE.fullmatch(fn):
                raise ConfigError("--event-function", f"{fn!r} is not a function name")


@dataclass(frozen=True)
class Project:
    """What the deployment needs to know of a config, read without its secrets."""

    config_path: Path
    name: str
    service: str
    env_names: tuple[str, ...]  # every "env:NAME" the config reads
    copies: tuple[str, ...]  # paths relative to the config's folder to put in the package
    extras: tuple[str, ...]  # minibase extras the config needs (EXTRA_RULES)
    warnings: tuple[str, ...] = field(default=())
    schedules: tuple[tuple[str, str], ...] = ()  # @schedule (name, cron): FC timer triggers
    triggers: bool = False  # @after_write: a timer that delivers the outbox
    timezone: str = "Asia/Shanghai"


# ------------------------------------------------------------------ the config


def _walk(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{key}[{i}]")
    else:
        yield key, value


def _env_names(raw: Mapping[str, Any]) -> set[str]:
    """Every ``env:NAME`` the file spells; ConfigError for a secret written in it instead
    (the file is copied into the package, so it is checked as written, not as parsed)."""
    env_names: set[str] = set()
    for key, value in _walk(raw, ""):
        if not isinstance(value, str):
            continue
        if value.startswith("env:"):
            name = value[4:]
            if not _ENV_RE.fullmatch(name):
                raise ConfigError(key, f"{name!r} is not an environment variable name")
            env_names.add(name)
            continue
        leaf = key.rsplit(".", 1)[-1].split("[", 1)[0].lower()
        if any(w in leaf for w in _SECRET_WORDS) and not leaf.endswith("_file"):
            raise ConfigError(
                key, 'is written in the config; use "env:NAME" so the secret is not copied into the package'
            )
        if re.match(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", value):
            raise ConfigError(
                key, 'holds a password in its URL; use "env:NAME" so it is not copied into the package'
            )
    return env_names


def _inside(base: Path, path: Path, key: str) -> str:
    """``path`` (as the config resolved it against ``base``) as a path inside the config's
    folder: it is packaged at the same place, so the packaged config finds it."""
    rel = path.relative_to(base) if path.is_relative_to(base) and not path.is_absolute() else None
    if rel is None or ".." in rel.parts:
        raise ConfigError(
            key, f"{path.as_posix()!r} must be a path inside the config's folder to be packaged"
        )
    if not path.exists():
        raise ConfigError(key, f"{path} does not exist")
    return rel.as_posix()


def read_project(config_path: str | Path) -> Project:
    """Read ``minibase.toml`` for deployment; ConfigError (naming the key) if it cannot go.

    The config is checked as the server will check it (the typed :class:`Config`), with
    every ``env:`` value a placeholder: deploying needs none of the secrets.
    """
    path = Path(config_path)
    try:
        raw = read_toml(path)
    except ConfigError as e:
        raise ConfigError("config", str(e)) from None
    env_names = _env_names(raw)
    # Against the folder as a relative path, so a path the file spells absolute stays
    # absolute and is refused (the packaged config could not find it).
    base = Path(os.path.relpath(path.parent))
    config = parse_config(raw, base_dir=base, data_dir=DATA_DIR, source=path, placeholders=True)
    copies: list[str] = []
    if config.app.web is not None:
        copies.append(_inside(base, config.app.web, "app.web"))
    module = config.functions.module
    if module is not None:
        top = module.split(".", 1)[0]
        found = [c for c in (top, f"{top}.py") if (base / c).exists()]
        if not found:
            raise ConfigError("functions.module", f"neither {base / top} nor {base / top}.py exists")
        copies.append(found[0])
    for cname, col in config.collections.items():
        if col.schema_file is not None:
            copies.append(_inside(base, col.schema_file, f"collections.{cname}.schema"))
    events = _declared_events(config)
    return Project(
        config_path=path,
        name=config.app.name,
        service=config.app.service,
        env_names=tuple(sorted(env_names)),
        copies=tuple(dict.fromkeys(copies)),
        extras=_extras(config),
        warnings=tuple(_warnings(config)),
        schedules=tuple((s.name, s.cron) for s in events.schedules.values()),
        triggers=bool(events.triggers),
        timezone=config.functions.timezone,
    )


def _declared_events(config: Config) -> Any:
    """The module's @schedule and @after_write declarations (it is imported to read them,
    as the server will import it)."""
    from ..events.decl import EventSpecs
    from ..functions.registry import Registry

    if config.functions.module is None:
        return EventSpecs()
    return Registry.load(config.functions).events


# The one table of which pip extra (pyproject.toml's optional-dependencies) each fact of the
# config needs on FC: (the fact, as DEPLOY.md states it; whether the config shows it; extra).
# The config is read without the deploying machine's environment: an "env:" database url
# reads as PostgreSQL (what it almost always is on FC), an "env:" files url as a bucket.
EXTRA_RULES: tuple[tuple[str, Callable[[Config], bool], str], ...] = (
    (
        "database.url is postgresql:// (or env:NAME)",
        lambda c: c.database.url.startswith(("postgresql://", "postgres://")),
        "postgres",
    ),
    ("database.url is tablestore://", lambda c: c.database.tablestore is not None, "tablestore"),
    ("files.url is s3://, oss:// (or env:NAME)", lambda c: c.files.backend == "s3", "s3"),
    (
        "[files.thumbs] sizes are set (except on oss://, which renders them itself)",
        lambda c: bool(c.files.thumb_sizes) and not (c.files.s3 and c.files.s3.provider == "oss"),
        "images",
    ),
    ('auth.credentials = "sts"', lambda c: c.auth.credentials == "sts", "sts"),
)


def _extras(config: Config) -> tuple[str, ...]:
    """The extras ``config`` needs, by :data:`EXTRA_RULES`, each once, in the table's order."""
    return tuple(dict.fromkeys(extra for _, holds, extra in EXTRA_RULES if holds(config)))


def _warnings(config: Config) -> list[str]:
    out = []
    if not config.app.secrets:
        out.append(
            "[app] secret is not set: every FC instance would create its own key in /tmp and "
            'refuse the credentials the others mint. Set secret = "env:MINIBASE_SECRET" (32+ characters).'
        )
    if config.database.url.startswith("sqlite:"):
        out.append(
            "[database] is SQLite: on FC it lives in /tmp of one instance and is lost when the "
            'instance stops. Use PostgreSQL: url = "env:DATABASE_URL".'
        )
    if config.files.backend == "local":
        out.append(
            "[files] is the local disk: on FC it lives in /tmp of one instance. Use OSS through its "
            'S3 API: url = "oss://bucket?endpoint=...".'
        )
    if config.auth.dev_enabled:
        out.append("[auth.dev] is enabled: anyone can log in as anyone. Disable it before going live.")
    if config.auth.credentials == "sts":
        out.append(
            'auth.credentials = "sts" needs the function role (--role) allowed to call sts:AssumeRole.'
        )
    if not config.auth.providers:
        out.append(
            "[auth] has no login provider: the server will refuse to start. Add one of "
            + ", ".join(f"[auth.{p.name}]" for p in PROVIDERS if p.config is not None)
            + "."
        )
    return out


# ------------------------------------------------------------------ s.yaml


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-").lower()
    return slug or "minibase"


def _function_env(project: Project) -> dict[str, str]:
    env: dict[str, str] = {
        "MINIBASE_CONFIG": "minibase.toml",  # resolved against the code package (FC_FUNC_CODE_PATH)
        "MINIBASE_DATA": DATA_DIR,
    }
    for name in project.env_names:
        env[name] = f"${{env('{name}', '')}}"  # from the shell running `s deploy`
    return env


def _log_config(options: DeployOptions) -> Any:
    if options.log_project is None:
        return "auto"
    return {
        "project": options.log_project,
        "logstore": options.log_store,
        "enableRequestMetrics": True,
        "enableInstanceMetrics": True,
        "logBeginRule": "DefaultRegex",
    }


def _props(
    project: Project,
    options: DeployOptions,
    name: str,
    handler: str,
    description: str,
    extra_env: Mapping[str, str],
) -> dict[str, Any]:
    """One function's fc3 props."""
    p: dict[str, Any] = {
        "region": "${vars.region}",
        "functionName": name,
        "description": description,
        "runtime": RUNTIMES[options.python],
        "code": "./code",
        "handler": handler,
        "memorySize": options.memory,
        "timeout": options.timeout,
        "internetAccess": True,
        "environmentVariables": {**_function_env(project), **extra_env},
        "logConfig": _log_config(options),
    }
    if options.role:
        p["role"] = options.role
    return p


_HTTP_TRIGGER = {
    "triggerName": "http",
    "triggerType": "http",
    "qualifier": "LATEST",
    "triggerConfig": {
        # minibase checks sessions and FC signatures itself.
        "authType": "anonymous",
        "disableURLInternet": False,
        "methods": list(HTTP_METHODS),
    },
}


def build_s_yaml(project: Project, options: DeployOptions) -> dict[str, Any]:
    """The fc3 component project (Serverless Devs edition 3.0.0) as a dict."""
    options.check()
    fn_name = options.function_name or project.service
    what = f"minibase '{project.name}'"
    http = _props(
        project, options, fn_name, "index.handler", f"{what}: HTTP API (session, functions, files)", {}
    )
    http["triggers"] = [copy.deepcopy(_HTTP_TRIGGER)]
    resources: dict[str, Any] = {"api": {"component": "fc3", "props": http}}
    for fn in options.event_functions:
        description = f"{what}: the {fn} function (Invoke API)"
        props = _props(
            project, options, f"{fn_name}-{fn}", "index.event_handler", description, {"MINIBASE_FUNCTION": fn}
        )
        resources[f"fn_{fn.replace('-', '_')}"] = {"component": "fc3", "props": props}
    if project.schedules or project.triggers:
        description = f"{what}: scheduled jobs and after-write triggers (timer triggers)"
        props = _props(project, options, f"{fn_name}-events", "index.timer_handler", description, {})
        props["triggers"] = _timer_triggers(project)
        resources["events"] = {"component": "fc3", "props": props}
    return {
        "edition": "3.0.0",
        "name": _slug(project.name),
        "access": options.access,
        "vars": {"region": options.region},
        "resources": resources,
    }


def _timer_triggers(project: Project) -> list[dict[str, Any]]:
    """One FC timer trigger per @schedule (its cron with seconds and CRON_TZ: FC reads a
    bare expression as UTC), and one every minute that delivers the outbox."""
    from ..events.cron import fc_cron

    out: list[dict[str, Any]] = []
    for name, cron in project.schedules:
        out.append(
            {
                "triggerName": f"schedule-{name}"[:128],
                "triggerType": "timer",
                "qualifier": "LATEST",
                "triggerConfig": {
                    "cronExpression": fc_cron(cron, project.timezone),
                    "enable": True,
                    "payload": json.dumps({"schedule": name}),
                },
            }
        )
    if project.triggers:
        out.append(
            {
                "triggerName": "dispatch",
                "triggerType": "timer",
                "qualifier": "LATEST",
                "triggerConfig": {
                    "cronExpression": "@every 1m",
                    "enable": True,
                    "payload": json.dumps({"dispatch": True}),
                },
            }
        )
    return out


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else _scalar(key)


def _yaml_lines(value: Any, indent: int) -> Iterator[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                yield f"{pad}{_key(str(k))}:"
                yield from _yaml_lines(v, indent + 1)
            else:
                yield f"{pad}{_key(str(k))}: {_flow_empty(v)}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                lines = list(_yaml_lines(item, indent + 1))
                yield f"{pad}- {lines[0].lstrip()}"
                yield from lines[1:]
            elif isinstance(item, list) and item:
                yield f"{pad}-"
                yield from _yaml_lines(item, indent + 1)
            else:
                yield f"{pad}- {_flow_empty(item)}"
    else:
        yield f"{pad}{_scalar(value)}"


def _flow_empty(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def render_yaml(doc: Mapping[str, Any], header: str = "") -> str:
    """Block-style YAML for plain data; every string double-quoted (no YAML surprises)."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comments + "\n".join(_yaml_lines(dict(doc), 0)) + "\n"


# ------------------------------------------------------------------ DEPLOY.md


def _events_md(fn: str, options: DeployOptions) -> str:
    if not options.event_functions:
        return ""
    names = ", ".join(f"`{fn}-{e}` (`{e}`)" for e in options.event_functions)
    return (
        f"\nEvent functions: {names}. Each runs `index.event_handler` with `MINIBASE_FUNCTION` "
        "set; the event is the function's JSON event (the caller is its `sid`), e.g.\n"
        f"`s invoke --resource-name fn_{options.event_functions[0].replace('-', '_')} "
        '--event \'{"sid": "...", "op": "list"}\'`. They are for calls from your own '
        "servers, timers or other cloud services; mini-programs use the HTTP function.\n"
    )


def _deps_md(project: Project, options: DeployOptions, deps_installed: bool) -> str:
    if not deps_installed:
        return (
            "Only minibase itself is in `code/` (`--no-deps`): provide its dependencies with a layer, "
            "or run the command again without `--no-deps`."
        )
    with_extras = ""
    if project.extras:
        with_extras = f" (extras {', '.join(f'`{e}`' for e in project.extras)}, for what the config uses)"
    return (
        f"minibase and its dependencies{with_extras} are installed in `code/` for "
        f"{RUNTIMES[options.python]} ({PLATFORM})."
    )


def deploy_md(project: Project, options: DeployOptions, *, deps_installed: bool = True) -> str:
    fn = options.function_name or project.service
    env_lines = "\n".join(f"export {n}=...   # read by the config" for n in project.env_names)
    warn = "\n".join(f"- {w}" for w in project.warnings) or "- none"
    events = _events_md(fn, options)
    deps = _deps_md(project, options, deps_installed)
    return f"""# Deploying '{project.name}' to Function Compute 3.0

Written by `minibase deploy fc`. {deps}

## Deploy

```bash
npm install -g @serverless-devs/s     # Serverless Devs
s config add                          # once: your AccessKey, as alias '{options.access}'
{env_lines or "# the config reads no environment variables"}
s deploy                              # in this folder
```

`s deploy` prints the HTTP trigger's URL (`https://{fn}-….{options.region}.fcapp.run`). Point the
clients at it: `createClient({{ endpoint: '<that URL>', service: '{project.service}' }})` (JS SDK) or
`Client('<that URL>', service='{project.service}')` (Python). Add that domain to the
mini-program's allowed request domains (Alipay/WeChat consoles).

## What was decided

- **One HTTP function** `{fn}` (`index.handler`, the FC 3.0 HTTP trigger handler) serves every
  path of `minibase serve`: `POST …/proxy/{project.service}/session/` (login, refresh, logout),
  the FC Invoke API path `/2016-08-15/services/{project.service}/functions/<name>/invocations`
  and `/invoke/<name>` (built-ins and your functions), `/files/…`, `/healthz` and the web app
  if configured. The trigger is `anonymous`: minibase checks sessions and FC request
  signatures itself, so clients written for FC's mini-program template work unchanged.{events}
- **Configuration** travels in the package (`code/minibase.toml`, `MINIBASE_CONFIG`); every
  `env:` value in it is passed from your shell at deploy time as `${{env('NAME', '')}}`, so no
  secret is written in `s.yaml`, this file or the package. The values end up in the function's
  environment variables (visible to whoever may read the function's configuration).
- **State** lives in the database only. `MINIBASE_DATA` is `{DATA_DIR}` (the only writable
  place on FC), a cache that may vanish with the instance.
- **Runtime** `{RUNTIMES[options.python]}`, {options.memory} MB, {options.timeout} s timeout,
  logs: {"`auto` (Serverless Devs creates the SLS project and logstore)" if options.log_project is None else f"SLS `{options.log_project}`/`{options.log_store}`"}.
  {"Role: `" + options.role + "`." if options.role else "No role: add `role:` (a RAM role ARN) to the props if your functions call other cloud services (STS credentials, OSS)."}
- **Key files** (`*_FILE` variables, e.g. the Alipay keys) must name a path that exists on FC,
  such as an OSS or NAS mount (`ossMountConfig`/`nasConfig` in the props); they are never
  copied into the package.

## Check before going live

{warn}
"""


# ------------------------------------------------------------------ the package

INDEX_PY = '''"""Function Compute entry points of this minibase deployment (written by `minibase deploy fc`).

index.handler        FC 3.0 HTTP trigger (the HTTP function)
index.event_handler  Invoke API (event functions; the function is MINIBASE_FUNCTION)
index.timer_handler  FC timer triggers (@schedule jobs, after-write trigger delivery)
index.wsgi_handler   FC 2.0 HTTP trigger
"""

from minibase.runtime.fc import event_handler, http_handler, timer_handler, wsgi_handler

handler = http_handler

__all__ = ["event_handler", "handler", "http_handler", "timer_handler", "wsgi_handler"]
'''

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        # symlinks=False: linked files (the example's sdk/ link) are copied as files.
        shutil.copytree(src, dst, ignore=_IGNORE, dirs_exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def copy_minibase(code: Path) -> None:
    """Put the running minibase (exactly the code tested here) into the package."""
    import minibase

    src = Path(minibase.__file__).resolve().parent
    _copy(src, code / "minibase")
    info = code / f"minibase-{minibase.__version__}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: minibase\nVersion: {minibase.__version__}\n", encoding="utf-8"
    )
    (info / "INSTALLER").write_text("minibase deploy\n", encoding="utf-8")


@dataclass(frozen=True)
class DeployResult:
    out: Path
    s_yaml: Path
    deploy_md: Path
    code: Path
    warnings: tuple[str, ...]


def write_project(
    config_path: str | Path,
    out: str | Path,
    options: DeployOptions,
    *,
    install_deps: bool = True,
    force: bool = False,
) -> DeployResult:
    """Write s.yaml, DEPLOY.md and code/ into ``out``; ConfigError if something is wrong."""
    options.check()
    project = read_project(config_path)
    out_dir = Path(out)
    code = out_dir / "code"
    targets = [out_dir / "s.yaml", out_dir / "DEPLOY.md", code]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists (use --force to replace s.yaml, DEPLOY.md and code/)")
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    base = project.config_path.resolve().parent
    shutil.copy2(project.config_path, code / "minibase.toml")
    for rel in project.copies:
        _copy(base / rel, code / rel)
    (code / "index.py").write_text(INDEX_PY, encoding="utf-8")
    copy_minibase(code)
    if install_deps:
        install_dependencies(code, options.python, project.extras)
    warnings = list(project.warnings)
    if not compile_bytecode(code, options.python):
        warnings.append(
            f"no python{options.python} here to compile the package's bytecode: every cold start on FC "
            f"will compile it from source; run `python{options.python} -m compileall -q "
            f"--invalidation-mode unchecked-hash {code}` before deploying"
        )
    doc = build_s_yaml(project, options)
    header = (
        f"Function Compute 3.0 project for minibase '{project.name}', written by `minibase deploy fc`.\n"
        "Deploy with `s deploy` (see DEPLOY.md). Secrets come from the environment via ${env(...)}."
    )
    s_yaml = out_dir / "s.yaml"
    s_yaml.write_text(render_yaml(doc, header), encoding="utf-8")
    md = out_dir / "DEPLOY.md"
    md.write_text(deploy_md(project, options, deps_installed=install_deps), encoding="utf-8")
    return DeployResult(out_dir, s_yaml, md, code, tuple(warnings))
