// The SDK's build target: every file parses as ES2017 (async/await, no later syntax such as
// object spread, optional catch binding, `?.` or `??`), which is what the mini-program
// platforms' compilers accept as input (see the README, "Platforms"). The example
// mini-programs' own code is checked the same way.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'acorn'

const root = fileURLToPath(new URL('../../', import.meta.url))
const repo = join(root, '..', '..')

function js(dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...js(p))
    else if (name.endsWith('.js')) out.push(p)
  }
  return out
}

function check(files, sourceType) {
  assert.ok(files.length > 0)
  const failed = []
  for (const f of files) {
    try {
      parse(readFileSync(f, 'utf8'), { ecmaVersion: 2017, sourceType })
    } catch (e) {
      failed.push(`${relative(repo, f)}: ${e.message}`)
    }
  }
  assert.deepEqual(failed, [], 'not ES2017:\n' + failed.join('\n'))
}

test('the parser is strict: ES2018+ syntax is refused at ecmaVersion 2017', () => {
  for (const code of ['const { a, ...rest } = x', 'try { f() } catch { g() }', 'a?.b', 'a ?? b', 'async function* g() {}']) {
    assert.throws(() => parse(code, { ecmaVersion: 2017 }), SyntaxError, code)
  }
  parse('async function f() { await g(); return [...xs] }', { ecmaVersion: 2017 })
})

test('src/ (ES modules) parses as ES2017', () => {
  check(js(join(root, 'src')), 'module')
})

test('dist/cjs (what mini-programs load) parses as ES2017', () => {
  check(js(join(root, 'dist', 'cjs')), 'script')
})

test('the example mini-programs parse as ES2017 (their vendored SDK included)', () => {
  for (const app of ['alipay', 'wechat', 'douyin']) check(js(join(repo, 'examples', 'todo', app)), 'script')
})
