"""The TODO mini-program page's live merge (pages/todos/todos.js, the same file on Alipay, WeChat
and Douyin): a watch's init that arrives after the page's own request already showed a newer
version of a todo must not put the older one back (seen once in CI: an edited title reverted
until the next change frame)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.examples import TODO

SCRIPT = r"""
const fs = require('fs')
const vm = require('vm')
let page
const ctx = {
  getApp: () => ({ withThumbs: (list) => Promise.resolve(list) }),
  Page: (def) => { page = def },
  require: () => ({}),
  console,
}
vm.runInNewContext(fs.readFileSync(process.argv[process.argv.length - 1], 'utf8'), ctx)
const self = Object.assign(Object.create(page), {
  items: [
    { id: 'a', title: 'buy oat milk', _version: 2, _created: '1' },
    { id: 'b', title: 'walk dog', _version: 1, _created: '2' },
  ],
  seq: 0,
  show(todos) { this.shown = todos },
})
const init = {
  type: 'init',
  docs: [
    { id: 'a', title: 'buy milk', _version: 1, _created: '1' },
    { id: 'b', title: 'walk dog', _version: 1, _created: '2' },
    { id: 'c', title: 'new elsewhere', _version: 1, _created: '3' },
  ],
  docChanges: [],
}
self.applyChanges(init).then(() => console.log(JSON.stringify(self.shown.map((t) => t.title))))
"""


@pytest.mark.parametrize("platform", ["alipay", "wechat", "douyin"])
def test_a_late_init_does_not_undo_a_newer_version(platform: str) -> None:
    page = TODO / platform / "pages" / "todos" / "todos.js"
    out = subprocess.run(
        ["node", "-e", SCRIPT, "--", str(page)], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["buy oat milk", "walk dog", "new elsewhere"]
