#!/usr/bin/env node
// Builds the CommonJS copy of src/ (ES modules) into dist/cjs/*.js (with a package.json
// saying "type": "commonjs", so the files keep the .js extension that mini-program IDEs
// require), and index.d.cts from index.d.ts. No bundler: src/ is written in a small subset of module syntax that
// this script rewrites line by line (named imports/exports of local modules only):
//   import { a, b as c } from './x.js'      → const { a, b: c } = require('./x.js')
//   export function f / class C / const x   → the declaration, exported at the end
//   export { a, b } from './x.js'            → re-exported through require
// Anything else that looks like module syntax is an error, so the build never silently
// produces a broken file. `--check` verifies that dist/ is up to date instead of writing.
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')
const out = join(root, 'dist', 'cjs')
const check = process.argv.includes('--check')

function specifier(spec, file) {
  if (!/^\.\/[\w-]+\.js$/.test(spec)) throw new Error(`${file}: only './name.js' imports are supported, not ${spec}`)
  return spec
}

function names(list) {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^(\w+)(?:\s+as\s+(\w+))?$/.exec(s)
      if (!m) throw new Error(`bad name list entry: ${s}`)
      return { local: m[1], exported: m[2] || m[1] }
    })
}

export function convert(code, file) {
  const exported = [] // [exportedName, expression]
  // Multi-line `{ ... }` lists are joined first so the rewrite works line by line.
  code = code.replace(/^(import|export) \{([^}]*)\}/gm, (m, kw, list) => `${kw} { ${list.replace(/\s+/g, ' ').trim()} }`)
  const lines = code.split('\n').map((line) => {
    let m
    if ((m = /^import \{([^}]*)\} from '([^']+)'\s*;?\s*$/.exec(line))) {
      const binds = names(m[1]).map((n) => (n.local === n.exported ? n.local : `${n.local}: ${n.exported}`))
      return `const { ${binds.join(', ')} } = require('${specifier(m[2], file)}')`
    }
    if ((m = /^export \{([^}]*)\} from '([^']+)'\s*;?\s*$/.exec(line))) {
      const mod = `require('${specifier(m[2], file)}')`
      for (const n of names(m[1])) exported.push([n.exported, `${mod}.${n.local}`])
      return ''
    }
    if ((m = /^export \{([^}]*)\}\s*;?\s*$/.exec(line))) {
      for (const n of names(m[1])) exported.push([n.exported, n.local])
      return ''
    }
    if ((m = /^export (async function\*?|function\*?|class|const|let) (\w+)/.exec(line))) {
      exported.push([m[2], m[2]])
      return line.slice('export '.length)
    }
    if (/^\s*(import|export)\b/.test(line) && !/^\s*(import|export)\s*\(/.test(line)) {
      throw new Error(`${file}: unsupported module syntax: ${line.trim()}`)
    }
    return line
  })
  const tail = exported.map(([name, expr]) => `  ${name}: ${expr},`).join('\n')
  return `'use strict'\n// Generated from src/${file} by scripts/build.mjs: do not edit.\n${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n\nmodule.exports = {\n${tail}\n}\n`
}

const outputs = new Map()
for (const f of readdirSync(src).filter((f) => f.endsWith('.js')).sort()) {
  outputs.set(join(out, f), convert(readFileSync(join(src, f), 'utf8'), f))
}
outputs.set(join(out, 'package.json'), '{\n  "type": "commonjs"\n}\n')
const dts = readFileSync(join(root, 'index.d.ts'), 'utf8')
outputs.set(join(root, 'index.d.cts'), dts.replace(/^\/\/ Type declarations/m, '// Generated from index.d.ts by scripts/build.mjs: do not edit.\n// Type declarations'))

let stale = 0
for (const [path, text] of outputs) {
  const same = existsSync(path) && readFileSync(path, 'utf8') === text
  if (check) {
    if (!same) {
      console.error(`out of date: ${path} (run: npm run build)`)
      stale++
    }
  } else if (!same) {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
  }
}
if (check && stale) process.exit(1)
if (!check) console.log(`built ${outputs.size} files`)
