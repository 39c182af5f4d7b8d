"""The console in headless Chromium against `minibase serve` of the TODO example: the
"done when" story (an admin made with `minibase admins create` logs in, finds the user who
wrote a todo by their name, disables them, and that user's next call fails) and every page.

Chromium is the system's (/usr/bin/chromium) driven by Playwright; a missing browser is a
failure, never a skip. Screenshots go to test-output/console/.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.examples.test_todo_browser import CHROMIUM, CHROMIUM_ARGS, add, login, png
from tests.fakes.server import free_port
from tests.support.examples import ENV, EXAMPLE, MINIBASE, ROOT

OUTPUT = ROOT / "test-output" / "console"
EMAIL = "ops@example.com"
PASSWORD = "console-test-password"
TIMEOUT_MS = 8000


@dataclass
class Served:
    url: str
    data: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("console-data")
    # The admin, made the way the docs say: the CLI, the password from the environment.
    made = subprocess.run(
        [*MINIBASE, "admins", "create", "--config", str(EXAMPLE), "--data", str(data), "--email", EMAIL],
        env={**ENV, "MINIBASE_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    proc = subprocess.Popen(
        [*MINIBASE, "serve", "--config", str(EXAMPLE), "--port", str(port), "--data", str(data)],
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
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("minibase serve did not start:\n" + (proc.stdout.read() if proc.stdout else ""))
            time.sleep(0.05)
        yield Served(url, data)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed")
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM})")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser: Any, served: Served) -> Iterator[Any]:
    """A fresh browser context per call, at ``path``; page errors and CSP reports fail the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts: list[Any] = []
    problems: list[str] = []

    def open_(path: str, locale: str = "en-US") -> Any:
        ctx = browser.new_context(
            viewport={"width": 1200, "height": 760}, locale=locale, accept_downloads=True
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: problems.append(f"CSP: {m.text}") if "Content Security Policy" in m.text else None,
        )
        page.goto(served.url + path)
        return page

    yield open_
    for ctx in contexts:
        ctx.close()
    assert not problems, problems


def shot(page: Any, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    return path


def admin_login(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("login")).to_be_visible()
    page.get_by_test_id("login-email").fill(EMAIL)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("admin-email")).to_have_text(EMAIL)


def no_error(page: Any) -> None:
    err = page.get_by_test_id("error")
    if err.count() and err.is_visible():
        pytest.fail("the console shows an error: " + err.inner_text())


# --------------------------------------------------------------------------------- tests


def test_find_the_todo_writer_by_name_and_disable_them(open_page: Any) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    # A user of the TODO web app writes a todo.
    app = open_page("/")
    login(app, "carol")
    add(app, "call the bank")

    # The admin logs in to the console; a wrong password first is refused.
    page = open_page("/_/")
    expect(page.get_by_test_id("login")).to_be_visible()
    page.get_by_test_id("login-email").fill(EMAIL)
    page.get_by_test_id("login-password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("wrong email or password")
    admin_login(page)
    expect(page.get_by_test_id("count-users")).to_contain_text("1")
    shot(page, "overview.png")

    # Users: search by the name she logged in with.
    page.get_by_test_id("nav-users").click()
    page.get_by_test_id("user-search").fill("carol")
    page.get_by_test_id("user-search-submit").click()
    expect(page.get_by_test_id("user-row")).to_have_count(1)
    expect(page.get_by_test_id("user-row")).to_contain_text("dev: carol")
    shot(page, "users.png")
    page.get_by_test_id("user-link").click()
    expect(page.get_by_test_id("user-document").filter(has_text="call the bank")).to_have_count(1)
    expect(page.get_by_test_id("identity-row")).to_contain_text("carol")
    expect(page.get_by_test_id("session-row")).to_have_count(1)
    uid = page.get_by_test_id("user-uid").inner_text()
    shot(page, "user.png")

    # Disable her (the page asks first).
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("user-disable").click()
    expect(page.get_by_test_id("user-state")).to_have_text("disabled")
    expect(page.get_by_test_id("notice")).to_contain_text("1 session(s) ended")
    no_error(page)

    # Her next call fails, and she cannot log in again.
    # Her live list ends within about 2 s (the app then shows its login form); a call made
    # before that fails (the app shows the error, then the form). Either way she lands on
    # the login form, and logging in again is refused below.
    new = app.get_by_test_id("new-todo")
    try:
        new.fill("one more", timeout=1500)
        new.press("Enter", timeout=1500)
    except PlaywrightTimeout:
        pass  # the login form replaced the list first
    expect(app.get_by_test_id("login-name")).to_be_visible()
    app.get_by_test_id("login-name").fill("carol")
    app.get_by_test_id("login-submit").click()
    expect(app.get_by_test_id("error")).to_contain_text("disabled")

    # The audit log has it, with the admin's email.
    page.get_by_test_id("nav-audit").click()
    page.get_by_test_id("audit-kind").fill("admin.user")
    page.get_by_test_id("audit-filter").click()
    expect(page.get_by_test_id("audit-row")).to_have_count(1)
    expect(page.get_by_test_id("audit-row")).to_contain_text("admin.user.disable")
    expect(page.get_by_test_id("audit-row")).to_contain_text(EMAIL)
    page.get_by_test_id("audit-uid").fill(uid)
    page.get_by_test_id("audit-kind").fill("")
    page.get_by_test_id("audit-filter").click()
    expect(page.get_by_test_id("audit-event").filter(has_text="login.success")).to_have_count(1)
    shot(page, "audit.png")

    # Enable her again: she can log in.
    page.goto(page.url.split("#")[0] + "#/users/" + uid)
    page.get_by_test_id("user-enable").click()
    expect(page.get_by_test_id("user-state")).to_have_text("active")
    login(app, "carol")


def test_collections_page_browses_edits_creates_and_deletes(open_page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    app = open_page("/")
    login(app, "dave")
    for title in ("first", "second", "third"):
        add(app, title)
    page = open_page("/_/#/collections")
    admin_login(page)
    page.get_by_test_id("collection-link").filter(has_text="todo_list").click()
    expect(page.get_by_test_id("collection-rules")).to_contain_text("owner")
    expect(page.get_by_test_id("collection-indexes")).to_contain_text("completed")
    page.get_by_test_id("query-where").fill('{"title": {"$in": ["first", "third"]}}')
    page.get_by_test_id("query-order").fill('[["title", "desc"]]')
    page.get_by_test_id("query-run").click()
    expect(page.get_by_test_id("doc-row")).to_have_count(2)
    expect(page.get_by_test_id("doc-row").first).to_contain_text("third")
    # A bad query is an error message, not a broken page.
    page.get_by_test_id("query-where").fill('{"title": {"$nope": 1}}')
    page.get_by_test_id("query-run").click()
    expect(page.get_by_test_id("error")).to_contain_text("InvalidArgument")
    page.get_by_test_id("query-where").fill('{"title": "first"}')
    page.get_by_test_id("query-run").click()
    expect(page.get_by_test_id("doc-row")).to_have_count(1)

    # Edit: a non-object is refused; a good edit is saved and audited.
    page.get_by_test_id("doc-edit").click()
    page.get_by_test_id("edit-fields").fill("[1, 2]")
    page.get_by_test_id("edit-save").click()
    expect(page.get_by_test_id("error")).to_contain_text("fields")
    page.get_by_test_id("edit-fields").fill('{"title": "first (fixed by support)", "completed": true}')
    page.get_by_test_id("edit-save").click()
    expect(page.get_by_test_id("notice")).to_be_visible()
    page.get_by_test_id("query-where").fill("")
    page.get_by_test_id("query-run").click()
    expect(page.get_by_test_id("doc-row").filter(has_text="fixed by support")).to_have_count(1)
    shot(page, "collections.png")
    # The user sees the change.
    app.reload()
    expect(app.get_by_test_id("todo-title").filter(has_text="first (fixed by support)")).to_have_count(1)

    # Create one for dave, then delete it.
    uid = page.get_by_test_id("doc-owner").first.inner_text()
    page.get_by_test_id("doc-new").click()
    page.get_by_test_id("edit-id").fill("from-support")
    page.get_by_test_id("edit-uid").fill(uid)
    page.get_by_test_id("edit-fields").fill('{"title": "added by support", "completed": false}')
    page.get_by_test_id("edit-save").click()
    row = page.get_by_test_id("doc-row").filter(has_text="from-support")
    expect(row).to_have_count(1)
    page.once("dialog", lambda d: d.accept())
    row.get_by_test_id("doc-delete").click()
    expect(page.get_by_test_id("doc-row").filter(has_text="from-support")).to_have_count(0)
    no_error(page)

    page.get_by_test_id("nav-audit").click()
    page.get_by_test_id("audit-kind").fill("admin.document")
    page.get_by_test_id("audit-filter").click()
    # to_have_text waits for the filtered list (reading it at once raced the request).
    events = page.get_by_test_id("audit-event")
    expect(events).to_have_text(["admin.document.delete", "admin.document.create", "admin.document.update"])
    expect(page.get_by_test_id("audit-row").first).to_contain_text(EMAIL)


def test_files_page_previews_and_deletes(open_page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    from minibase.client import Client

    erin = Client(served.url, "todo-list-svc")
    try:
        erin.login(auth_code="dev:erin")
        data = png()
        up = erin.files.upload_url("todos/t1/photo.png", "image/png", len(data))
        erin.put_bytes(up["url"], up.get("method", "PUT"), up.get("headers", {}), data)
    finally:
        erin.close()
    page = open_page("/_/#/files")
    admin_login(page)
    expect(page.get_by_test_id("area-link")).to_have_count(1)
    page.get_by_test_id("area-link").click()
    row = page.get_by_test_id("file-row").filter(has_text="photo.png")
    expect(row).to_have_count(1)
    row.get_by_test_id("file-preview-button").click()
    image = page.get_by_test_id("file-image")
    expect(image).to_be_visible()
    # Polled by Playwright, not by a string evaluated in the page: the console's CSP has no
    # 'unsafe-eval', so wait_for_function failed whenever the image was not decoded yet.
    expect(image).to_have_js_property("naturalWidth", 48)
    shot(page, "files.png")
    page.once("dialog", lambda d: d.accept())
    row.get_by_test_id("file-delete").click()
    expect(page.get_by_test_id("file-row").filter(has_text="photo.png")).to_have_count(0)
    no_error(page)


def test_settings_export_import_and_chinese(open_page: Any, served: Served, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from minibase.client import Client

    # A document of its own to export: with several test workers, the tests that write
    # todos may run against another worker's server.
    with Client(served.url, "todo-list-svc") as frank:
        frank.login(auth_code="dev:frank")
        frank.db.collection("todo_list").add({"title": "to export", "done": False})
    page = open_page("/_/#/settings")
    admin_login(page)
    expect(page.get_by_test_id("settings")).to_contain_text('"default_collection": "todo_list"')
    shot(page, "settings.png")

    page.get_by_test_id("nav-data").click()
    with page.expect_download() as got:
        page.get_by_test_id("export-link").click()
    path = tmp_path / "export.jsonl.gz"
    got.value.save_as(path)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert orjson.loads(lines[0]) == {"minibase": "export", "version": 1}
    assert any(orjson.loads(line)["type"] == "document" for line in lines[1:])
    page.get_by_test_id("import-file").set_input_files(str(path))
    page.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("import-result")).to_contain_text("documents")
    expect(page.get_by_test_id("import-progress")).to_have_attribute("value", "100")
    shot(page, "data.png")
    no_error(page)

    # Chinese: switched by hand, kept on reload; chosen from the browser's language too.
    page.get_by_test_id("lang").click()
    expect(page.get_by_test_id("nav-overview")).to_have_text("概览")
    page.reload()
    expect(page.get_by_test_id("nav-users")).to_have_text("用户")
    page.get_by_test_id("nav-overview").click()
    expect(page.get_by_test_id("count-users")).to_contain_text("用户")
    shot(page, "overview-zh.png")
    zh = open_page("/_/", locale="zh-CN")
    expect(zh.get_by_test_id("login-submit")).to_have_text("登录")


def test_every_string_is_in_both_languages() -> None:
    node = os.environ.get("NODE", "node")
    src = ROOT / "minibase" / "console" / "static" / "i18n.js"
    script = (
        f"import('{src.as_uri()}').then(m => console.log(JSON.stringify("
        "[Object.keys(m.STRINGS.en).sort(), Object.keys(m.STRINGS.zh).sort()])))"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    en, zh = orjson.loads(out.stdout)
    assert en == zh and len(en) > 80
    # Every key the app uses exists.
    import re

    js = (ROOT / "minibase" / "console" / "static" / "console.js").read_text()
    used = set(re.findall(r"\bt\('([a-zA-Z.]+)'[,)]", js))
    used |= {"nav." + page for page in re.findall(r"^  (\w+): \w+Page,$", js, re.MULTILINE)}
    assert "nav.settings" in used
    assert used and used <= set(en), used - set(en)
