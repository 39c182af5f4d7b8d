import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelay, createClient, isRetryable, isRetrySafe, memoryStorage, MinibaseError, parseRetryAfter, withRetry } from '../../src/index.js'

const err = (code, details) => new MinibaseError(code, code, undefined, null, details)

test('only NetworkError and RateLimited are retryable', () => {
  assert.equal(isRetryable(err('NetworkError')), true)
  assert.equal(isRetryable(err('RateLimited')), true)
  for (const c of ['Internal', 'Conflict', 'Unauthenticated', 'InvalidSecurityToken.Expired', 'SignatureNotMatch', 'ProviderError', 'InvalidArgument']) {
    assert.equal(isRetryable(err(c)), false, c)
  }
})

test('backoff doubles per attempt, with jitter in [d/2, d], capped at maxDelay', () => {
  for (let a = 0; a < 6; a++) {
    const d = 200 * 2 ** a
    assert.equal(backoffDelay(a, { random: () => 0 }), d / 2)
    assert.equal(backoffDelay(a, { random: () => 0.999999 }), Math.round(d / 2 + 0.999999 * (d / 2)))
  }
  assert.equal(backoffDelay(20, { random: () => 1, maxDelay: 5000 }), 5000)
})

test('Retry-After: delta-seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('3'), 3000)
  assert.equal(parseRetryAfter(2), 2000)
  assert.equal(parseRetryAfter('Wed, 25 Nov 2026 12:00:10 GMT', Date.UTC(2026, 10, 25, 12, 0, 0)), 10000)
  assert.equal(parseRetryAfter('soon'), null)
  assert.equal(parseRetryAfter(undefined), null)
})

test('network errors: up to 3 retries with growing delays, then the error', async () => {
  const sleeps = []
  let calls = 0
  await assert.rejects(
    withRetry(async () => {
      calls++
      throw err('NetworkError')
    }, { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 }),
    (e) => e.code === 'NetworkError',
  )
  assert.equal(calls, 4)
  assert.deepEqual(sleeps, [150, 300, 600])
})

test('success after transient failures returns the value', async () => {
  let calls = 0
  const v = await withRetry(async () => {
    if (++calls < 3) throw err('NetworkError')
    return 'ok'
  }, { sleep: async () => {} })
  assert.equal(v, 'ok')
  assert.equal(calls, 3)
})

test('RateLimited honours Retry-After (at least that long); too long a Retry-After is not waited', async () => {
  const sleeps = []
  let calls = 0
  const v = await withRetry(async () => {
    if (++calls === 1) throw err('RateLimited', { retryAfter: 2 })
    return calls
  }, { sleep: async (ms) => void sleeps.push(ms), random: () => 0 })
  assert.equal(v, 2)
  assert.deepEqual(sleeps, [2000])
  calls = 0
  await assert.rejects(
    withRetry(async () => {
      calls++
      throw err('RateLimited', { retryAfter: 3600 })
    }, { sleep: async () => {} }),
    (e) => e.code === 'RateLimited',
  )
  assert.equal(calls, 1)
})

test('other errors are never retried', async () => {
  for (const code of ['Internal', 'Conflict', 'Unauthenticated', 'PermissionDenied']) {
    let calls = 0
    await assert.rejects(
      withRetry(async () => {
        calls++
        throw err(code)
      }, { sleep: async () => assert.fail('no sleep') }),
    )
    assert.equal(calls, 1, code)
  }
})

test('through the client: 429 answers with Retry-After and network errors are retried, 500s are not', async () => {
  const sleeps = []
  const script = [
    () => ({ status: 429, headers: { 'retry-after': '1' }, data: '{"error":{"code":"RateLimited","message":"slow down","requestId":"r","retryAfter":1}}' }),
    () => {
      throw new MinibaseError('NetworkError', 'fetch failed: ECONNRESET', 0)
    },
    () => ({ status: 200, headers: {}, data: JSON.stringify({ sessionId: 's', sts: { AccessKeyId: 'a', AccessKeySecret: 'b', SecurityToken: 'c', Expiration: '2999-01-01T00:00:00Z' }, user: { uid: 'u' } }) }),
    () => ({ status: 500, headers: {}, data: '{"error":{"code":"Internal","message":"internal error","requestId":"r2"}}' }),
  ]
  let i = 0
  const mb = createClient({
    endpoint: 'https://x',
    service: 's',
    storage: memoryStorage(),
    transport: async () => script[i++](),
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0,
  })
  assert.deepEqual(await mb.login({ authCode: 'dev:a' }), { uid: 'u' })
  assert.equal(i, 3)
  assert.equal(sleeps[0], 1000)
  assert.equal(sleeps[1], 200)
  await assert.rejects(mb.callFunction('db'), (e) => e.code === 'Internal' && e.status === 500 && e.requestId === 'r2')
  assert.equal(i, 4)
  assert.equal(sleeps.length, 2)
})

test('Unavailable is retryable only for retry-safe calls', () => {
  assert.equal(isRetryable(err('Unavailable')), false)
  assert.equal(isRetryable(err('Unavailable'), true), true)
  assert.equal(isRetryable(err('Internal'), true), false)
  for (const [name, event] of [
    ['db', { op: 'get', id: 'a' }],
    ['db', { op: 'list' }],
    ['db', { op: 'query' }],
    ['db', { op: 'count' }],
    ['db', { op: 'put', obj: { id: 'a' } }],
    ['db', { op: 'batch', ops: [{ op: 'get', id: 'a' }, { op: 'put', obj: { id: 'b' } }] }],
    ['files', { op: 'stat', path: 'a' }],
    ['files', { op: 'list' }],
    ['files', { op: 'downloadUrl', path: 'a' }],
    ['files', { op: 'uploadUrl', path: 'a' }],
  ]) {
    assert.equal(isRetrySafe(name, event), true, JSON.stringify([name, event]))
  }
  for (const [name, event] of [
    ['db', { op: 'insert', obj: {} }],
    ['db', { op: 'update', id: 'a', inc: { n: 1 } }],
    ['db', { op: 'remove', id: 'a' }],
    ['db', { op: 'batch', ops: [{ op: 'get', id: 'a' }, { op: 'insert', obj: {} }] }],
    ['db', { op: 'batch', ops: [] }],
    ['db', { op: 'batch' }],
    ['db', {}],
    ['db', null],
    ['files', { op: 'remove', path: 'a' }],
    ['clearCompleted', { op: 'get' }],
    ['toString', { op: 'get' }],
    ['session', { op: 'refresh' }],
  ]) {
    assert.equal(isRetrySafe(name, event), false, JSON.stringify([name, event]))
  }
})

test('through the client: 503 Unavailable is retried for reads (after Retry-After), never for an insert', async () => {
  const sleeps = []
  const unavailable = (status) => ({
    status,
    headers: status === 200 ? { 'retry-after': '2', 'x-fc-error-type': 'HandledInvocationError' } : { 'retry-after': '2' },
    data: '{"error":{"code":"Unavailable","message":"the database is unavailable","requestId":"r","retryAfter":2}}',
  })
  const login = () => ({ status: 200, headers: {}, data: JSON.stringify({ sessionId: 's', sts: { AccessKeyId: 'a', AccessKeySecret: 'b', SecurityToken: 'c', Expiration: '2999-01-01T00:00:00Z' }, user: { uid: 'u' } }) })
  const ok = (data) => () => ({ status: 200, headers: {}, data: JSON.stringify({ data }) })
  const script = [login, () => unavailable(503), () => unavailable(200), ok({ id: 'a' }), () => unavailable(503), () => unavailable(503)]
  const sent = []
  let i = 0
  const mb = createClient({
    endpoint: 'https://x',
    service: 's',
    storage: memoryStorage(),
    transport: async (req) => {
      sent.push(req.body && JSON.parse(req.body).op)
      return script[i++]()
    },
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0,
  })
  await mb.login({ authCode: 'dev:a' })
  // A read: 503, then FC's 200 + HandledInvocationError, then the answer.
  assert.deepEqual(await mb.db.collection('todo').doc('a').get(), { id: 'a' })
  assert.deepEqual(sleeps, [2000, 2000])
  // An insert without an id: thrown at once, sent once.
  await assert.rejects(mb.db.collection('todo').add({ n: 1 }), (e) => e.code === 'Unavailable' && e.status === 503 && e.details.retryAfter === 2)
  assert.deepEqual(sleeps, [2000, 2000])
  assert.deepEqual(sent.slice(1), ['get', 'get', 'get', 'insert'])
  // Still unavailable after maxRetries: the error.
  const down = createClient({
    endpoint: 'https://x',
    service: 's',
    storage: memoryStorage(),
    transport: async (req) => (JSON.parse(req.body).authCode ? login() : unavailable(503)),
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0,
    maxRetries: 2,
  })
  await down.login({ authCode: 'dev:b' })
  sleeps.length = 0
  await assert.rejects(down.db.collection('todo').count(), (e) => e.code === 'Unavailable')
  assert.deepEqual(sleeps, [2000, 2000])
})
