#!/usr/bin/env node
// `npm test`: build dist/cjs, then run test/**/*.test.js with Node's test runner.
// (Listing the files here keeps helpers such as test/helpers.js from being run as test
// files, and works the same on every OS, without shell globs.)
// Arguments narrow the run to folders under test/: `node scripts/test.mjs unit`.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' })
if (build.status !== 0) process.exit(build.status ?? 1)

function find(dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...find(p))
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}

const only = process.argv.slice(2)
const dirs = only.length ? only.map((d) => join(root, 'test', d)) : [join(root, 'test')]
const files = dirs.flatMap(find)
if (!files.length) {
  console.error('no test files found in ' + dirs.map((d) => relative(root, d)).join(', '))
  process.exit(1)
}
// Node 20 and 21 have WebSocket (the watch tests use it) only behind a flag.
const flags = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-websocket'] : []
const run = spawnSync(process.execPath, [...flags, '--test', ...files.map((f) => relative(root, f))], { stdio: 'inherit', cwd: root })
process.exit(run.status ?? 1)
