"""The example mini-programs, whole, against a real server.

miniprogram_runtime.cjs is a sandboxed mini-program runtime (a fresh V8 context with only
what the host gives: `my` / `wx` / `tt`, App, Page, getApp, console, timers; templates
rendered from `page.data`; storage that outlives a relaunch; Alipay's four shapes of an
HTTP error). miniprogram_sim.cjs drives each app through the whole user flow in it: launch
with the platform login refused (the dev-login screen), dev login, add, edit, complete,
filter, attach a picture, delete, clear, relaunch, a session ended on the server, a clock
30 min off, offline then retry, log out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fakes.server import free_port
from tests.support.examples import ENV, EXAMPLE, MINIBASE, ROOT, TODO, Served

SIM = ROOT / "tests" / "examples" / "miniprogram_sim.cjs"
RUNTIME = ROOT / "tests" / "examples" / "miniprogram_runtime.cjs"
RUNS = [("alipay", shape) for shape in "abcd"] + [("wechat", "a"), ("douyin", "a")]


def _node_flags(node: str) -> list[str]:
    """Node 20 and 21 have WebSocket (the runtime's connectSocket) only behind a flag."""
    major = int(
        subprocess.run([node, "-p", "process.versions.node"], capture_output=True, text=True).stdout.split(
            "."
        )[0]
    )
    return ["--experimental-websocket"] if major < 22 else []


@contextmanager
def _serve(folder: Path, toml: str) -> Iterator[Served]:
    """`minibase serve` of the example's functions with this config, until the block ends."""
    (folder / "minibase.toml").write_text(toml)
    shutil.copy(TODO / "functions.py", folder / "functions.py")
    port = free_port()
    cmd = [*MINIBASE, "serve", "--config", str(folder / "minibase.toml"), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--data", str(folder / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail("minibase serve exited:\n" + (proc.stdout.read() if proc.stdout else ""))
            if time.monotonic() > deadline:
                pytest.fail("minibase serve did not answer /healthz within 20 s")
            time.sleep(0.05)
        yield Served(url, folder / "data")
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The example's config, as shipped but for the per-address login limit (every flow
    logs in a dozen times from 127.0.0.1) and the web page (not needed here)."""
    toml = re.sub(r'(?m)^web = "web".*$', "", EXAMPLE.read_text())
    toml += '\n[rate_limits]\nlogin_per_ip = "off"\nlogin_per_subject = "off"\n'
    with _serve(tmp_path_factory.mktemp("todo-mp"), toml) as served:
        yield served


@pytest.mark.parametrize(("platform", "shape"), RUNS, ids=[f"{p}-{s}" for p, s in RUNS])
def test_whole_user_flow(platform: str, shape: str, node: str, example: Served) -> None:
    out = subprocess.run(
        [node, *_node_flags(node), str(SIM), str(TODO / platform), example.url, platform, shape],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert f"{platform} {shape}: ok" in out.stdout


@pytest.mark.parametrize("platform", ["alipay", "wechat", "douyin"])
def test_launch_without_any_login_names_both_fixes(
    platform: str, node: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A server with neither the platform's login nor dev login: the login screen says what
    to set up (the platform's variables) and names devUser, and offers no dev login."""
    toml = re.sub(r"(?ms)^\[auth\.dev\]\n.*?(?=^\[)", "", EXAMPLE.read_text())
    toml = re.sub(r'(?m)^web = "web".*$', "", toml)
    assert "[auth.dev]" not in toml
    with _serve(tmp_path_factory.mktemp("todo-nodev"), toml) as served:
        script = f"""
const fs = require('node:fs'), path = require('node:path'), os = require('node:os')
const app = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-nodev-'))
fs.cpSync({str(TODO / platform)!r}, app, {{ recursive: true }})
const config = fs.readFileSync(path.join(app, 'config.js'), 'utf8')
fs.writeFileSync(path.join(app, 'config.js'), config.replace(/endpoint: '[^']*'/, "endpoint: '{served.url}'"))
const run = new rt.Runtime({{ platform: {platform!r}, dir: app, endpoint: {served.url!r}, shape: 'a' }})
run.launch()
run.idle().then(() => {{
  console.log(JSON.stringify({{
    route: run.route,
    reason: run.text(run.find('view.login-reason')),
    devLogin: run.exists('button.dev-submit'),
    platformLogin: run.exists('button.platform-login'),
  }}))
}})
"""
        out = _runtime(node, script)
    assert out.returncode == 0, out.stderr + out.stdout
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    name = {"alipay": "Alipay", "wechat": "WeChat", "douyin": "Douyin"}[platform]
    assert seen["route"] == "pages/login/login"
    assert f"{name} login is not set up on this server" in seen["reason"]
    assert "devUser" in seen["reason"] and "[auth.dev]" in seen["reason"]
    assert seen["devLogin"] is False and seen["platformLogin"] is False


def _runtime(node: str, script: str) -> subprocess.CompletedProcess[str]:
    code = f"const rt = require({str(RUNTIME)!r});\n{script}"
    return subprocess.run([node, *_node_flags(node), "-e", code], capture_output=True, text=True, timeout=60)


def test_template_expressions_and_markup_checks(node: str) -> None:
    out = _runtime(
        node,
        r"""
const assert = require('node:assert/strict')
const tree = rt.parseMarkup('<view a:for="{{xs}}" class="x {{item > 1 ? \'big\' : \'\'}}">{{index}}:{{item * 2}}</view>', 't')
assert.equal(tree.children.length, 1)
assert.throws(() => rt.parseExpression('f(1)'), /function calls are not allowed/)
assert.throws(() => rt.parseMarkup('<view><text></view>', 't'), /closes/)
assert.throws(() => rt.parseMarkup('<view a:if="{{a b}}"></view>', 't'), /unexpected/)
console.log('ok')
""",
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_runtime_refuses_a_template_that_names_a_missing_handler(node: str, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(TODO / "wechat", app)
    wxml = app / "pages" / "todos" / "todos.wxml"
    wxml.write_text(wxml.read_text().replace('bindtap="onLogout"', 'bindtap="onLogOut"'))
    out = _runtime(
        node,
        f"new rt.Runtime({{platform: 'wechat', dir: {str(app)!r}, endpoint: 'http://127.0.0.1:9'}}).launch()",
    )
    assert out.returncode != 0 and "the page has no method onLogOut" in out.stderr, out.stderr
    wxml.write_text(
        wxml.read_text().replace('bindtap="onLogOut"', 'bindtap="onLogout"').replace("wx:if", "a:if", 1)
    )
    out = _runtime(
        node,
        f"new rt.Runtime({{platform: 'wechat', dir: {str(app)!r}, endpoint: 'http://127.0.0.1:9'}}).launch()",
    )
    assert out.returncode != 0 and "a:if is not a wechat directive" in out.stderr, out.stderr


def test_page_code_is_the_same_in_every_app() -> None:
    for page in ("todos", "add-todo", "login"):
        texts = {
            app: (TODO / app / "pages" / page / f"{page}.js").read_text()
            for app in ("alipay", "wechat", "douyin")
        }
        assert len(set(texts.values())) == 1, f"pages/{page}/{page}.js differs between the apps"
