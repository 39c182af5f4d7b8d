import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  alipayStorage,
  createClient,
  douyinStorage,
  memoryStorage,
  storageFor,
  webStorage,
  wechatStorage,
} from '../../src/index.js'
import { fakeHost, fakeServer } from '../helpers.js'

test('alipay storage uses my.*StorageSync with {key, data} objects', () => {
  const calls = []
  const my = {
    getStorageSync: (o) => (calls.push(['get', o]), { data: o.key === 'k' ? 'v' : null }),
    setStorageSync: (o) => calls.push(['set', o]),
    removeStorageSync: (o) => calls.push(['remove', o]),
  }
  const s = alipayStorage(my)
  assert.equal(s.get('k'), 'v')
  assert.equal(s.get('missing'), null)
  s.set('k', '{"a":1}')
  s.remove('k')
  assert.deepEqual(calls, [
    ['get', { key: 'k' }],
    ['get', { key: 'missing' }],
    ['set', { key: 'k', data: '{"a":1}' }],
    ['remove', { key: 'k' }],
  ])
})

for (const [kind, make] of [['wechat', wechatStorage], ['douyin', douyinStorage]]) {
  test(`${kind} storage uses positional (key, data) and treats '' as absent`, () => {
    const calls = []
    const api = {
      getStorageSync: (k) => (calls.push(['get', k]), k === 'k' ? 'v' : ''),
      setStorageSync: (k, d) => calls.push(['set', k, d]),
      removeStorageSync: (k) => calls.push(['remove', k]),
    }
    const s = make(api)
    assert.equal(s.get('k'), 'v')
    assert.equal(s.get('missing'), null)
    s.set('k', 'x')
    s.remove('k')
    assert.deepEqual(calls, [['get', 'k'], ['get', 'missing'], ['set', 'k', 'x'], ['remove', 'k']])
  })
}

test('web storage wraps getItem/setItem/removeItem; memory storage works alone', () => {
  const m = new Map()
  const ls = { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) }
  const s = webStorage(ls)
  assert.equal(s.get('a'), null)
  s.set('a', '1')
  assert.equal(m.get('a'), '1')
  s.remove('a')
  assert.equal(m.has('a'), false)
  const mem = memoryStorage({ x: 'y' })
  assert.equal(mem.get('x'), 'y')
  mem.remove('x')
  assert.equal(mem.get('x'), null)
})

test('storageFor picks the host storage, else localStorage when usable, else memory', () => {
  assert.equal(storageFor('alipay', fakeHost('alipay', () => ({}))).name, 'alipay')
  assert.equal(storageFor('wechat', fakeHost('wechat', () => ({}))).name, 'wechat')
  assert.equal(storageFor('douyin', fakeHost('douyin', () => ({}))).name, 'douyin')
  const had = Object.getOwnPropertyDescriptor(globalThis, 'localStorage')
  try {
    Object.defineProperty(globalThis, 'localStorage', { value: undefined, configurable: true, writable: true })
    assert.equal(storageFor('web').name, 'memory')
    const m = new Map()
    globalThis.localStorage = { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) }
    assert.equal(storageFor('web').name, 'web')
    globalThis.localStorage = { getItem: () => null, setItem: () => { throw new Error('QuotaExceeded') }, removeItem: () => {} }
    assert.equal(storageFor('web').name, 'memory')
  } finally {
    if (had) Object.defineProperty(globalThis, 'localStorage', had)
    else delete globalThis.localStorage
  }
})

for (const kind of ['alipay', 'wechat', 'douyin']) {
  test(`${kind}: the session is saved in host storage and reused by the next launch`, async () => {
    const server = fakeServer()
    server.functions.db = () => ({ data: 'ok' })
    const host = fakeHost(kind, () => ({}))
    const opts = { endpoint: 'https://api.example.com', service: 'svc', platform: kind, host, transport: server.transport() }
    const a = createClient(opts)
    assert.equal(a.isLoggedIn, false)
    await a.login({ authCode: 'dev:alice' })
    const stored = JSON.parse(host.store.get('minibase:svc:session'))
    assert.equal(stored.sessionId, 'sid-1')
    assert.equal(stored.sts.AccessKeyId, 'STS.k1')
    assert.deepEqual(stored.user, { uid: 'u_devalice', provider: 'dev', isNew: true })

    const b = createClient(opts) // the next launch
    assert.equal(b.isLoggedIn, true)
    assert.equal(b.user.uid, 'u_devalice')
    assert.equal(await b.callFunction('db', {}), 'ok')
    assert.equal(server.requests.filter((r) => r.url.includes('/session/')).length, 1, 'no second login')
    await b.logout()
    assert.equal(host.store.has('minibase:svc:session'), false)
    assert.equal(createClient(opts).isLoggedIn, false)
  })
}

test('async storage (Promise-returning) works: ready resolves after the read', async () => {
  const server = fakeServer()
  server.functions.db = () => ({ data: 1 })
  const m = new Map()
  const storage = {
    get: async (k) => m.get(k) ?? null,
    set: async (k, v) => void m.set(k, v),
    remove: async (k) => void m.delete(k),
  }
  const a = createClient({ endpoint: 'https://x', service: 'svc', storage, transport: server.transport() })
  await a.login({ authCode: 'dev:bob' })
  const b = createClient({ endpoint: 'https://x', service: 'svc', storage, transport: server.transport() })
  assert.equal(b.isLoggedIn, false)
  await b.ready
  assert.equal(b.isLoggedIn, true)
  assert.equal(await b.callFunction('db'), 1)
})

test('garbage in storage is ignored', () => {
  const storage = memoryStorage({ 'minibase:svc:session': '{not json' })
  assert.equal(createClient({ endpoint: 'https://x', service: 'svc', storage, transport: () => {} }).isLoggedIn, false)
  const s2 = memoryStorage({ 'minibase:svc:session': '{"sessionId": 5}' })
  assert.equal(createClient({ endpoint: 'https://x', service: 'svc', storage: s2, transport: () => {} }).isLoggedIn, false)
})
