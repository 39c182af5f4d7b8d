import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createHash, randomBytes, randomInt, webcrypto } from 'node:crypto'
import {
  authorization,
  canonicalResource,
  formatHttpDate,
  signRequest,
  signString,
  signStringAsync,
  stringToSign,
} from '../../src/index.js'
import { nodeSign, nodeStringToSign } from '../helpers.js'

// Node 18 has WebCrypto only under node:crypto; make it global as browsers and Node ≥ 19 have it.
if (!globalThis.crypto) Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true })

const vectors = JSON.parse(readFileSync(new URL('../vectors/fc_signature.json', import.meta.url), 'utf8'))

test('signatures match every vector from FC\'s own SDK', () => {
  assert.ok(vectors.length >= 3)
  for (const v of vectors) {
    const got = authorization({
      accessKeyId: v.accessKeyId,
      accessKeySecret: v.accessKeySecret,
      method: v.method,
      path: v.path,
      headers: v.headers,
      query: v.query,
    })
    assert.equal(got, v.authorization, v.what)
  }
})

test('the async signer (WebCrypto and pure JS) gives the vectors\' signatures', async () => {
  assert.ok(globalThis.crypto && globalThis.crypto.subtle)
  for (const v of vectors) {
    const s = stringToSign(v.method, v.path, v.headers, v.query)
    const expected = v.authorization.split(':').pop()
    assert.equal(await signStringAsync(v.accessKeySecret, s), expected)
    assert.equal(await signStringAsync(v.accessKeySecret, s, { webCrypto: false }), expected)
  }
})

test('stringToSign layout: method, md5, type, date, sorted x-fc-* lines, path', () => {
  const s = stringToSign('post', '/2016-08-15/services/s/functions/f%20x/invocations', {
    'Content-Type': 'application/json',
    Date: 'Wed, 25 Nov 2026 12:00:13 GMT',
    'X-FC-Security-Token': 'tok',
    'x-fc-a': '1',
    'x-other': 'ignored',
  })
  assert.equal(
    s,
    'POST\n\napplication/json\nWed, 25 Nov 2026 12:00:13 GMT\nx-fc-a:1\nx-fc-security-token:tok\n/2016-08-15/services/s/functions/f x/invocations',
  )
})

test('x-fc-date mode: the Date line is empty and x-fc-date is signed as an x-fc-* header', async () => {
  const creds = { AccessKeyId: 'STS.a', AccessKeySecret: 'sec', SecurityToken: 'tok' }
  const now = Date.UTC(2026, 10, 25, 12, 0, 13)
  const h = await signRequest(creds, { method: 'POST', path: '/p' }, { dateHeader: 'x-fc-date', now })
  assert.equal(h['x-fc-date'], 'Wed, 25 Nov 2026 12:00:13 GMT')
  assert.equal(h.date, undefined)
  const s = 'POST\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/json\n\nx-fc-date:Wed, 25 Nov 2026 12:00:13 GMT\nx-fc-security-token:tok\n/p'
  assert.equal(stringToSign('POST', '/p', h), s)
  assert.equal(h.authorization, 'FC STS.a:' + nodeSign('sec', s))

  const d = await signRequest(creds, { method: 'POST', path: '/p' }, { now })
  assert.equal(d.date, 'Wed, 25 Nov 2026 12:00:13 GMT')
  assert.equal(d['x-fc-date'], undefined)
  assert.equal(d.authorization, 'FC STS.a:' + nodeSign('sec', 'POST\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/json\nWed, 25 Nov 2026 12:00:13 GMT\nx-fc-security-token:tok\n/p'))
})

test('signRequest signs the Content-MD5 of the body (RFC 1864), so the signature covers it', async () => {
  const creds = { AccessKeyId: 'STS.a', AccessKeySecret: 'sec', SecurityToken: 'tok' }
  const now = Date.UTC(2026, 10, 25, 12, 0, 13)
  const body = '{"op":"list","title":"中文"}'
  const h = await signRequest(creds, { method: 'POST', path: '/p', body }, { now })
  assert.equal(h['content-md5'], createHash('md5').update(body, 'utf8').digest('base64'))
  const s = 'POST\n' + h['content-md5'] + '\napplication/json\nWed, 25 Nov 2026 12:00:13 GMT\nx-fc-security-token:tok\n/p'
  assert.equal(stringToSign('POST', '/p', h), s)
  assert.equal(h.authorization, 'FC STS.a:' + nodeSign('sec', s))
  // Another body gives another digest, hence another signature.
  const other = await signRequest(creds, { method: 'POST', path: '/p', body: '{"op":"put"}' }, { now })
  assert.notEqual(other['content-md5'], h['content-md5'])
  assert.notEqual(other.authorization, h.authorization)
  const bytes = await signRequest(creds, { method: 'POST', path: '/p', body: new TextEncoder().encode(body) }, { now })
  assert.equal(bytes['content-md5'], h['content-md5'])
})

test('random requests: pure, WebCrypto and node:crypto signatures agree', async () => {
  for (let i = 0; i < 200; i++) {
    const secret = randomBytes(randomInt(1, 60)).toString('base64url')
    const headers = { 'content-type': 'application/json', date: formatHttpDate(randomInt(0, 4e12)) }
    for (let j = randomInt(0, 5); j > 0; j--) headers['x-fc-' + randomBytes(3).toString('hex')] = randomBytes(randomInt(0, 20)).toString('base64')
    if (i % 3 === 0) headers['content-md5'] = randomBytes(16).toString('base64')
    const path = '/2016-08-15/services/svc/functions/' + encodeURIComponent('fn-' + randomBytes(4).toString('hex') + (i % 5 === 0 ? ' 中' : '')) + '/invocations'
    const s = stringToSign('POST', path, headers)
    assert.equal(s, nodeStringToSign('POST', path, headers))
    const expected = nodeSign(secret, s)
    assert.equal(signString(secret, s), expected)
    assert.equal(await signStringAsync(secret, s), expected)
    assert.equal(await signStringAsync(secret, s, { webCrypto: false }), expected)
  }
})

test('formatHttpDate is RFC 1123 GMT', () => {
  for (let i = 0; i < 200; i++) {
    const ms = randomInt(0, 4102444800000)
    assert.equal(formatHttpDate(ms), new Date(ms).toUTCString())
  }
  assert.equal(formatHttpDate(Date.UTC(2026, 0, 5, 3, 4, 5)), 'Mon, 05 Jan 2026 03:04:05 GMT')
})

test('canonicalResource: unescaped path; /proxy/ paths add the sorted query', () => {
  assert.equal(canonicalResource('/a%2Fb/c%zz'), '/a/b/c%zz')
  assert.equal(canonicalResource('/2016-08-15/proxy/s/f/', null), '/2016-08-15/proxy/s/f/\n')
  assert.equal(canonicalResource('/2016-08-15/proxy/s/f/', { b: '2', a: ['3', '1'], flag: [] }), '/2016-08-15/proxy/s/f/\na=1\na=3\nb=2\nflag')
})

test('signStringAsync really goes through crypto.subtle when present, and falls back when it fails', async () => {
  const subtle = globalThis.crypto.subtle
  const orig = subtle.sign
  let calls = 0
  subtle.sign = function (...args) {
    calls++
    return orig.apply(this, args)
  }
  try {
    assert.equal(await signStringAsync('k1', 'hello'), nodeSign('k1', 'hello'))
    assert.equal(calls, 1)
    assert.equal(await signStringAsync('k1', 'hello', { webCrypto: false }), nodeSign('k1', 'hello'))
    assert.equal(calls, 1)
    subtle.sign = () => Promise.reject(new Error('HMAC not supported'))
    assert.equal(await signStringAsync('k2', 'x'), nodeSign('k2', 'x'))
  } finally {
    delete subtle.sign
    if (subtle.sign !== orig) subtle.sign = orig
  }
})
