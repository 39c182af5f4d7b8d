import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoffDelay, createClient, isRetryable, memoryStorage, MinibaseError, parseRetryAfter, withRetry } from '../../src/index.js'

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
