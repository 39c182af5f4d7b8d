#!/usr/bin/env node
// Copies the SDK's CommonJS build (dist/cjs/*) into the example mini-programs, which
// cannot use npm packages without the IDE's npm build step:
//   examples/todo/alipay/libs/minibase-client/
//   examples/todo/wechat/libs/minibase-client/
//   examples/todo/douyin/libs/minibase-client/
// and its ES modules (src/*) into the example web app, served by `minibase serve` (which
// follows no symlink out of the web folder):
//   examples/todo/web/sdk/
// The copies are committed and kept identical to their source (stale files are removed).
// `--check` changes nothing: it exits 1 and lists the differences if a copy has drifted.
// Run `npm run build` first when src/ changed (dist/cjs is generated from it).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const sdk = join(dirname(fileURLToPath(import.meta.url)), '..')
const repo = join(sdk, '..', '..')
const todo = join(repo, 'examples', 'todo')
const copies = [
  [join(sdk, 'dist', 'cjs'), ['alipay', 'wechat', 'douyin'].map((app) => join(todo, app, 'libs', 'minibase-client'))],
  [join(sdk, 'src'), [join(todo, 'web', 'sdk')]],
]
const check = process.argv.includes('--check')

function files(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isFile())
    .sort()
}

const problems = []
let count = 0
for (const [source, targets] of copies) {
  const wanted = files(source)
  if (wanted.length === 0) {
    console.error(`vendor: nothing to copy: ${relative(repo, source)} is empty or missing (run npm run build)`)
    process.exit(1)
  }
  count += targets.length
  for (const target of targets) {
    const have = files(target)
    for (const name of wanted) {
      const want = readFileSync(join(source, name))
      const path = join(target, name)
      if (have.includes(name) && readFileSync(path).equals(want)) continue
      if (check) {
        problems.push(`${relative(repo, path)}: ${have.includes(name) ? 'differs from' : 'missing; copy'} ${relative(repo, join(source, name))}`)
      } else {
        mkdirSync(target, { recursive: true })
        writeFileSync(path, want)
      }
    }
    for (const name of have) {
      if (wanted.includes(name)) continue
      if (check) problems.push(`${relative(repo, join(target, name))}: extra, not in ${relative(repo, source)}`)
      else rmSync(join(target, name))
    }
  }
}

if (problems.length) {
  console.error('vendor: the vendored SDK copies are out of date:\n  ' + problems.join('\n  '))
  console.error('run: node clients/js/scripts/vendor.mjs')
  process.exit(1)
}
console.log(check ? `vendor: ${count} copies match their source` : `vendor: ${count} copies updated`)
