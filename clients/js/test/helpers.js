// Shared fakes for the unit tests: mini-program host objects that record the exact
// options they receive, and an in-process fake minibase behind a transport.
import { createHmac } from 'node:crypto'

/** A fake `my` / `wx` / `tt`: request() records its options and answers with `respond`. */
export function fakeHost(kind, respond) {
  const calls = []
  const store = new Map()
  const host = {
    calls,
    store,
    request(opts) {
      calls.push(opts)
      Promise.resolve()
        .then(() => respond(opts))
        .then((r) => (r.fail ? opts.fail(r.fail) : opts.success(r)))
    },
  }
  if (kind === 'alipay') {
    host.getStorageSync = ({ key }) => ({ data: store.has(key) ? store.get(key) : null })
    host.setStorageSync = ({ key, data }) => store.set(key, data)
    host.removeStorageSync = ({ key }) => store.delete(key)
    host.getAuthCode = (opts) => {
      host.authCodeOptions = opts
      setTimeout(() => (host.authFail ? opts.fail(host.authFail) : opts.success({ authCode: 'alipay-code-1' })), 0)
    }
  } else {
    host.getStorageSync = (key) => (store.has(key) ? store.get(key) : '')
    host.setStorageSync = (key, data) => store.set(key, data)
    host.removeStorageSync = (key) => store.delete(key)
    host.login = (opts) => {
      host.loginOptions = opts
      setTimeout(() => opts.success({ code: kind + '-code-1' }), 0)
    }
  }
  host.getFileSystemManager = () => ({
    readFile({ filePath, success, fail }) {
      if (host.files && host.files[filePath]) success({ data: host.files[filePath] })
      else fail({ errMsg: 'readFile:fail no such file' })
    },
  })
  return host
}

/** Node's own HMAC over the server's definition of the string to sign (an independent check). */
export function nodeStringToSign(method, path, headers) {
  const h = {}
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = v
  const fc = Object.keys(h)
    .filter((k) => k.startsWith('x-fc-'))
    .sort()
    .map((k) => `${k}:${h[k]}\n`)
    .join('')
  return [method, h['content-md5'] || '', h['content-type'] || '', h['date'] || '', fc + decodeURIComponent(path)].join('\n')
}

export function nodeSign(secret, s) {
  return createHmac('sha256', secret).update(s, 'utf8').digest('base64')
}

function iso(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

/**
 * A fake minibase behind a transport: answers session ops, checks FC signatures with
 * node:crypto and records every request. `clock()` is its notion of now (ms).
 * Handlers for functions: `server.functions[name] = (event, req) => body | {status, body, headers}`.
 */
export function fakeServer({ clock = () => Date.now(), ttl = 900, service = 'svc' } = {}) {
  let n = 0
  const server = {
    requests: [],
    sessions: new Map(), // sessionId → {uid, revoked}
    creds: new Map(), // AccessKeyId → {secret, token, exp, sid}
    functions: {},
    gatewayHook: null, // (req) → response to force a gateway answer
    clock,
    mint(sid) {
      n++
      const id = 'STS.k' + n
      const c = { secret: 'secret-' + n, token: 'tok-' + n, exp: clock() + ttl * 1000, sid }
      server.creds.set(id, c)
      return { AccessKeyId: id, AccessKeySecret: c.secret, SecurityToken: c.token, Expiration: iso(c.exp) }
    },
    answer(status, body, headers = {}) {
      return { status, headers: { 'content-type': 'application/json', 'x-fc-request-id': 'rid-' + server.requests.length, ...headers }, data: typeof body === 'string' ? body : JSON.stringify(body) }
    },
    async handle(req) {
      server.requests.push(req)
      const url = new URL(req.url)
      if (url.pathname === `/2016-08-15/proxy/${service}/session/`) {
        const e = JSON.parse(req.body)
        if (e.op === 'refresh') {
          const s = server.sessions.get(e.sessionId)
          if (!s || s.revoked) return server.answer(401, { error: { code: 'Unauthenticated', message: 'the session was revoked: log in again', requestId: 'r' } })
          const body = { sessionId: e.sessionId, sts: server.mint(e.sessionId), user: { uid: s.uid, provider: s.provider, isNew: false }, expiresAt: iso(clock() + 86400e3) }
          return server.answer(200, { ...body, data: body })
        }
        if (e.op === 'logout') {
          const s = server.sessions.get(e.sessionId)
          if (s) s.revoked = true
          return server.answer(200, { data: null })
        }
        if (e.op === 'linkPhone') {
          const s = server.sessions.get(e.sessionId)
          if (!s || s.revoked) return server.answer(401, { error: { code: 'Unauthenticated', message: 'unknown session', requestId: 'r' } })
          return server.answer(200, { data: { phone: e.phone || (e.code ? '1380000' + e.code : '1390000' + String(e.response).length) } })
        }
        const sid = 'sid-' + (server.sessions.size + 1)
        const uid = 'u_' + e.authCode.replace(/\W/g, '')
        server.sessions.set(sid, { uid, provider: e.provider || 'dev', revoked: false })
        const body = { sessionId: sid, sts: server.mint(sid), user: { uid, provider: e.provider || 'dev', isNew: true }, expiresAt: iso(clock() + 86400e3) }
        return server.answer(200, { ...body, data: body })
      }
      const m = /^\/2016-08-15\/services\/([^/]+)\/functions\/([^/]+)\/invocations$/.exec(url.pathname)
      if (!m) return server.answer(404, { error: { code: 'NotFound', message: 'no route', requestId: 'r' } })
      if (server.gatewayHook) {
        const forced = server.gatewayHook(req)
        if (forced) return forced
      }
      const auth = req.headers.authorization || ''
      const am = /^FC (.+):(.+)$/.exec(auth)
      if (!am) return server.answer(401, { ErrorCode: 'MissingRequiredHeader', ErrorMessage: 'no auth' })
      const c = server.creds.get(am[1])
      if (!c || c.token !== req.headers['x-fc-security-token']) return server.answer(403, { ErrorCode: 'InvalidSecurityToken', ErrorMessage: 'unknown token' })
      if (c.exp <= clock()) return server.answer(403, { ErrorCode: 'InvalidSecurityToken.Expired', ErrorMessage: 'the credentials have expired' })
      if (server.sessions.get(c.sid).revoked) return server.answer(403, { ErrorCode: 'InvalidSecurityToken', ErrorMessage: 'the session was revoked' })
      const expected = nodeSign(c.secret, nodeStringToSign('POST', url.pathname, req.headers))
      if (expected !== am[2]) return server.answer(403, { ErrorCode: 'SignatureNotMatch', ErrorMessage: 'the request signature does not match' })
      const fn = server.functions[decodeURIComponent(m[2])]
      if (!fn) return server.answer(404, { ErrorCode: 'FunctionNotFound', ErrorMessage: 'no such function' })
      const out = await fn(JSON.parse(req.body), req, server.sessions.get(c.sid))
      if (out && out.status) return server.answer(out.status, out.body, out.headers)
      return server.answer(200, out)
    },
    transport(extra = {}) {
      return { name: 'fake', setsDate: true, request: (req) => server.handle(req), ...extra }
    },
  }
  return server
}

/** A manual clock. */
export function fakeClock(start = Date.UTC(2026, 10, 25, 12, 0, 0)) {
  let t = start
  const clock = () => t
  clock.advance = (ms) => {
    t += ms
  }
  clock.set = (ms) => {
    t = ms
  }
  return clock
}
