import { test } from 'node:test'
import assert from 'node:assert/strict'
import { alipayTransport, createClient, formatHttpDate, memoryStorage, MinibaseError } from '../../src/index.js'
import { fakeClock, fakeHost, fakeServer } from '../helpers.js'

function setup(extra = {}) {
  const clock = extra.clock || fakeClock()
  const server = fakeServer({ clock, ...(extra.server || {}) })
  const events = []
  server.functions.db = (e) => {
    events.push(e)
    return { data: { echo: e } }
  }
  const storage = memoryStorage()
  const mb = createClient({
    endpoint: 'https://api.example.com',
    service: 'svc',
    storage,
    transport: server.transport(),
    now: clock,
    sleep: async () => {},
    ...(extra.client || {}),
  })
  return { clock, server, storage, mb, events }
}

const sessionCalls = (server) => server.requests.filter((r) => r.url.includes('/proxy/')).map((r) => JSON.parse(r.body))

test('createClient validates endpoint, service and platform', () => {
  assert.throws(() => createClient({ service: 's' }), (e) => e instanceof MinibaseError && e.code === 'InvalidArgument')
  assert.throws(() => createClient({ endpoint: 'ftp://x', service: 's' }), /endpoint/)
  assert.throws(() => createClient({ endpoint: 'https://x' }), /service/)
  assert.throws(() => createClient({ endpoint: 'https://x', service: 's', platform: 'qq' }), /platform/)
})

test('dev login posts {authCode} only, to the proxy session path, and keeps the user', async () => {
  const { mb, server } = setup()
  assert.equal(mb.platform, 'web')
  assert.equal(mb.user, null)
  const user = await mb.login({ authCode: 'dev:alice' })
  assert.deepEqual(user, { uid: 'u_devalice', provider: 'dev', isNew: true })
  assert.deepEqual(mb.user, user)
  assert.equal(mb.isLoggedIn, true)
  const req = server.requests[0]
  assert.equal(req.url, 'https://api.example.com/2016-08-15/proxy/svc/session/')
  assert.equal(req.method, 'POST')
  assert.deepEqual(req.headers, { 'content-type': 'application/json' })
  assert.deepEqual(JSON.parse(req.body), { authCode: 'dev:alice' })
})

test('login on the web without an authCode is refused locally', async () => {
  const { mb, server } = setup()
  await assert.rejects(mb.login(), (e) => e.code === 'InvalidArgument')
  assert.equal(server.requests.length, 0)
})

for (const [platform, code, check] of [
  ['alipay', 'alipay-code-1', (h) => assert.equal(h.authCodeOptions.scopes, 'auth_base')],
  ['wechat', 'wechat-code-1', (h) => assert.equal(typeof h.loginOptions.success, 'function')],
  ['douyin', 'douyin-code-1', (h) => assert.equal(h.loginOptions.force, true)],
]) {
  test(`${platform}: login() runs the host code step and sends provider '${platform}'`, async () => {
    const host = fakeHost(platform, () => ({}))
    const { mb, server } = setup({ client: { platform, host, storage: undefined } })
    assert.equal(mb.platform, platform)
    assert.equal(mb.storage.name, platform)
    const user = await mb.login()
    check(host)
    assert.deepEqual(sessionCalls(server), [{ authCode: code, provider: platform }])
    assert.equal(user.provider, platform)
    assert.ok(host.store.get('minibase:svc:session'))
  })
}

test('alipay: a refused getAuthCode is a ProviderError and nothing is posted', async () => {
  const host = fakeHost('alipay', () => ({}))
  host.authFail = { error: 11, errorMessage: 'user cancelled' }
  const { mb, server } = setup({ client: { platform: 'alipay', host } })
  await assert.rejects(mb.login(), (e) => e.code === 'ProviderError' && /user cancelled/.test(e.message))
  assert.equal(server.requests.length, 0)
})

test('linkPhone sends the WeChat code, or a dev phone, with the sessionId', async () => {
  const { mb, server } = setup()
  await assert.rejects(mb.linkPhone({ code: '0001' }), (e) => e.code === 'Unauthenticated')
  await mb.login({ authCode: 'dev:alice' })
  assert.equal(await mb.linkPhone({ code: '0001' }), '13800000001')
  assert.deepEqual(sessionCalls(server).at(-1), { op: 'linkPhone', sessionId: 'sid-1', code: '0001' })
  assert.equal(await mb.linkPhone({ phone: '13700000000' }), '13700000000')
  await assert.rejects(mb.linkPhone(), (e) => e.code === 'InvalidArgument' && /code/.test(e.message))
})

test('alipay: linkPhone() runs my.getPhoneNumber and sends its response; a refusal posts nothing', async () => {
  const host = fakeHost('alipay', () => ({}))
  const answer = '{"response":"c2lnbmVk","sign":"abc","sign_type":"RSA2","encrypt_type":"AES","charset":"UTF-8"}'
  host.getPhoneNumber = (opts) => setTimeout(() => (host.phoneFail ? opts.fail(host.phoneFail) : opts.success({ response: answer })), 0)
  const { mb, server } = setup({ client: { platform: 'alipay', host } })
  await mb.login()
  assert.equal(await mb.linkPhone(), '1390000' + answer.length)
  assert.deepEqual(sessionCalls(server).at(-1), { op: 'linkPhone', sessionId: 'sid-1', response: answer })
  host.phoneFail = { error: 11, errorMessage: 'user refused' }
  const before = server.requests.length
  await assert.rejects(mb.linkPhone(), (e) => e.code === 'ProviderError' && /user refused/.test(e.message))
  assert.equal(server.requests.length, before)
})

test('calls are FC-signed on the Invoke API path with date + x-fc-security-token', async () => {
  const { mb, server, clock } = setup()
  await mb.login({ authCode: 'dev:alice' })
  const out = await mb.callFunction('db', { op: 'get', id: 'a' })
  assert.deepEqual(out, { echo: { op: 'get', id: 'a' } })
  const req = server.requests.at(-1)
  assert.equal(req.url, 'https://api.example.com/2016-08-15/services/svc/functions/db/invocations')
  assert.equal(req.headers.date, formatHttpDate(clock()))
  assert.equal(req.headers['x-fc-security-token'], 'tok-1')
  assert.match(req.headers.authorization, /^FC STS\.k1:[A-Za-z0-9+/]{43}=$/)
  assert.equal(req.headers['content-type'], 'application/json')
})

test('the fetch-style transport (setsDate false) signs x-fc-date instead of Date', async () => {
  const { mb, server } = setup()
  mb.transport.setsDate = false // decided at construction: check both ways
  const c2 = createClient({ endpoint: 'https://api.example.com', service: 'svc', storage: memoryStorage(), transport: server.transport({ setsDate: false }) })
  assert.equal(c2.dateHeader, 'x-fc-date')
  assert.equal(mb.dateHeader, 'date')
  await c2.login({ authCode: 'dev:carol' })
  await c2.callFunction('db', {})
  const req = server.requests.at(-1)
  assert.equal(req.headers.date, undefined)
  assert.ok(req.headers['x-fc-date'])
})

test('an endpoint with a path prefix keeps it in the URL and in the signed path', async () => {
  const server = fakeServer()
  server.functions.db = () => ({ data: 1 })
  const mb = createClient({ endpoint: 'https://api.example.com/base/', service: 'svc', storage: memoryStorage(), transport: server.transport() })
  const seen = []
  const t = mb.transport.request
  mb.transport.request = (req) => {
    seen.push(req)
    return t({ ...req, url: req.url.replace('/base', '') })
  }
  await mb.login({ authCode: 'dev:a' })
  await assert.rejects(mb.callFunction('db'), (e) => e.code === 'SignatureNotMatch') // the fake server signs without /base
  assert.equal(seen.at(-1).url, 'https://api.example.com/base/2016-08-15/services/svc/functions/db/invocations')
})

test('not logged in: calls fail with Unauthenticated and send nothing', async () => {
  const { mb, server } = setup()
  await assert.rejects(mb.callFunction('db', {}), (e) => e.code === 'Unauthenticated' && e.status === 401)
  await assert.rejects(mb.db.collection('t').get(), (e) => e.code === 'Unauthenticated')
  assert.equal(server.requests.length, 0)
})

test('refresh timing: none while far from Expiration, one within 60 s of it (fake clock)', async () => {
  const { mb, server, clock, storage } = setup()
  await mb.login({ authCode: 'dev:alice' }) // credentials valid 900 s
  await mb.callFunction('db')
  clock.advance(839e3) // 61 s left
  await mb.callFunction('db')
  assert.equal(sessionCalls(server).length, 1)
  clock.advance(2e3) // 59 s left
  await mb.callFunction('db')
  assert.deepEqual(sessionCalls(server)[1], { op: 'refresh', sessionId: 'sid-1' })
  assert.equal(server.requests.at(-1).headers['x-fc-security-token'], 'tok-2')
  assert.equal(JSON.parse(storage.get('minibase:svc:session')).sts.AccessKeyId, 'STS.k2', 'new credentials are stored')
  assert.equal(mb.user.isNew, true, 'the user is kept across refreshes')
  clock.advance(60e3)
  await mb.callFunction('db')
  assert.equal(sessionCalls(server).length, 2)
})

test('refreshMargin is configurable; expired stored credentials are refreshed before the first call', async () => {
  const { mb, server, clock } = setup({ client: { refreshMargin: 300 } })
  await mb.login({ authCode: 'dev:alice' })
  clock.advance(601e3) // 299 s left
  await mb.callFunction('db')
  assert.equal(sessionCalls(server).length, 2)
  clock.advance(3600e3)
  await mb.callFunction('db')
  assert.equal(sessionCalls(server).length, 3)
  assert.equal(server.requests.filter((r) => r.headers.authorization).every((r) => !/Expired/.test(r.data)), true)
})

test('concurrent calls share one refresh', async () => {
  const { mb, server, clock } = setup()
  await mb.login({ authCode: 'dev:alice' })
  clock.advance(899e3)
  await Promise.all([mb.callFunction('db'), mb.callFunction('db'), mb.callFunction('db')])
  assert.equal(sessionCalls(server).filter((e) => e.op === 'refresh').length, 1)
})

test('an expiry error (InvalidSecurityToken.Expired) refreshes once and retries the call', async () => {
  // The server's clock runs ahead of the client's: the client thinks its credentials are fresh.
  const clientClock = fakeClock()
  const serverClock = fakeClock()
  const { mb, server } = setup({ clock: serverClock, client: { now: clientClock } })
  await mb.login({ authCode: 'dev:alice' })
  serverClock.advance(901e3)
  const out = await mb.callFunction('db', { op: 'x' })
  assert.deepEqual(out, { echo: { op: 'x' } })
  const codes = server.requests.map((r) => (r.url.includes('/proxy/') ? JSON.parse(r.body).op || 'login' : 'call'))
  assert.deepEqual(codes, ['login', 'call', 'refresh', 'call'])
})

test('the refresh-on-expiry happens only once: a second credentials error is thrown', async () => {
  const { mb, server } = setup()
  await mb.login({ authCode: 'dev:alice' })
  server.gatewayHook = () => server.answer(403, { ErrorCode: 'InvalidSecurityToken.Expired', ErrorMessage: 'the credentials have expired', RequestId: 'g1' })
  await assert.rejects(mb.callFunction('db'), (e) => e.code === 'InvalidSecurityToken.Expired' && e.status === 403 && e.requestId === 'g1')
  assert.equal(sessionCalls(server).filter((e) => e.op === 'refresh').length, 1)
})

test('a revoked session: the call refreshes, the refresh says Unauthenticated, the session is forgotten', async () => {
  const { mb, server, storage } = setup()
  await mb.login({ authCode: 'dev:alice' })
  server.sessions.get('sid-1').revoked = true
  await assert.rejects(mb.callFunction('db'), (e) => e.code === 'Unauthenticated' && e.details.gatewayCode === 'InvalidSecurityToken')
  assert.equal(mb.isLoggedIn, false)
  assert.equal(storage.get('minibase:svc:session'), null)
})

test('RequestTimeTooSkewed: the clock offset is learnt from the answer\'s Date and the call retried once', async () => {
  const clientClock = fakeClock()
  const serverClock = fakeClock(clientClock() + 3600e3) // the device is an hour behind
  const { mb, server } = setup({ clock: serverClock, client: { now: clientClock } })
  await mb.login({ authCode: 'dev:alice' })
  server.gatewayHook = (req) => {
    if (Math.abs(Date.parse(req.headers.date) - serverClock()) > 900e3) {
      return server.answer(403, { ErrorCode: 'RequestTimeTooSkewed', ErrorMessage: 'off' }, { date: formatHttpDate(serverClock()) })
    }
    return null // on to the signature check
  }
  assert.deepEqual(await mb.callFunction('db', {}), { echo: {} })
  assert.equal(mb.clockOffset, 3600e3)
  assert.equal(mb.serverNow(), serverClock())
  assert.deepEqual(await mb.callFunction('db', {}), { echo: {} })
  assert.equal(server.requests.length, 4) // login, skewed, retried, the next call right away
  // Expiration is compared in server time: 59 s before it (server time), a refresh.
  serverClock.advance(841e3)
  clientClock.advance(841e3)
  await mb.callFunction('db', {})
  assert.deepEqual(sessionCalls(server).at(-1), { op: 'refresh', sessionId: 'sid-1' })
})

test('function errors: 200 + x-fc-error-type answers become MinibaseError with the code\'s status', async () => {
  const { mb, server } = setup()
  await mb.login({ authCode: 'dev:alice' })
  server.functions.db = () => ({
    status: 200,
    headers: { 'x-fc-error-type': 'HandledInvocationError' },
    body: { error: { code: 'Conflict', message: 'version mismatch', requestId: 'abc', index: 2 } },
  })
  await assert.rejects(mb.callFunction('db'), (e) => {
    assert.ok(e instanceof MinibaseError)
    assert.ok(e instanceof Error)
    assert.equal(e.name, 'MinibaseError')
    assert.equal(e.code, 'Conflict')
    assert.equal(e.message, 'version mismatch')
    assert.equal(e.status, 409)
    assert.equal(e.requestId, 'abc')
    assert.deepEqual(e.details, { index: 2 })
    return true
  })
})

test('logout posts {op: logout, sessionId} and clears storage; later calls are Unauthenticated', async () => {
  const { mb, server, storage } = setup()
  await mb.login({ authCode: 'dev:alice' })
  await mb.logout()
  assert.deepEqual(sessionCalls(server).at(-1), { op: 'logout', sessionId: 'sid-1' })
  assert.equal(mb.isLoggedIn, false)
  assert.equal(mb.user, null)
  assert.equal(storage.get('minibase:svc:session'), null)
  await assert.rejects(mb.callFunction('db'), (e) => e.code === 'Unauthenticated')
  await mb.logout() // no-op
})

test('logout clears the local session even when the server call fails', async () => {
  const { mb, server, storage } = setup({ client: { maxRetries: 0 } })
  await mb.login({ authCode: 'dev:alice' })
  const t = mb.transport.request
  mb.transport.request = async () => {
    throw new MinibaseError('NetworkError', 'offline', 0)
  }
  await assert.rejects(mb.logout(), (e) => e.code === 'NetworkError')
  assert.equal(mb.isLoggedIn, false)
  assert.equal(storage.get('minibase:svc:session'), null)
  mb.transport.request = t
  assert.ok(server)
})

test('callFunction vs invoke: data only vs the whole body; function names are URL-encoded', async () => {
  const { mb, server } = setup()
  await mb.login({ authCode: 'dev:alice' })
  server.functions['my fn'] = (e) => ({ data: [e.n], next: 'c2' })
  assert.deepEqual(await mb.callFunction('my fn', { n: 1 }), [1])
  assert.deepEqual(await mb.invoke('my fn', { n: 2 }), { data: [2], next: 'c2' })
  assert.ok(server.requests.at(-1).url.endsWith('/functions/my%20fn/invocations'))
  await assert.rejects(mb.callFunction(''), (e) => e.code === 'InvalidArgument')
})

test('a session answer without sessionId/sts is an Internal error, and nothing is stored', async () => {
  const storage = memoryStorage()
  const mb = createClient({ endpoint: 'https://x', service: 'svc', storage, transport: async () => ({ status: 200, headers: {}, data: '{"data":{"hello":1}}' }) })
  await assert.rejects(mb.login({ authCode: 'dev:a' }), (e) => e.code === 'Internal')
  assert.equal(mb.isLoggedIn, false)
  assert.equal(storage.get('minibase:svc:session'), null)
})

/** Alipay's my.request at its least helpful: an HTTP status >= 400 is fail({error: 19}) alone. */
function errorNineteenOnly(server) {
  return alipayTransport({
    request(opts) {
      server
        .handle({ url: opts.url, method: opts.method, headers: opts.headers, body: opts.data })
        .then((res) => (res.status >= 400 ? opts.fail({ error: 19, errorMessage: 'http status error' }) : opts.success({ status: res.status, headers: res.headers, data: res.data })))
    },
  })
}

test("error 19 alone: a function's RateLimited (200 on the Invoke API path) is still retried", async () => {
  const { mb, server } = setup()
  mb.transport = errorNineteenOnly(server)
  let calls = 0
  server.functions.busy = () =>
    ++calls === 1
      ? { status: 200, body: { error: { code: 'RateLimited', message: 'slow down', requestId: 'r', retryAfter: 0 } }, headers: { 'x-fc-error-type': 'HandledInvocationError' } }
      : { data: 'done' }
  await mb.login({ authCode: 'dev:busy' })
  assert.equal(await mb.callFunction('busy'), 'done')
  assert.equal(calls, 2)
})

test('error 19 alone: one refresh, one retry, then the HttpError (no loop)', async () => {
  const { mb, server } = setup()
  mb.transport = errorNineteenOnly(server)
  await mb.login({ authCode: 'dev:nf' })
  await assert.rejects(mb.callFunction('nope'), (e) => e.code === 'HttpError' && e.status === 0)
  assert.deepEqual(sessionCalls(server).map((e) => e.op || 'login'), ['login', 'refresh'])
  assert.equal(server.requests.filter((r) => r.url.includes('/functions/nope/')).length, 2)
  assert.equal(mb.isLoggedIn, true, 'a refresh that worked keeps the session')
})
