import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CODE_STATUS, MinibaseError, parseResponse } from '../../src/index.js'

const res = (status, data, headers = {}) => ({ status, headers, data })
const throws = (r) => {
  try {
    parseResponse(r)
  } catch (e) {
    assert.ok(e instanceof MinibaseError)
    return e
  }
  assert.fail('expected an error')
}

test('success bodies are returned parsed', () => {
  assert.deepEqual(parseResponse(res(200, '{"data":[1],"next":null}')), { data: [1], next: null })
  assert.equal(parseResponse(res(204, '')), null)
})

test('{"error"} bodies: code, message, status, requestId, details', () => {
  const e = throws(res(409, '{"error":{"code":"Conflict","message":"exists","requestId":"r1","index":0}}', { 'x-fc-request-id': 'h' }))
  assert.deepEqual([e.code, e.message, e.status, e.requestId, e.details], ['Conflict', 'exists', 409, 'r1', { index: 0 }])
  const h = throws(res(200, '{"error":{"code":"NotFound","message":"no"}}', { 'x-fc-error-type': 'HandledInvocationError', 'x-fc-request-id': 'h2' }))
  assert.deepEqual([h.code, h.status, h.requestId], ['NotFound', 404, 'h2'])
  const r = throws(res(429, '{"error":{"code":"RateLimited","message":"slow","retryAfter":3}}', { 'retry-after': '3' }))
  assert.equal(r.details.retryAfter, 3)
  const odd = throws(res(200, '{"error":{"code":"SomethingNew","message":"x"}}', { 'x-fc-error-type': 'UnhandledInvocationError' }))
  assert.deepEqual([odd.code, odd.status], ['SomethingNew', 200])
})

test('FC gateway bodies {"ErrorCode", "ErrorMessage"}', () => {
  const e = throws(res(403, '{"ErrorCode":"SignatureNotMatch","ErrorMessage":"bad","RequestId":"g"}'))
  assert.deepEqual([e.code, e.message, e.status, e.requestId], ['SignatureNotMatch', 'bad', 403, 'g'])
})

test('non-JSON and empty error answers', () => {
  const a = throws(res(502, '<html>Bad Gateway</html>'))
  assert.deepEqual([a.code, a.status], ['ProviderError', 502])
  assert.match(a.message, /HTTP 502: <html>/)
  const b = throws(res(404, ''))
  assert.equal(b.code, 'NotFound')
  const c = throws(res(200, 'not json'))
  assert.equal(c.code, 'Internal')
  const d = throws(res(200, '{"x":1}', { 'x-fc-error-type': 'UnhandledInvocationError' }))
  assert.equal(d.code, 'Internal')
  const g = throws(res(200, '{"errorMessage":"division by zero","errorType":"ZeroDivisionError"}', { 'x-fc-error-type': 'UnhandledInvocationError' }))
  assert.deepEqual([g.code, g.message, g.status], ['Internal', 'division by zero', 500])
  const f = throws(res(418, '[]'))
  assert.equal(f.code, 'InvalidArgument')
})

test('MinibaseError defaults its status from the code', () => {
  assert.equal(new MinibaseError('NotFound', 'x').status, 404)
  assert.equal(new MinibaseError('NetworkError', 'x').status, 0)
  assert.equal(new MinibaseError('Conflict', 'x', 200).status, 200)
})

test('CODE_STATUS has every server code, DeadlineExceeded included; a bare 504 is DeadlineExceeded', () => {
  assert.equal(CODE_STATUS.DeadlineExceeded, 504)
  assert.equal(CODE_STATUS.MethodNotAllowed, 405)
  assert.equal(new MinibaseError('DeadlineExceeded', 'late').status, 504)
  const e = throws(res(504, ''))
  assert.deepEqual([e.code, e.status], ['DeadlineExceeded', 504])
  const h = throws(res(200, '{"error":{"code":"DeadlineExceeded","message":"late"}}', { 'x-fc-error-type': 'HandledInvocationError' }))
  assert.deepEqual([h.code, h.status], ['DeadlineExceeded', 504])
})
