"""`minibase deploy fc`: the s.yaml the fc3 component reads, the code package, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import pytest
import yaml

from minibase.cli import main
from minibase.config import parse_config
from minibase.errors import ConfigError
from minibase.runtime import deploy
from minibase.runtime.deploy import DeployOptions, build_s_yaml, read_project, render_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo" / "minibase.toml"

# What the fc3 component (Serverless Devs, edition 3.0.0) requires of a function's props:
# required keys, types and ranges, the HTTP trigger's config (after its own schema).
_TRIGGER = {
    "type": "object",
    "required": ["triggerName", "triggerType", "triggerConfig"],
    "properties": {
        "triggerName": {"type": "string"},
        "triggerType": {
            "enum": ["http", "timer", "oss", "log", "mns_topic", "cdn_events", "tablestore", "eventbridge"]
        },
        "qualifier": {"type": "string"},
        "triggerConfig": {"type": "object"},
    },
    # The HTTP trigger's config, or a timer trigger's (FC's TimerTriggerConfig).
    "if": {"properties": {"triggerType": {"const": "timer"}}},
    "then": {
        "properties": {
            "triggerConfig": {
                "required": ["cronExpression", "enable"],
                "additionalProperties": False,
                "properties": {
                    "cronExpression": {
                        "type": "string",
                        "pattern": r"^(@every \d+[mh]|(CRON_TZ=\S+ )?\S+( \S+){5})$",
                    },
                    "enable": {"type": "boolean"},
                    "payload": {"type": "string"},
                },
            }
        }
    },
    "else": {
        "properties": {
            "triggerConfig": {
                "required": ["authType", "methods"],
                "properties": {
                    "authType": {"enum": ["anonymous", "function"]},
                    "disableURLInternet": {"type": "boolean"},
                    "methods": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]},
                    },
                },
            }
        }
    },
}
FC3_PROPS = fastjsonschema.compile(
    {
        "type": "object",
        "required": ["region", "functionName", "runtime", "code", "handler"],
        "properties": {
            "region": {"type": "string", "pattern": "^[a-z]{2}-[a-z0-9-]+$"},
            "functionName": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,127}$"},
            "description": {"type": "string"},
            "runtime": {"enum": ["python3.10", "python3.12", "python3.9", "python3", "custom.debian10"]},
            "code": {"type": "string"},
            "handler": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"},
            "memorySize": {"type": "integer", "minimum": 128, "maximum": 32768, "multipleOf": 64},
            "timeout": {"type": "integer", "minimum": 1, "maximum": 86400},
            "internetAccess": {"type": "boolean"},
            "environmentVariables": {"type": "object", "additionalProperties": {"type": "string"}},
            "role": {"type": "string"},
            "logConfig": {
                "anyOf": [
                    {"const": "auto"},
                    {"type": "object", "required": ["project", "logstore"]},
                ]
            },
            "triggers": {"type": "array", "items": _TRIGGER},
        },
    }
)


def check_fc3_project(doc: dict[str, Any]) -> None:
    """s.yaml as Serverless Devs + fc3 read it (with ${vars.X} resolved as they do)."""
    assert doc["edition"] == "3.0.0" and isinstance(doc["name"], str) and doc["access"]
    assert doc["resources"]
    for res in doc["resources"].values():
        assert res["component"] == "fc3"
        props = {k: v for k, v in res["props"].items()}
        for k, v in props.items():
            if isinstance(v, str) and v.startswith("${vars."):
                props[k] = doc["vars"][v[7:-1]]
        FC3_PROPS(props)


def deployed(tmp_path: Path, config: Path = EXAMPLE, *extra: str) -> Path:
    out = tmp_path / "out"
    rc = main(["deploy", "fc", "--config", str(config), "--out", str(out), "--no-deps", *extra])
    assert rc == 0
    return out


def test_s_yaml_is_what_fc3_expects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = deployed(tmp_path, EXAMPLE, "--event-function", "db", "--event-function", "clearCompleted")
    doc = yaml.safe_load((out / "s.yaml").read_text())
    check_fc3_project(doc)
    assert doc["vars"] == {"region": "cn-hangzhou"}
    api = doc["resources"]["api"]["props"]
    assert api["functionName"] == "todo-list-svc" and api["handler"] == "index.handler"
    assert api["runtime"] == "python3.12" and api["code"] == "./code" and api["logConfig"] == "auto"
    (trigger,) = api["triggers"]
    assert trigger["triggerType"] == "http" and trigger["triggerConfig"]["authType"] == "anonymous"
    assert {"GET", "POST", "PUT", "OPTIONS"} <= set(trigger["triggerConfig"]["methods"])
    env = api["environmentVariables"]
    assert env["MINIBASE_CONFIG"] == "minibase.toml" and env["MINIBASE_DATA"].startswith("/tmp/")
    assert env["WECHAT_SECRET"] == "${env('WECHAT_SECRET', '')}"
    # The example's nightly cleanup and todo counter: the events function and its timers.
    timers = doc["resources"]["events"]["props"]
    assert timers["handler"] == "index.timer_handler"
    assert {t["triggerName"]: t["triggerConfig"]["cronExpression"] for t in timers["triggers"]} == {
        "schedule-cleanup": "CRON_TZ=Asia/Shanghai 0 0 3 * * *",
        "dispatch": "@every 1m",
    }
    ev = doc["resources"]["fn_clearCompleted"]["props"]
    assert ev["functionName"] == "todo-list-svc-clearCompleted" and ev["handler"] == "index.event_handler"
    assert ev["environmentVariables"]["MINIBASE_FUNCTION"] == "clearCompleted" and "triggers" not in ev
    # The same dict the module builds, byte for byte through our emitter.
    project = read_project(EXAMPLE)
    opts = DeployOptions(event_functions=("db", "clearCompleted"))
    assert doc == build_s_yaml(project, opts)
    # The package: the config, the functions module, the web app (links copied as files).
    code = out / "code"
    assert (code / "minibase.toml").read_bytes() == EXAMPLE.read_bytes()
    assert (code / "functions.py").exists() and (code / "web" / "index.html").exists()
    assert (code / "web" / "sdk").is_dir() and not (code / "web" / "sdk").is_symlink()
    assert (code / "minibase" / "runtime" / "fc.py").exists()
    # No bytecode of this interpreter copied from the checkout: only the runtime's, if compiled here.
    assert all(".cpython-312." in p.name for p in code.rglob("*.pyc"))
    md = (out / "DEPLOY.md").read_text()
    assert "s deploy" in md and "todo-list-svc" in md and "[database] is SQLite" in md
    err = capsys.readouterr().err
    assert "warning: [app] secret is not set" in err and "warning: [auth.dev] is enabled" in err


def test_options_reach_the_yaml(tmp_path: Path) -> None:
    role = "acs:ram::1234567890:role/minibase-fn"
    out = deployed(
        tmp_path,
        EXAMPLE,
        *("--region", "cn-shanghai", "--memory", "1024", "--timeout", "60", "--role", role),
        *("--log-project", "proj", "--log-store", "store", "--name", "todo-api", "--access", "prod"),
    )
    doc = yaml.safe_load((out / "s.yaml").read_text())
    check_fc3_project(doc)
    api = doc["resources"]["api"]["props"]
    assert doc["vars"]["region"] == "cn-shanghai" and doc["access"] == "prod"
    assert (api["memorySize"], api["timeout"], api["role"], api["functionName"]) == (
        1024,
        60,
        role,
        "todo-api",
    )
    assert api["logConfig"]["project"] == "proj" and api["logConfig"]["logstore"] == "store"
    assert api["runtime"] == "python3.12"
    out = deployed(tmp_path / "py310", EXAMPLE, "--python", "3.10")
    doc = yaml.safe_load((out / "s.yaml").read_text())
    check_fc3_project(doc)
    assert doc["resources"]["api"]["props"]["runtime"] == "python3.10"
    assert "`python3.10`" in (out / "DEPLOY.md").read_text()


def test_pythons_older_than_3_10_are_refused() -> None:
    with pytest.raises(ConfigError) as e:
        DeployOptions(python="3.9").check()
    assert e.value.key == "--python" and "3.10 or newer" in str(e.value)
    with pytest.raises(ConfigError, match=r"expected one of 3\.10, 3\.12"):
        DeployOptions(python="3.13").check()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "100"], "--memory"),
        (["--timeout", "0"], "--timeout"),
        (["--log-project", "p"], "go together"),
        (["--region", "Hangzhou!"], "--region"),
        (["--event-function", "bad name"], "--event-function"),
    ],
)
def test_bad_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["deploy", "fc", "--config", str(EXAMPLE), "--out", str(out), "--no-deps", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_existing_output_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = deployed(tmp_path)
    (out / "code" / "stale.py").write_text("x = 1\n")
    assert main(["deploy", "fc", "--config", str(EXAMPLE), "--out", str(out), "--no-deps"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["deploy", "fc", "--config", str(EXAMPLE), "--out", str(out), "--no-deps", "--force"]) == 0
    assert not (out / "code" / "stale.py").exists()


SECRETS = {
    "MINIBASE_SECRET": "s3cr3t-app-key-0123456789-abcdefghijklmnop",
    "WECHAT_SECRET": "wx-secret-9f8e7d6c5b4a",
    "DOUYIN_SECRET": "dy-secret-1a2b3c4d5e",
    "DATABASE_URL": "postgresql://app:pg-P4ssw0rd-xyz@db.internal:5432/app",
    "OSS_SECRET_KEY": "oss-sk-ZYXWVUT987654",
}


def write_config(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "minibase.toml").write_text(body)
    return folder / "minibase.toml"


PROD_CONFIG = """\
[app]
name = "shop"
service = "shop-svc"
secret = "env:MINIBASE_SECRET"

[auth.wechat]
app_id = "env:WECHAT_APP_ID"
secret = "env:WECHAT_SECRET"

[auth.douyin]
app_id = "env:DOUYIN_APP_ID"
secret = "env:DOUYIN_SECRET"

[database]
url = "env:DATABASE_URL"

[files]
url = "oss://shop-files?endpoint=https://oss-cn-hangzhou.aliyuncs.com"
access_key_id = "env:OSS_KEY_ID"
secret_access_key = "env:OSS_SECRET_KEY"

[collections.orders]
schema = "schemas/order.json"
"""


def test_no_secret_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("WECHAT_APP_ID", "wx1234567890")
    config = write_config(tmp_path / "proj", PROD_CONFIG)
    (tmp_path / "proj" / "schemas").mkdir()
    (tmp_path / "proj" / "schemas" / "order.json").write_text('{"type": "object"}')
    (tmp_path / "proj" / "keys").mkdir()
    (tmp_path / "proj" / "keys" / "app_private_key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    out = deployed(tmp_path, config)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in data, f"{name} written into {p}"
        assert b"pg-P4ssw0rd" not in data
    assert not (out / "code" / "keys").exists()  # only what the config names is packaged
    assert (out / "code" / "schemas" / "order.json").exists()
    doc = yaml.safe_load((out / "s.yaml").read_text())
    check_fc3_project(doc)
    env = doc["resources"]["api"]["props"]["environmentVariables"]
    for name in (*SECRETS, "WECHAT_APP_ID", "DOUYIN_APP_ID", "OSS_KEY_ID"):
        assert env[name] == f"${{env('{name}', '')}}"
    # A production config draws no warnings, and the extras it needs are known.
    # (Only the bytecode one where no interpreter of the runtime's version is installed.)
    err = capsys.readouterr().err
    assert [w for w in err.splitlines() if "warning" in w and "compileall" not in w] == []
    assert read_project(config).extras == ("postgres", "s3")


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ('[app]\nsecret = "0123456789abcdef0123456789abcdef"\n', "app.secret"),
        ('[app]\nsecret = ["env:A", "0123456789abcdef0123456789abcdef"]\n', "app.secret[1]"),
        ('[auth.wechat]\napp_id = "wx1"\nsecret = "abc"\n', "auth.wechat.secret"),
        ('[database]\nurl = "postgresql://u:hunter2@db/app"\n', "database.url"),
        ('[files]\nurl = "s3://b"\nsecret_access_key = "sk"\n', "files.secret_access_key"),
    ],
)
def test_literal_secrets_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], snippet: str, key: str
) -> None:
    config = write_config(tmp_path / "proj", snippet)
    out = tmp_path / "out"
    assert main(["deploy", "fc", "--config", str(config), "--out", str(out), "--no-deps"]) == 2
    err = capsys.readouterr().err
    assert f"config error: {key}: " in err and "env:NAME" in err
    assert "hunter2" not in err and not out.exists()


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ('[app]\nweb = "../outside"\n', "app.web"),
        ('[app]\nweb = "missing"\n', "app.web"),
        ('[functions]\nmodule = "nowhere"\n', "functions.module"),
        ('[collections.c]\nschema = "/etc/passwd"\n', "collections.c.schema"),
        ('[app]\nname = "x"\n[app\n', "config"),
    ],
)
def test_unpackageable_configs_name_the_key(tmp_path: Path, snippet: str, key: str) -> None:
    (tmp_path / "outside").mkdir()
    config = write_config(tmp_path / "proj", snippet)
    with pytest.raises(ConfigError) as e:
        read_project(config)
    assert e.value.key == key


def test_render_yaml_quotes_everything_safely() -> None:
    doc = {
        "plain": "text",
        "tricky": [
            "a: b",
            "# not a comment",
            "yes",
            "null",
            "123",
            "' \" \\ \n\t",
            "中文",
            "${env('X', '')}",
            "",
        ],
        "nested": {"list": [{"a": 1, "b": [True, False, None]}, [1, 2]], "empty": {}, "none": []},
        "odd key: x": 1.5,
    }
    assert yaml.safe_load(render_yaml(doc, "a header\nsecond line")) == doc


def test_requirements_for_fc() -> None:
    core = deploy.requirements(())
    names = {r.split(">")[0].split("=")[0] for r in core}
    assert {"starlette", "httpx", "cryptography", "orjson", "anyio", "fastjsonschema"} <= names
    assert "uvicorn" not in names and "pytest" not in names and "asyncpg" not in names
    assert any(r.startswith("asyncpg") for r in deploy.requirements(("postgres",)))
    # tomli stands in for tomllib before 3.11: decided for the runtime, not for this interpreter.
    assert "tomli>=2.0" in deploy.requirements((), "3.10") and "tomli>=2.0" not in core
    cmd = deploy.pip_command(Path("/x/code"), "3.12", core)
    for flag in ("--target", "--platform", "--python-version", "--only-binary=:all:", "--implementation"):
        assert flag in cmd
    assert cmd[cmd.index("--platform") + 1] == "manylinux2014_x86_64"
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    # The first run replaces what an earlier deploy left; a later one (what pip left out for
    # the runtime's markers) only adds.
    assert "--upgrade" in cmd and "--upgrade" not in deploy.pip_command(
        Path("/x"), "3.10", ["tomli"], upgrade=False
    )


def test_missing_requirements_follow_the_runtimes_markers(tmp_path: Path) -> None:
    """What pip (judging markers for the Python running it) left out for the runtime."""
    info = tmp_path / "code" / "lib-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lib\nVersion: 1.0\n"
        'Requires-Dist: exceptiongroup>=1.0.2; python_version < "3.11"\n'
        'Requires-Dist: typing_extensions>=4.5; python_version < "3.13"\n'
        "Requires-Dist: idna>=2.8\n"
        'Requires-Dist: trio>=0.26; extra == "trio"\n'
        "Requires-Dist: pywin32; sys_platform == 'win32'\n"
        'Requires-Dist: uvloop; platform_python_implementation == "PyPy"\n'
    )
    other = tmp_path / "code" / "idna-3.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: idna\nVersion: 3.0\n")
    code = tmp_path / "code"
    assert deploy.missing_requirements(code, "3.10") == ["exceptiongroup>=1.0.2", "typing_extensions>=4.5"]
    assert deploy.missing_requirements(code, "3.12") == ["typing_extensions>=4.5"]
    assert deploy.missing_requirements(tmp_path / "nothing", "3.10") == []


RUN_PACKAGED = r"""
import json, sys
import index, minibase
from minibase.client import Credentials, signed_headers

assert minibase.__file__.startswith(sys.argv[1]), minibase.__file__

def http(method, path, body, headers):
    event = {"version": "v1", "rawPath": path, "body": body.decode(), "isBase64Encoded": False,
             "headers": headers, "queryParameters": {},
             "requestContext": {"http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
                                "requestId": "r", "domainName": "x.cn-hangzhou.fcapp.run"}}
    return index.handler(json.dumps(event).encode(), None)

login = http("POST", "/2016-08-15/proxy/todo-list-svc/session/", b'{"authCode": "dev:pkg"}',
             {"content-type": "application/json"})
session = json.loads(login["body"])
creds = Credentials.from_wire(session["sts"])
path = "/2016-08-15/services/todo-list-svc/functions/db/invocations"
body = json.dumps({"sid": session["sessionId"], "op": "put", "obj": {"id": "t1", "completed": False}}).encode()
put = http("POST", path, body, signed_headers(creds, "POST", path, body))
body = json.dumps({"sid": session["sessionId"], "op": "get", "id": "t1"}).encode()
get = http("POST", path, body, signed_headers(creds, "POST", path, body))

class Ctx:
    request_id = "r2"
    class function:
        name = "stats"

stats = json.loads(index.event_handler(json.dumps({"sid": session["sessionId"]}).encode(), Ctx))
print(json.dumps({"login": login["statusCode"], "put": json.loads(put["body"]),
                  "get": json.loads(get["body"]), "stats": stats}))
"""


def test_packaged_handler_runs(tmp_path: Path) -> None:
    """Import the package's index.handler in a fresh interpreter that sees only the package
    (plus this venv's site-packages for the dependencies, as --no-deps leaves them out)."""
    out = deployed(tmp_path)
    code = out / "code"
    site = sysconfig.get_paths()["purelib"]
    script = tmp_path / "run.py"
    script.write_text(
        f"import sys\nsys.path[:0] = [{str(code)!r}, {site!r}]\n" + RUN_PACKAGED, encoding="utf-8"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "FC_FUNC_CODE_PATH": str(code),
        "MINIBASE_CONFIG": "minibase.toml",
        "MINIBASE_DATA": str(tmp_path / "fcdata"),
    }
    # -I -S: no site (so no editable-install hook pointing back at this checkout), no env paths.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(code)],
        cwd=str(code),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert got["login"] == 200 and got["put"] == {"data": None}
    assert got["get"]["data"]["id"] == "t1"
    assert got["stats"] == {"data": {"total": 1, "completed": 0, "open": 1}}


def test_bytecode_is_compiled_for_the_runtime_version(tmp_path: Path) -> None:
    import sys

    from minibase.runtime.deploy import compile_bytecode

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert compile_bytecode(tmp_path, here)
    tag = sys.implementation.cache_tag
    assert (tmp_path / "pkg" / "__pycache__" / f"mod.{tag}.pyc").is_file()
    # No interpreter of that version here: nothing compiled, the caller warns.
    assert not compile_bytecode(tmp_path, "9.99")


@pytest.mark.slow
@pytest.mark.parametrize("version", sorted(deploy.RUNTIMES))
def test_package_runs_on_the_runtimes_python(tmp_path: Path, version: str) -> None:
    """The real package (dependencies installed by pip for the runtime's cpXY, bytecode
    compiled) runs the template's client flow under an interpreter of that version seeing nothing else."""
    exe = deploy.target_python(version)
    if exe is None:
        pytest.skip(f"no Python {version} interpreter here (python{version} on PATH or ~/.pyenv/versions)")
    out = tmp_path / "out"
    argv = ["deploy", "fc", "--config", str(EXAMPLE), "--out", str(out), "--python", version]
    assert main(argv) == 0
    code = out / "code"
    assert yaml.safe_load((out / "s.yaml").read_text())["resources"]["api"]["props"]["runtime"] == (
        f"python{version}"
    )
    tag = f"cpython-{version.replace('.', '')}"
    assert list((code / "minibase" / "runtime" / "__pycache__").glob(f"fc.{tag}.pyc"))
    assert list(code.glob(f"orjson/*{tag}*.so"))  # wheels for the runtime, not this interpreter
    want = tuple(int(x) for x in version.split("."))
    if want < (3, 11):
        # Required only below 3.11 (by minibase, by anyio); pip judges markers for the Python
        # running it, so on 3.11+ it leaves them out and the deploy adds them.
        assert (code / "tomli").is_dir() and (code / "exceptiongroup").is_dir()
    elif sys.version_info >= (3, 11):
        assert not (code / "tomli").exists() and not (code / "exceptiongroup").exists()
    script = tmp_path / "run.py"
    prefix = f"import sys\nsys.path[:0] = [{str(code)!r}]\nassert sys.version_info[:2] == {want!r}\n"
    script.write_text(prefix + RUN_PACKAGED, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "FC_FUNC_CODE_PATH": str(code),
        "MINIBASE_CONFIG": "minibase.toml",
        "MINIBASE_DATA": str(tmp_path / "fcdata"),
    }
    # -I -S: only the package is importable (no site-packages of that interpreter).
    done = subprocess.run(
        [exe, "-I", "-S", str(script), str(code)],
        cwd=str(code),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert got["login"] == 200 and got["put"] == {"data": None}
    assert got["get"]["data"]["id"] == "t1"
    assert got["stats"] == {"data": {"total": 1, "completed": 0, "open": 1}}


# ------------------------------------------------------------------ extras


STS_ROLE = '[auth.sts]\nrole_arn = "env:ROLE_ARN"\n'


def test_extras_follow_the_config() -> None:
    def extras(body: str) -> tuple[str, ...]:
        # As deploy reads a config: typed, env: values placeholders (a dev login beside).
        raw = tomllib.loads(body)
        raw.setdefault("auth", {})["dev"] = {"enabled": True}
        return deploy._extras(parse_config(raw, placeholders=True))

    assert extras("") == ()
    assert extras('[database]\nurl = "sqlite:///x.db"\n[files]\nurl = "file://f"\n') == ()
    assert extras('[database]\nurl = "postgresql://u@h/db"\n') == ("postgres",)
    assert extras('[database]\nurl = "env:DATABASE_URL"\n') == ("postgres",)
    assert extras(
        '[database]\nurl = "tablestore://inst?endpoint=https://inst.cn-hangzhou.ots.aliyuncs.com"\n'
    ) == ("tablestore",)
    assert extras('[files]\nurl = "oss://bkt?endpoint=https://oss-cn-hangzhou.aliyuncs.com"\n') == ("s3",)
    assert extras('[files]\nurl = "env:FILES_URL"\n') == ("s3",)
    assert extras(f'[auth]\ncredentials = "sts"\n{STS_ROLE}') == ("sts",)
    assert extras('[auth]\ncredentials = "local"\n') == ()
    # Thumbnails are rendered with Pillow, except on OSS, which renders them itself.
    thumbs = '[files.thumbs]\nsizes = ["200x200"]\n'
    assert extras(thumbs) == ("images",)
    assert extras(f'[files]\nurl = "s3://bkt"\n{thumbs}') == ("s3", "images")
    assert extras(f'[files]\nurl = "oss://bkt?endpoint=https://oss-cn-hangzhou.aliyuncs.com"\n{thumbs}') == (
        "s3",
    )
    assert extras(
        f'[auth]\ncredentials = "sts"\n{STS_ROLE}[database]\nurl = "tablestore://ins?endpoint=https://i.x"\n'
        '[files]\nurl = "s3://bkt"\n'
    ) == ("tablestore", "s3", "sts")


def test_every_backend_extra_has_a_rule() -> None:
    """Each pip extra that carries a backend's or service's SDK is picked by some config fact
    (a new extra without a rule fails here), and each rule names an extra minibase declares."""
    from importlib.metadata import metadata

    declared = set(metadata("minibase").get_all("Provides-Extra") or [])
    ruled = {extra for _, _, extra in deploy.EXTRA_RULES}
    assert ruled <= declared
    # test: the test suite; speed: uvicorn's loop and parser, which FC does not run.
    assert declared - ruled == {"test", "speed"}


TABLESTORE_STS_CONFIG = """\
[app]
name = "ots"
service = "ots-svc"
secret = "env:MINIBASE_SECRET"

[auth]
credentials = "sts"

[auth.dev]
enabled = true

[auth.sts]
role_arn = "{role}"
endpoint = "{sts}"
region = "cn-hangzhou"

[database]
url = "{database}"

[collections.todo_list]
read = "owner"
write = "owner"
"""

RUN_TABLESTORE_STS = r"""
import json, sys
import index, minibase
import tablestore, alibabacloud_sts20150401

for module in (minibase, tablestore, alibabacloud_sts20150401):
    assert module.__file__.startswith(sys.argv[1]), module.__file__

event = {"version": "v1", "rawPath": "/session", "body": '{"authCode": "dev:pkg"}', "isBase64Encoded": False,
         "headers": {"content-type": "application/json"}, "queryParameters": {},
         "requestContext": {"http": {"method": "POST", "path": "/session", "sourceIp": "1.2.3.4"},
                            "requestId": "r", "domainName": "x.cn-hangzhou.fcapp.run"}}
login = index.handler(json.dumps(event).encode(), None)
session = json.loads(login["body"])

class Ctx:
    request_id = "r2"
    class function:
        name = "db"

def db(**event):
    return json.loads(index.event_handler(json.dumps({"sid": session["sessionId"], **event}).encode(), Ctx))

put = db(op="put", obj={"id": "t1", "completed": False})
get = db(op="get", id="t1")
print(json.dumps({"login": login["statusCode"], "sts": session.get("sts"), "put": put, "get": get}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("version", sorted(deploy.RUNTIMES))
def test_tablestore_and_sts_package_runs_on_the_runtimes_python(tmp_path: Path, version: str) -> None:
    """A config on TableStore with STS credentials gets a package holding both SDKs: under
    the runtime's Python, seeing only the package, a login asks (the fake) STS through the
    STS SDK and the session and a document land in (the fake) TableStore through its SDK."""
    from tests.fakes.server import serve_app
    from tests.fakes.sts_server import make_sts_server
    from tests.fakes.tablestore_server import FakeTableStore, run_fake_tablestore
    from tests.support.sts import AK, ENV, ROLE, SK, TOKEN

    exe = deploy.target_python(version)
    if exe is None:
        pytest.skip(f"no Python {version} interpreter here (python{version} on PATH or ~/.pyenv/versions)")
    ots = FakeTableStore(AK, SK, TOKEN)
    sts_app = make_sts_server({AK: SK}, roles={ROLE}, tokens={AK: TOKEN})
    with run_fake_tablestore(ots) as ots_url, serve_app(sts_app) as sts_url:
        instance = ots.add_instance()
        database = f"tablestore://{instance}?endpoint={ots_url}"
        config = write_config(
            tmp_path / "proj", TABLESTORE_STS_CONFIG.format(role=ROLE, sts=sts_url, database=database)
        )
        assert read_project(config).extras == ("tablestore", "sts")
        out = tmp_path / "out"
        assert main(["deploy", "fc", "--config", str(config), "--out", str(out), "--python", version]) == 0
        code = out / "code"
        assert (code / "tablestore").is_dir() and (code / "alibabacloud_sts20150401").is_dir()
        assert "`tablestore`, `sts`" in (out / "DEPLOY.md").read_text()
        want = tuple(int(x) for x in version.split("."))
        script = tmp_path / "run.py"
        prefix = f"import sys\nsys.path[:0] = [{str(code)!r}]\nassert sys.version_info[:2] == {want!r}\n"
        script.write_text(prefix + RUN_TABLESTORE_STS, encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "FC_FUNC_CODE_PATH": str(code),
            "MINIBASE_CONFIG": "minibase.toml",
            "MINIBASE_DATA": str(tmp_path / "fcdata"),
            "MINIBASE_SECRET": "package-test-secret-0123456789abcdef",
            **ENV,
        }
        done = subprocess.run(
            [exe, "-I", "-S", str(script), str(code)],
            cwd=str(code),
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        got = orjson.loads(done.stdout.strip().splitlines()[-1])
        issued = sts_app.state.fake.issued
        assert got["login"] == 200 and len(issued) == 1
        assert got["sts"]["AccessKeyId"] == issued[0].access_key_id
        assert got["put"] == {"data": None} and got["get"]["data"]["id"] == "t1"
        assert ots.table(instance, "minibase_documents").rows


def test_deploy_needs_none_of_the_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The typed config is read with every env: value a placeholder: nothing need be set."""
    for name in (*SECRETS, "WECHAT_APP_ID", "DOUYIN_APP_ID", "OSS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path / "proj", PROD_CONFIG)
    (tmp_path / "proj" / "schemas").mkdir()
    (tmp_path / "proj" / "schemas" / "order.json").write_text('{"type": "object"}')
    project = read_project(config)
    assert (project.name, project.service) == ("shop", "shop-svc")
    assert project.extras == ("postgres", "s3") and project.warnings == ()
    assert project.copies == ("schemas/order.json",)
    assert {"MINIBASE_SECRET", "DATABASE_URL", "WECHAT_SECRET"} <= set(project.env_names)


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("[auth.dev]\nenabled = true\n[limits]\nmax_batch = 1000\n", "limits.max_batch"),
        ('[auth.dev]\nenabled = true\n[files]\nurl_ttl = "1s"\n', "files.url_ttl"),
        ('[auth.dev]\nenabled = true\n[app]\nnmae = "typo"\n', "app.nmae"),
        ('[auth.dev]\nenabled = true\n[database]\nurl = "mysql://db"\n', "database.url"),
    ],
)
def test_deploy_checks_the_config_as_the_server_does(tmp_path: Path, snippet: str, key: str) -> None:
    config = write_config(tmp_path / "proj", snippet)
    with pytest.raises(ConfigError) as e:
        read_project(config)
    assert e.value.key == key


def test_absolute_paths_are_not_packaged(tmp_path: Path) -> None:
    """The packaged config is copied as written: an absolute path would not exist on FC."""
    (tmp_path / "proj" / "web").mkdir(parents=True)
    config = write_config(
        tmp_path / "proj", f'[auth.dev]\nenabled = true\n[app]\nweb = "{tmp_path}/proj/web"\n'
    )
    with pytest.raises(ConfigError) as e:
        read_project(config)
    assert e.value.key == "app.web"
    config.write_text('[auth.dev]\nenabled = true\n[app]\nweb = "web"\n')
    assert read_project(config).copies == ("web",)


def test_a_config_without_login_is_deployed_with_a_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path / "proj", '[app]\nname = "x"\n')
    assert any("no login provider" in w for w in read_project(config).warnings)
