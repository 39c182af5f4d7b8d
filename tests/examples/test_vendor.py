"""The example mini-programs: vendored SDK copies in step with clients/js/dist/cjs, their
JavaScript parses (CommonJS, `node --check`), their JSON is valid and every page they
declare exists."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.examples import ROOT, TODO

VENDOR = ROOT / "clients" / "js" / "scripts" / "vendor.mjs"
DIST = ROOT / "clients" / "js" / "dist" / "cjs"
APPS = {"alipay": ("axml", "acss"), "wechat": ("wxml", "wxss"), "douyin": ("ttml", "ttss")}


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_vendored_sdk_copies_match_dist(node: str) -> None:
    out = run(node, VENDOR, "--check")
    assert out.returncode == 0, f"{out.stderr}{out.stdout}"
    for app in APPS:
        assert (TODO / app / "libs" / "minibase-client" / "index.js").is_file()
    # The web app's ES modules: a real copy (the server follows no symlink out of web/).
    sdk = TODO / "web" / "sdk"
    assert not sdk.is_symlink() and (sdk / "index.js").is_file() and not (sdk / "index.js").is_symlink()


def test_vendor_check_reports_drift_and_vendor_repairs_it(node: str, tmp_path: Path) -> None:
    # A copy of the layout the script expects (paths are relative to the script).
    shutil.copytree(VENDOR.parent, tmp_path / "clients/js/scripts")
    shutil.copytree(DIST, tmp_path / "clients/js/dist/cjs")
    shutil.copytree(ROOT / "clients/js/src", tmp_path / "clients/js/src")
    shutil.copytree(TODO / "web" / "sdk", tmp_path / "examples/todo/web/sdk")
    for app in APPS:
        shutil.copytree(TODO / app / "libs", tmp_path / "examples/todo" / app / "libs")
    script = tmp_path / "clients/js/scripts/vendor.mjs"
    alipay = tmp_path / "examples/todo/alipay/libs/minibase-client"
    wechat = tmp_path / "examples/todo/wechat/libs/minibase-client"
    assert run(node, script, "--check").returncode == 0

    (alipay / "db.js").write_text((alipay / "db.js").read_text() + "\n// edited by hand\n")
    (wechat / "retry.js").unlink()
    (wechat / "old.js").write_text("module.exports = {}\n")
    out = run(node, script, "--check")
    assert out.returncode == 1
    for problem in (
        "alipay/libs/minibase-client/db.js: differs",
        "wechat/libs/minibase-client/retry.js: missing",
        "wechat/libs/minibase-client/old.js: extra",
    ):
        assert problem in out.stderr, out.stderr
    assert (wechat / "old.js").exists(), "--check must not change anything"

    assert run(node, script).returncode == 0
    assert run(node, script, "--check").returncode == 0
    assert not (wechat / "old.js").exists()
    assert (alipay / "db.js").read_bytes() == (DIST / "db.js").read_bytes()

    web = tmp_path / "examples/todo/web/sdk"
    (web / "signer.js").write_text("// stale\n")
    out = run(node, script, "--check")
    assert out.returncode == 1 and "web/sdk/signer.js: differs" in out.stderr, out.stderr
    assert run(node, script).returncode == 0
    assert (web / "signer.js").read_bytes() == (ROOT / "clients/js/src/signer.js").read_bytes()


def _files(app: str, suffix: str) -> list[Path]:
    found = sorted((TODO / app).rglob(f"*.{suffix}"))
    assert found, f"no .{suffix} files in examples/todo/{app}"
    return found


@pytest.mark.parametrize("app", sorted(APPS))
def test_miniprogram_javascript_parses(app: str, node: str) -> None:
    procs = [
        (f, subprocess.Popen([node, "--check", str(f)], stderr=subprocess.PIPE, text=True))
        for f in _files(app, "js")
    ]
    failed = []
    for f, proc in procs:
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            failed.append(f"{f.relative_to(ROOT)}:\n{err}")
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("app", sorted(APPS))
def test_miniprogram_json_is_valid_and_pages_exist(app: str) -> None:
    for f in _files(app, "json"):
        try:
            json.loads(f.read_text(encoding="utf-8"))
        except ValueError as e:
            pytest.fail(f"{f.relative_to(ROOT)}: {e}")
    markup, style = APPS[app]
    pages = json.loads((TODO / app / "app.json").read_text())["pages"]
    assert pages == ["pages/todos/todos", "pages/add-todo/add-todo", "pages/login/login"]
    for page in pages:
        for ext in ("js", "json", markup, style):
            assert (TODO / app / f"{page}.{ext}").is_file(), f"examples/todo/{app}/{page}.{ext} is missing"
    project = "mini.project.json" if app == "alipay" else "project.config.json"
    assert (TODO / app / project).is_file()
    for name in ("app.js", f"app.{style}", "config.js"):
        assert (TODO / app / name).is_file()
