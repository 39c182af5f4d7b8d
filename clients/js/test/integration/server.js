// Starts a real `minibase serve` for the integration tests: a temp config with the dev
// login provider, a temp data dir, a free port; waits for /healthz; stops it afterwards.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const SERVICE = 'todo-list-svc'
const REPO = fileURLToPath(new URL('../../../../', import.meta.url))
export const MINIBASE_BIN = process.env.MINIBASE_BIN || join(REPO, '.venv', 'bin', 'minibase')

const TOML = `[app]
name = "jsclient"
service = "${SERVICE}"
default_collection = "todo_list"

[auth]
session_idle = "30d"
session_max = "180d"
credentials_ttl = "15m"
# Every FC-signed call must sign a Content-MD5 of its body: the SDK always sends one.
require_body_digest = true

[auth.dev]
enabled = true

[database]
url = "sqlite:///minibase.db"

# Off: the suite logs in many times a minute from one address.
[rate_limits]
login_per_ip = "off"
login_per_subject = "off"
calls_per_user = "off"
calls_per_ip = "off"

[collections.todo_list]
read = "owner"
write = "owner"

[functions]
module = "mbjs_functions"
timeout = "10s"
`

const FUNCTIONS = `from minibase import Conflict, function


@function("whoami")
def whoami(ctx, event):
    return {"uid": ctx.uid, "provider": ctx.provider, "echo": event}


@function("failing")
def failing(ctx, event):
    raise Conflict("this function always conflicts")


@function("countTodos")
async def count_todos(ctx, event):
    return await ctx.db.count("todo_list")


@function("myPhone")
async def my_phone(ctx, event):
    return ctx.user.phone
`

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Start the server; resolves to {endpoint, stop()}; rejects (never skips) if it cannot start. */
export async function startServer() {
  if (!existsSync(MINIBASE_BIN)) throw new Error(`minibase is not installed at ${MINIBASE_BIN} (set MINIBASE_BIN)`)
  const dir = mkdtempSync(join(tmpdir(), 'minibase-js-'))
  writeFileSync(join(dir, 'minibase.toml'), TOML)
  writeFileSync(join(dir, 'mbjs_functions.py'), FUNCTIONS)
  const port = await freePort()
  const proc = spawn(MINIBASE_BIN, ['serve', '--config', join(dir, 'minibase.toml'), '--port', String(port), '--data', join(dir, 'data'), '--log-level', 'warning'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  proc.stdout.on('data', (d) => (output += d))
  proc.stderr.on('data', (d) => (output += d))
  let exited = null
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve((exited = { code, signal }))))
  const killOnExit = () => proc.kill('SIGKILL')
  process.on('exit', killOnExit)

  const stop = async () => {
    process.off('exit', killOnExit)
    if (!exited) {
      proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exit
      clearTimeout(t)
    }
    rmSync(dir, { recursive: true, force: true })
  }

  const endpoint = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30000
  for (;;) {
    if (exited) {
      await stop()
      throw new Error(`minibase serve exited (${JSON.stringify(exited)}):\n${output}`)
    }
    try {
      const r = await fetch(endpoint + '/healthz')
      if (r.ok) break
    } catch (e) {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`minibase serve did not answer /healthz within 30 s:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { endpoint, stop, output: () => output }
}

/** A fake `wx` whose request() goes over the network with fetch, as WeChat's would. */
export function wxOverFetch() {
  const calls = []
  return {
    calls,
    request(opts) {
      calls.push(opts)
      fetch(opts.url, { method: opts.method, headers: opts.header, body: opts.data }).then(
        async (r) => {
          const header = {}
          r.headers.forEach((v, k) => (header[k] = v))
          opts.success({ statusCode: r.status, header, data: await r.text() })
        },
        (e) => opts.fail({ errMsg: 'request:fail ' + e.message }),
      )
    },
  }
}

/**
 * A fake `my` over fetch with Alipay's habits for HTTP ≥ 400, one of the four shapes that
 * base libraries show: 'a' fail({error: 19, status, data, headers}) (the default),
 * 'b' fail({status, data}), 'c' fail({error: 19}) alone, 'd' success({status, data, headers}).
 */
export const ALIPAY_SHAPES = ['a', 'b', 'c', 'd']
export function myOverFetch(shape = 'a') {
  const calls = []
  return {
    calls,
    request(opts) {
      calls.push(opts)
      fetch(opts.url, { method: opts.method, headers: opts.headers, body: opts.data }).then(
        async (r) => {
          const headers = {}
          r.headers.forEach((v, k) => (headers[k] = v))
          const data = await r.text()
          if (r.status < 400 || shape === 'd') opts.success({ status: r.status, headers, data })
          else if (shape === 'a') opts.fail({ error: 19, errorMessage: 'http status error', status: r.status, headers, data })
          else if (shape === 'b') opts.fail({ status: r.status, data })
          else opts.fail({ error: 19, errorMessage: 'http status error' })
        },
        (e) => opts.fail({ error: 12, errorMessage: e.message }),
      )
    },
  }
}
