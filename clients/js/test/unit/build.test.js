import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import * as esm from '../../src/index.js'

const require = createRequire(import.meta.url)
const root = new URL('../../', import.meta.url)

test('the CommonJS build is up to date with src/', () => {
  execFileSync(process.execPath, [new URL('scripts/build.mjs', root).pathname, '--check'], { stdio: 'pipe' })
})

test('require() and import of the package give the same API; the CJS build works', async () => {
  const cjs = require('minibase-client')
  const imported = await import('minibase-client')
  assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).sort())
  assert.deepEqual(Object.keys(imported).sort(), Object.keys(esm).sort())
  assert.equal(imported.createClient, esm.createClient)
  const v = JSON.parse(readFileSync(new URL('test/vectors/fc_signature.json', root), 'utf8'))[0]
  assert.equal(
    cjs.authorization({ accessKeyId: v.accessKeyId, accessKeySecret: v.accessKeySecret, method: v.method, path: v.path, headers: v.headers }),
    v.authorization,
  )
  const mb = cjs.createClient({ endpoint: 'https://x', service: 's', storage: cjs.memoryStorage() })
  assert.equal(mb.isLoggedIn, false)
  await assert.rejects(mb.callFunction('db'), (e) => e instanceof cjs.MinibaseError && e.code === 'Unauthenticated')
})

test('every export is declared in index.d.ts (and index.d.cts matches it)', () => {
  const dts = readFileSync(new URL('index.d.ts', root), 'utf8')
  for (const name of Object.keys(esm)) {
    assert.match(dts, new RegExp(`export (declare )?(function|class|const|type|interface) ${name}\\b`), name)
  }
  const dcts = readFileSync(new URL('index.d.cts', root), 'utf8')
  assert.ok(dcts.includes(dts.split('\n').slice(1).join('\n')))
})

test('the ErrorCode type lists exactly the codes of CODE_STATUS (generated from the server)', () => {
  const dts = readFileSync(new URL('index.d.ts', root), 'utf8')
  const union = /export type ErrorCode =([^]*?)\n\n|export type ErrorCode =([^]*)$/.exec(dts)
  assert.ok(union, 'index.d.ts declares ErrorCode')
  const declared = [...(union[1] || union[2]).matchAll(/'(\w+)'/g)].map((m) => m[1]).sort()
  assert.deepEqual(declared, Object.keys(esm.CODE_STATUS).sort())
})

test('package.json: zero dependencies (acorn only to test the build target), exports for import/require/types', () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
  assert.equal(pkg.name, 'minibase-client')
  assert.equal(pkg.dependencies, undefined)
  assert.deepEqual(Object.keys(pkg.devDependencies), ['acorn'])
  assert.deepEqual(pkg.exports['.'].import, { types: './index.d.ts', default: './src/index.js' })
  assert.deepEqual(pkg.exports['.'].require, { types: './index.d.cts', default: './dist/cjs/index.js' })
})
