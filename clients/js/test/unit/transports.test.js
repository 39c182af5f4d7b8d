import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  alipayTransport,
  detectPlatform,
  douyinTransport,
  fetchTransport,
  MinibaseError,
  transportFor,
  wechatTransport,
} from '../../src/index.js'
import { fakeHost } from '../helpers.js'

const REQ = {
  url: 'https://api.example.com/2016-08-15/services/s/functions/db/invocations',
  method: 'POST',
  headers: { 'content-type': 'application/json', date: 'Wed, 25 Nov 2026 12:00:13 GMT' },
  body: '{"op":"get","id":"a"}',
  timeout: 5000,
}

function withoutCallbacks(opts) {
  const { success, fail, ...rest } = opts
  assert.equal(typeof success, 'function')
  assert.equal(typeof fail, 'function')
  return rest
}

test('alipay: my.request gets headers (plural), dataType text, the raw string body', async () => {
  const my = fakeHost('alipay', () => ({ status: 200, headers: { 'Content-Type': 'application/json', 'X-FC-Request-Id': 'r1' }, data: '{"data":1}' }))
  const t = alipayTransport(my)
  assert.equal(t.name, 'alipay')
  assert.equal(t.setsDate, true)
  const res = await t.request(REQ)
  assert.deepEqual(withoutCallbacks(my.calls[0]), {
    url: REQ.url,
    method: 'POST',
    headers: REQ.headers,
    dataType: 'text',
    data: REQ.body,
    timeout: 5000,
  })
  assert.deepEqual(res, { status: 200, headers: { 'content-type': 'application/json', 'x-fc-request-id': 'r1' }, data: '{"data":1}' })
})

test('alipay: HTTP errors arrive through fail (error 19) with status and body: they are answers', async () => {
  const my = fakeHost('alipay', () => ({ fail: { error: 19, errorMessage: 'http status error', status: 403, headers: { 'x-fc-request-id': 'r2' }, data: '{"ErrorCode":"SignatureNotMatch","ErrorMessage":"no"}' } }))
  const res = await alipayTransport(my).request(REQ)
  assert.equal(res.status, 403)
  assert.equal(res.data, '{"ErrorCode":"SignatureNotMatch","ErrorMessage":"no"}')
  assert.equal(res.headers['x-fc-request-id'], 'r2')
})

test('alipay: HTTP errors through fail with status and data only, or through success: answers too', async () => {
  const body = '{"error":{"code":"Unauthenticated","message":"gone","requestId":"r","serverTime":"2026-01-01T00:00:00.000Z"}}'
  const b = await alipayTransport(fakeHost('alipay', () => ({ fail: { status: 401, data: body } }))).request(REQ)
  assert.deepEqual(b, { status: 401, headers: {}, data: body })
  const d = await alipayTransport(fakeHost('alipay', () => ({ status: 401, headers: { Date: 'x' }, data: body }))).request(REQ)
  assert.deepEqual(d, { status: 401, headers: { date: 'x' }, data: body })
})

test('alipay: network failures reject with NetworkError; error 19 alone is an HttpError of unknown status', async () => {
  const my = fakeHost('alipay', () => ({ fail: { error: 12, errorMessage: 'network error' } }))
  await assert.rejects(alipayTransport(my).request(REQ), (e) => e instanceof MinibaseError && e.code === 'NetworkError' && e.status === 0 && /network error \(12\)/.test(e.message))
  const my19 = fakeHost('alipay', () => ({ fail: { error: 19, errorMessage: 'http status error' } }))
  await assert.rejects(alipayTransport(my19).request(REQ), (e) => e.code === 'HttpError' && e.status === 0 && e.details.hostError.error === 19 && /status unknown/.test(e.message))
})

for (const [kind, make] of [['wechat', wechatTransport], ['douyin', douyinTransport]]) {
  test(`${kind}: request gets header (singular), dataType text, responseType text`, async () => {
    const host = fakeHost(kind, () => ({ statusCode: 404, header: { 'Content-Type': 'application/json' }, data: '{"error":{"code":"NotFound"}}' }))
    const t = make(host)
    assert.equal(t.name, kind)
    assert.equal(t.setsDate, true)
    const res = await t.request(REQ)
    assert.deepEqual(withoutCallbacks(host.calls[0]), {
      url: REQ.url,
      method: 'POST',
      header: REQ.headers,
      dataType: 'text',
      responseType: 'text',
      data: REQ.body,
      timeout: 5000,
    })
    assert.deepEqual(res, { status: 404, headers: { 'content-type': 'application/json' }, data: '{"error":{"code":"NotFound"}}' })
  })

  test(`${kind}: fail is a NetworkError; a parsed object or ArrayBuffer answer is turned back into text`, async () => {
    const host = fakeHost(kind, () => ({ fail: { errMsg: 'request:fail timeout' } }))
    await assert.rejects(make(host).request(REQ), (e) => e.code === 'NetworkError' && /timeout/.test(e.message))
    const h2 = fakeHost(kind, () => ({ statusCode: 200, header: {}, data: { data: [1] } }))
    assert.equal((await make(h2).request(REQ)).data, '{"data":[1]}')
    const h3 = fakeHost(kind, () => ({ statusCode: 200, header: {}, data: new TextEncoder().encode('{"data":"中"}').buffer }))
    assert.equal((await make(h3).request(REQ)).data, '{"data":"中"}')
  })

  test(`${kind}: binary bodies are sent as an exact ArrayBuffer (PUT uploads)`, async () => {
    const host = fakeHost(kind, () => ({ statusCode: 200, header: {}, data: '' }))
    const big = new Uint8Array([0, 1, 2, 3, 4, 5])
    await make(host).request({ url: 'https://x/f', method: 'PUT', headers: { 'content-type': 'image/png' }, body: big.subarray(2, 5) })
    const sent = host.calls[0]
    assert.equal(sent.method, 'PUT')
    assert.ok(sent.data instanceof ArrayBuffer)
    assert.deepEqual([...new Uint8Array(sent.data)], [2, 3, 4])
    assert.equal(sent.timeout, undefined)
  })
}

test('a request without a body sends no data key', async () => {
  const my = fakeHost('alipay', () => ({ status: 200, headers: {}, data: '' }))
  await alipayTransport(my).request({ url: 'https://x/', method: 'GET', headers: {} })
  assert.equal('data' in my.calls[0], false)
})

test('fetch: passes method/headers/body, lower-cases headers, reads text; network errors are NetworkError', async () => {
  const seen = []
  const fakeFetch = async (url, init) => {
    seen.push({ url, init })
    return { status: 500, headers: new Headers({ 'X-FC-Request-Id': 'r9', 'Content-Type': 'text/plain' }), text: async () => 'boom' }
  }
  const t = fetchTransport(fakeFetch)
  assert.equal(t.name, 'fetch')
  assert.equal(t.setsDate, false)
  const res = await t.request(REQ)
  assert.equal(seen[0].url, REQ.url)
  assert.equal(seen[0].init.method, 'POST')
  assert.deepEqual(seen[0].init.headers, REQ.headers)
  assert.equal(seen[0].init.body, REQ.body)
  assert.ok(seen[0].init.signal)
  assert.deepEqual(res, { status: 500, headers: { 'x-fc-request-id': 'r9', 'content-type': 'text/plain' }, data: 'boom' })
  const broken = fetchTransport(async () => {
    throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })
  })
  await assert.rejects(broken.request(REQ), (e) => e.code === 'NetworkError' && /ECONNREFUSED/.test(e.message))
})

test('fetch: a timeout aborts the request and is a NetworkError', async () => {
  const t = fetchTransport(
    (url, init) =>
      new Promise((resolve, reject) => {
        init.signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })))
      }),
  )
  await assert.rejects(t.request({ ...REQ, timeout: 20 }), (e) => e.code === 'NetworkError' && /timed out/.test(e.message))
})

test('detectPlatform and transportFor follow the host globals (my, tt, wx, else fetch)', () => {
  assert.equal(detectPlatform(), 'web')
  assert.equal(transportFor('web').name, 'fetch')
  const saved = {}
  for (const g of ['my', 'wx', 'tt']) saved[g] = globalThis[g]
  try {
    globalThis.wx = fakeHost('wechat', () => ({}))
    assert.equal(detectPlatform(), 'wechat')
    assert.equal(transportFor('wechat').name, 'wechat')
    globalThis.tt = fakeHost('douyin', () => ({}))
    assert.equal(detectPlatform(), 'douyin', 'Douyin wins over a wx alias')
    globalThis.my = fakeHost('alipay', () => ({}))
    assert.equal(detectPlatform(), 'alipay')
    assert.equal(transportFor('alipay').name, 'alipay')
  } finally {
    for (const g of ['my', 'wx', 'tt']) {
      if (saved[g] === undefined) delete globalThis[g]
      else globalThis[g] = saved[g]
    }
  }
  assert.throws(() => alipayTransport(), (e) => e.code === 'InvalidArgument')
})
