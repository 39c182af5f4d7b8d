// End-to-end tests against a real `minibase serve` (started here; never skipped).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  createClient,
  fetchTransport,
  memoryStorage,
  MinibaseError,
  signRequest,
  wechatTransport,
  alipayTransport,
} from '../../src/index.js'
import { myOverFetch, SERVICE, startServer, wxOverFetch } from './server.js'

let server
let endpoint

before(async () => {
  server = await startServer()
  endpoint = server.endpoint
})

after(async () => {
  if (server) await server.stop()
})

const KEY = `minibase:${SERVICE}:session`

/** A transport that records every request (to see session ops) around another one. */
function recording(inner) {
  const log = []
  return {
    log,
    transport: {
      name: inner.name,
      setsDate: inner.setsDate,
      request: async (req) => {
        log.push(req)
        return inner.request(req)
      },
    },
    sessionOps: () => log.filter((r) => r.url.includes('/proxy/')).map((r) => JSON.parse(r.body).op || 'login'),
  }
}

function client(opts = {}) {
  return createClient({ endpoint, service: SERVICE, storage: memoryStorage(), ...opts })
}

let uniq = 0
const coll = () => 'todo_list' // owner-only collection from the config
const name = (p) => `${p}${process.pid}x${++uniq}`

const VARIANTS = {
  'fetch (x-fc-date)': () => ({ transport: fetchTransport() }),
  'wx.request (Date)': () => ({ platform: 'wechat', transport: wechatTransport(wxOverFetch()) }),
  'my.request (Date, HTTP errors via fail)': () => ({ platform: 'alipay', transport: alipayTransport(myOverFetch()) }),
}

for (const [label, make] of Object.entries(VARIANTS)) {
  describe(`through ${label}`, () => {
    test('dev login, then add / get / set / update / remove, with error codes', async () => {
      const mb = client(make())
      const who = name('alice')
      const user = await mb.login({ authCode: `dev:${who}` })
      assert.match(user.uid, /^u_/)
      assert.equal(user.provider, 'dev')
      assert.equal(user.isNew, true)
      assert.equal(mb.isLoggedIn, true)
      if (label.startsWith('fetch')) assert.equal(mb.dateHeader, 'x-fc-date')
      else assert.equal(mb.dateHeader, 'date')

      const todos = mb.db.collection(coll())
      const doc = await todos.add({ title: 'buy milk', done: false, n: 1 })
      assert.equal(doc.title, 'buy milk')
      assert.equal(doc.uid, user.uid)
      assert.equal(doc._version, 1)
      assert.match(doc.id, /^[a-z0-9]{20}$/)
      assert.deepEqual(await todos.doc(doc.id).get(), doc)

      const up = await todos.doc(doc.id).update({ set: { done: true }, inc: { n: 2 }, push: { tags: 'x' } })
      assert.equal(up.done, true)
      assert.equal(up.n, 3)
      assert.deepEqual(up.tags, ['x'])
      assert.equal(up._version, 2)

      await assert.rejects(todos.doc(doc.id).update({ set: { done: false }, ifVersion: 1 }), (e) => {
        assert.ok(e instanceof MinibaseError)
        assert.equal(e.code, 'Conflict')
        assert.equal(e.status, 409)
        assert.match(e.requestId, /^[0-9a-f]{16}$/)
        return true
      })
      await assert.rejects(todos.add({ id: doc.id, title: 'dup' }), (e) => e.code === 'Conflict')
      await assert.rejects(todos.doc('missing-doc').update({ set: { a: 1 } }), (e) => e.code === 'NotFound' && e.status === 404)
      await assert.rejects(todos.doc(doc.id).update({ set: { uid: 'u_evil' } }), (e) => e.code === 'InvalidArgument' && e.status === 400)

      assert.equal(await todos.doc('fixed-id').set({ title: 'put', uid: 'u_evil' }), null)
      const put = await todos.doc('fixed-id').get()
      assert.equal(put.title, 'put')
      assert.equal(put.uid, user.uid, 'the server sets uid')
      assert.deepEqual(await todos.doc('fixed-id').get({ fields: ['title'] }), { id: 'fixed-id', uid: user.uid, title: 'put' })

      assert.equal(await todos.doc(doc.id).remove(), null)
      assert.equal(await todos.doc(doc.id).get(), null)
      assert.equal(await todos.doc(doc.id).remove(), null, 'removing twice is fine')
      assert.equal(await todos.count(), 1)
      await mb.logout()
    })
  })
}

describe('queries, paging, count and batch', () => {
  let mb
  let todos
  before(async () => {
    mb = client()
    await mb.login({ authCode: `dev:${name('pager')}` })
    todos = mb.db.collection(coll())
    const ops = []
    for (let i = 0; i < 25; i++) ops.push({ op: 'insert', collection: coll(), obj: { id: `d${String(i).padStart(2, '0')}`, n: i, done: i % 2 === 0 } })
    const res = await mb.db.batch(ops)
    assert.equal(res.length, 25)
    assert.equal(res[3].id, 'd03')
  })

  test('where + orderBy desc + limit pages through with next, get({cursor}) and startAfter', async () => {
    const q = todos.where({ n: { $gte: 5 } }).orderBy('n', 'desc').limit(8)
    const seen = []
    let page = await q.get()
    seen.push(...page.data.map((d) => d.n))
    assert.equal(page.data.length, 8)
    assert.equal(typeof page.next, 'string')
    page = await q.get({ cursor: page.next })
    seen.push(...page.data.map((d) => d.n))
    page = await q.startAfter(page.next).get()
    seen.push(...page.data.map((d) => d.n))
    assert.equal(page.next, null)
    const expected = []
    for (let i = 24; i >= 5; i--) expected.push(i)
    assert.deepEqual(seen, expected)
    assert.equal(await q.count(), 20)
    // aggregate: the query's where is the $match (order and limit do not apply)
    const groups = await q.aggregate([{ $group: { _id: '$done', c: { $count: {} }, s: { $sum: '$n' }, hi: { $max: '$n' } } }, { $sort: { s: -1 } }])
    assert.deepEqual(groups, [{ _id: true, c: 10, s: 150, hi: 24 }, { _id: false, c: 10, s: 140, hi: 23 }])
    assert.equal(await todos.where({ done: true }).where({ n: { $lt: 10 } }).count(), 5)
    assert.equal(await todos.count(), 25)
  })

  test('fields and $in / $or filters', async () => {
    const { data } = await todos.where({ $or: [{ n: { $in: [1, 2] } }, { n: 24 }] }).orderBy('n').fields(['n']).get()
    const uid = mb.user.uid // projections always keep id and uid
    assert.deepEqual(data, [{ id: 'd01', uid, n: 1 }, { id: 'd02', uid, n: 2 }, { id: 'd24', uid, n: 24 }])
  })

  test('a cursor from another query is refused with InvalidArgument', async () => {
    const { next } = await todos.orderBy('n').limit(2).get()
    await assert.rejects(todos.orderBy('n', 'desc').limit(2).get({ cursor: next }), (e) => e.code === 'InvalidArgument')
  })

  test('batch is all-or-nothing; a failing op is named by index', async () => {
    await assert.rejects(
      mb.db.batch([{ op: 'insert', obj: { id: 'new-one', n: 100 } }, { op: 'insert', obj: { id: 'd00' } }], { collection: coll() }),
      (e) => e.code === 'Conflict' && e.details.index === 1,
    )
    assert.equal(await todos.doc('new-one').get(), null)
    assert.equal(await todos.count(), 25)
    const res = await mb.db.batch([
      { op: 'update', collection: coll(), id: 'd00', inc: { n: 1000 } },
      { op: 'remove', collection: coll(), id: 'd01' },
      { op: 'get', collection: coll(), id: 'd02' },
    ])
    assert.equal(res[0].n, 1000)
    assert.equal(res[1], null)
    assert.equal(res[2].n, 2)
    assert.equal(await todos.count(), 24)
  })
})

test('isolation: two users never see or touch each other\'s documents', async () => {
  const alice = client()
  const bob = client()
  const ua = await alice.login({ authCode: `dev:${name('alice')}` })
  const ub = await bob.login({ authCode: `dev:${name('bob')}` })
  assert.notEqual(ua.uid, ub.uid)
  const a = alice.db.collection(coll())
  const b = bob.db.collection(coll())
  const doc = await a.add({ title: 'alice only' })
  await a.doc('same-id').set({ who: 'alice' })
  await b.doc('same-id').set({ who: 'bob' })

  assert.equal(await b.doc(doc.id).get(), null)
  await assert.rejects(b.doc(doc.id).update({ set: { title: 'hacked' } }), (e) => e.code === 'NotFound')
  await b.doc(doc.id).remove()
  assert.equal((await a.doc(doc.id).get()).title, 'alice only')
  assert.equal((await a.doc('same-id').get()).who, 'alice')
  assert.equal((await b.doc('same-id').get()).who, 'bob')
  assert.equal(await b.count(), 1)
  assert.equal(await a.count(), 2)
  const { data } = await b.where({ title: 'alice only' }).get()
  assert.deepEqual(data, [])
  assert.deepEqual((await b.get()).data.map((d) => d.who), ['bob'])
})

test('the same dev name logs in as the same user (isNew false the second time)', async () => {
  const who = name('carol')
  const first = await client().login({ authCode: `dev:${who}` })
  const second = await client().login({ authCode: `dev:${who}` })
  assert.equal(second.uid, first.uid)
  assert.equal(second.isNew, false)
})

test('the session is reused across launches (same storage, no new login)', async () => {
  const storage = memoryStorage()
  const rec = recording(fetchTransport())
  const first = client({ storage, transport: rec.transport })
  await first.login({ authCode: `dev:${name('dave')}` })
  await first.db.collection(coll()).add({ title: 't' })
  const second = client({ storage, transport: rec.transport })
  assert.equal(second.isLoggedIn, true)
  assert.equal(await second.db.collection(coll()).count(), 1)
  assert.deepEqual(rec.sessionOps(), ['login'])
})

test('credentials near expiry (stored Expiration edited) are refreshed before the call', async () => {
  const storage = memoryStorage()
  const rec = recording(fetchTransport())
  const mb = client({ storage, transport: rec.transport })
  await mb.login({ authCode: `dev:${name('erin')}` })
  const saved = JSON.parse(storage.get(KEY))
  saved.sts.Expiration = new Date(Date.now() + 30e3).toISOString().replace(/\.\d+Z$/, 'Z')
  storage.set(KEY, JSON.stringify(saved))

  const relaunched = client({ storage, transport: rec.transport })
  assert.equal(await relaunched.db.collection(coll()).count(), 0)
  assert.deepEqual(rec.sessionOps(), ['login', 'refresh'])
  const now = JSON.parse(storage.get(KEY))
  assert.notEqual(now.sts.AccessKeyId, saved.sts.AccessKeyId)
  assert.equal(now.sessionId, saved.sessionId)
  assert.ok(Date.parse(now.sts.Expiration) - Date.now() > 800e3)
  // The refreshed credentials work and are not refreshed again.
  await relaunched.callFunction('whoami', {})
  assert.deepEqual(rec.sessionOps(), ['login', 'refresh'])
})

test('credentials the gateway refuses (InvalidSecurityToken) are refreshed once and the call retried', async () => {
  const storage = memoryStorage()
  const rec = recording(fetchTransport())
  const mb = client({ storage, transport: rec.transport })
  const user = await mb.login({ authCode: `dev:${name('frank')}` })
  const saved = JSON.parse(storage.get(KEY))
  saved.sts.SecurityToken = 'mb1.bm90LWEtdG9rZW4.AAAA' // well-formed prefix, bad MAC
  storage.set(KEY, JSON.stringify(saved))
  const relaunched = client({ storage, transport: rec.transport })
  const who = await relaunched.callFunction('whoami', { hello: 1 })
  assert.deepEqual(who, { uid: user.uid, provider: 'dev', echo: { hello: 1 } })
  assert.deepEqual(rec.sessionOps(), ['login', 'refresh'])
  const calls = rec.log.filter((r) => r.url.includes('/functions/whoami/'))
  assert.equal(calls.length, 2)
})

test('a wrong secret is SignatureNotMatch (403), not retried and not refreshed', async () => {
  const storage = memoryStorage()
  const rec = recording(fetchTransport())
  const mb = client({ storage, transport: rec.transport })
  await mb.login({ authCode: `dev:${name('gina')}` })
  const saved = JSON.parse(storage.get(KEY))
  saved.sts.AccessKeySecret = 'wrong-' + saved.sts.AccessKeySecret
  storage.set(KEY, JSON.stringify(saved))
  const relaunched = client({ storage, transport: rec.transport })
  await assert.rejects(relaunched.callFunction('whoami'), (e) => e.code === 'SignatureNotMatch' && e.status === 403 && !!e.requestId)
  assert.deepEqual(rec.sessionOps(), ['login'])
  assert.equal(rec.log.length, 2)
})

test('a device clock an hour behind: RequestTimeTooSkewed is corrected from the server\'s Date', async () => {
  const mb = client({ now: () => Date.now() - 3600e3 })
  await mb.login({ authCode: `dev:${name('hank')}` })
  const who = await mb.callFunction('whoami', {})
  assert.equal(who.uid, mb.user.uid)
  assert.ok(Math.abs(mb.clockOffset - 3600e3) < 5000, `offset ${mb.clockOffset}`)
})

test('developer functions: callFunction returns data; function errors keep their code; unknown is FunctionNotFound', async () => {
  const mb = client()
  const user = await mb.login({ authCode: `dev:${name('ivy')}` })
  assert.deepEqual(await mb.callFunction('whoami', { a: [1, '二'] }), { uid: user.uid, provider: 'dev', echo: { a: [1, '二'] } })
  await mb.db.collection(coll()).add({ t: 1 })
  assert.equal(await mb.callFunction('countTodos'), 1)
  assert.deepEqual(await mb.invoke('countTodos', {}), { data: 1 })
  await assert.rejects(mb.callFunction('failing', {}), (e) => e.code === 'Conflict' && e.status === 409 && /always conflicts/.test(e.message))
  await assert.rejects(mb.callFunction('noSuchFunction', {}), (e) => e.code === 'FunctionNotFound' && e.status === 404)
})

test('linkPhone stores the number on the user; functions read it as ctx.user.phone', async () => {
  const mb = client()
  await mb.login({ authCode: `dev:${name('pia')}` })
  assert.equal(await mb.callFunction('myPhone'), null)
  assert.equal(await mb.linkPhone({ phone: '13800000042' }), '13800000042')
  assert.equal(await mb.callFunction('myPhone'), '13800000042')
  await assert.rejects(mb.linkPhone({ phone: 'not a number' }), (e) => e.code === 'InvalidArgument' && e.status === 400)
  const other = client()
  await other.login({ authCode: `dev:${name('quin')}` })
  assert.equal(await other.callFunction('myPhone'), null)
})

test('logout: the server revokes the session; calls then fail, old credentials are refused by the gateway', async () => {
  const storage = memoryStorage()
  const mb = client({ storage })
  await mb.login({ authCode: `dev:${name('jack')}` })
  await mb.db.collection(coll()).add({ t: 1 })
  const snapshot = storage.get(KEY)
  const old = JSON.parse(snapshot)
  await mb.logout()
  assert.equal(mb.isLoggedIn, false)
  assert.equal(mb.user, null)
  assert.equal(storage.get(KEY), null)
  await assert.rejects(mb.db.collection(coll()).count(), (e) => e.code === 'Unauthenticated' && e.status === 401)

  // The old (unexpired) credentials, signed by hand: the FC gateway refuses them.
  const path = `/2016-08-15/services/${SERVICE}/functions/db/invocations`
  const event = '{"op":"count","collection":"todo_list"}'
  const headers = await signRequest(old.sts, { method: 'POST', path, body: event }, { dateHeader: 'x-fc-date' })
  const res = await fetch(endpoint + path, { method: 'POST', headers, body: event })
  assert.equal(res.status, 403)
  const body = await res.json()
  assert.equal(body.ErrorCode, 'InvalidSecurityToken')

  // A client still holding the old session: refresh is refused, the session forgotten.
  const s2 = memoryStorage({ [KEY]: snapshot })
  const stale = client({ storage: s2 })
  assert.equal(stale.isLoggedIn, true)
  await assert.rejects(stale.db.collection(coll()).count(), (e) => e.code === 'Unauthenticated' && e.details.gatewayCode === 'InvalidSecurityToken')
  assert.equal(stale.isLoggedIn, false)
  assert.equal(s2.get(KEY), null)
  // And the old sessionId cannot refresh.
  const s3 = client({ storage: memoryStorage({ [KEY]: snapshot }) })
  await assert.rejects(s3.refresh(), (e) => e.code === 'Unauthenticated' && e.status === 401)
})

test('session errors: an unknown provider is InvalidArgument; a bad endpoint is a NetworkError after retries', async () => {
  await assert.rejects(client().login({ authCode: 'x', provider: 'nope' }), (e) => e.code === 'InvalidArgument' && e.status === 400)
  const sleeps = []
  const dead = createClient({
    endpoint: 'http://127.0.0.1:1',
    service: SERVICE,
    storage: memoryStorage(),
    sleep: async (ms) => void sleeps.push(ms),
  })
  await assert.rejects(dead.login({ authCode: 'dev:x' }), (e) => e.code === 'NetworkError' && e.status === 0)
  assert.equal(sleeps.length, 3)
})
