// watch(): the realtime protocol of docs/realtime.md as the SDK speaks it, against scripted
// sockets (the integration tests run it against a real `minibase serve`).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient, memoryStorage, MinibaseError, base64Decode, frameText, alipaySocket, wxStyleSocket } from '../../src/index.js'
import { fakeServer, nodeSign, nodeStringToSign } from '../helpers.js'

const tick = () => new Promise((r) => setTimeout(r, 0))
async function until(pred, what, ms = 2000) {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 2))
  }
}

/** A browser-API WebSocket the test scripts: `server` frames in, sent frames recorded. */
function socketFactory() {
  const sockets = []
  class FakeWS {
    constructor(url, protocols) {
      this.url = url
      this.protocols = protocols
      this.sent = []
      this.readyState = 0
      sockets.push(this)
    }
    open() {
      this.readyState = 1
      this.onopen({})
    }
    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open')
      this.sent.push(JSON.parse(text))
    }
    push(frame) {
      this.onmessage({ data: JSON.stringify(frame) })
    }
    drop(code = 1006) {
      this.readyState = 3
      this.onclose({ code, reason: '' })
    }
    close(code, reason) {
      this.closedWith = [code, reason]
      this.readyState = 3
    }
  }
  return { FakeWS, sockets }
}

async function loggedIn(extra = {}) {
  const server = fakeServer()
  const { FakeWS, sockets } = socketFactory()
  const mb = createClient({
    endpoint: 'https://api.example.com',
    service: 'svc',
    platform: 'web',
    storage: memoryStorage(),
    transport: server.transport(),
    WebSocket: FakeWS,
    watchRetryDelay: 1,
    ...extra,
  })
  await mb.login({ authCode: 'dev:alice' })
  return { mb, server, sockets }
}

const doc = (id, extra = {}) => ({ id, uid: 'u_devalice', _created: '2026-01-01T00:00:0' + id.slice(-1) + '.000Z', _version: 1, title: id, ...extra })

test('watch: one socket, signed auth, subscribe; init then add / update / remove applied by index', async () => {
  const { mb, server, sockets } = await loggedIn()
  const snaps = []
  const w = mb.db.collection('todo').where({ done: false }).orderBy('title', 'asc').limit(10).watch({ onChange: (s) => snaps.push(s) })
  await until(() => sockets.length === 1, 'the socket')
  const ws = sockets[0]
  assert.equal(ws.url, 'wss://api.example.com/realtime')
  ws.open()
  const [auth, sub] = ws.sent
  assert.equal(auth.type, 'auth')
  // Signed for GET /realtime with an empty body, by the session's credentials (checked with node:crypto).
  const keyId = /^FC (.+):/.exec(auth.headers.authorization)[1]
  const secret = server.creds.get(keyId).secret
  assert.equal(auth.headers.authorization, `FC ${keyId}:` + nodeSign(secret, nodeStringToSign('GET', '/realtime', auth.headers)))
  assert.equal(auth.headers['x-fc-security-token'], server.creds.get(keyId).token)
  assert.deepEqual(sub, { type: 'subscribe', id: 'w1', collection: 'todo', where: { done: false }, orderBy: [['title', 'asc']], limit: 10 })

  ws.push({ type: 'changes', id: 'w1', init: true, token: 't1', docChanges: [
    { dataType: 'init', id: 'a1', uid: 'u_devalice', doc: doc('a1'), oldIndex: -1, newIndex: 0 },
    { dataType: 'init', id: 'b2', uid: 'u_devalice', doc: doc('b2'), oldIndex: -1, newIndex: 1 },
  ] })
  assert.equal(snaps.length, 1)
  assert.equal(snaps[0].type, 'init')
  assert.deepEqual(snaps[0].docs.map((d) => d.id), ['a1', 'b2'])
  assert.deepEqual(snaps[0].docChanges.map((c) => c.dataType), ['init', 'init'])

  ws.push({ type: 'changes', id: 'w1', init: false, token: 't2', docChanges: [
    { dataType: 'add', id: 'a0', uid: 'u_devalice', doc: doc('a0'), oldIndex: -1, newIndex: 0 },
    { dataType: 'update', id: 'b2', uid: 'u_devalice', doc: doc('b2', { title: '0', _version: 2 }), oldIndex: 2, newIndex: 0 },
    { dataType: 'remove', id: 'a1', uid: 'u_devalice', doc: null, oldIndex: 2, newIndex: -1 },
  ] })
  assert.equal(snaps.length, 2)
  assert.equal(snaps[1].type, 'change')
  assert.deepEqual(snaps[1].docs.map((d) => d.id), ['b2', 'a0'])
  assert.equal(snaps[1].docs[0].title, '0')
  const removed = snaps[1].docChanges[2]
  assert.equal(removed.dataType, 'remove')
  assert.deepEqual(removed.doc, doc('a1'), 'a remove carries the document the watch held')
  // A resume that found nothing new: no snapshot.
  ws.push({ type: 'changes', id: 'w1', init: false, token: 't3', docChanges: [] })
  assert.equal(snaps.length, 2)

  w.close()
  assert.deepEqual(ws.closedWith, [1000, 'no more watches'], 'the last watch closed: the socket closes')
  ws.push({ type: 'changes', id: 'w1', init: false, token: 't4', docChanges: [{ dataType: 'add', id: 'z', uid: 'u', doc: doc('z'), oldIndex: -1, newIndex: 0 }] })
  assert.equal(snaps.length, 2, 'nothing after close()')
})

test('watch: a dropped socket reconnects and resumes from the last token, with the docs held', async () => {
  const { mb, sockets } = await loggedIn()
  const snaps = []
  const w = mb.db.collection('todo').watch({ onChange: (s) => snaps.push(s) })
  await until(() => sockets.length === 1, 'the socket')
  sockets[0].open()
  sockets[0].push({ type: 'changes', id: 'w1', init: true, token: 't1', docChanges: [{ dataType: 'init', id: 'a1', uid: 'u_devalice', doc: doc('a1'), oldIndex: -1, newIndex: 0 }] })
  sockets[0].push({ type: 'heartbeat', token: 't2' })
  sockets[0].drop()
  await until(() => sockets.length === 2, 'a new socket')
  sockets[1].open()
  const sub = sockets[1].sent[1]
  assert.deepEqual(sub.resume, { token: 't2', docs: [['u_devalice', 'a1', doc('a1')._created, 1]] })
  sockets[1].push({ type: 'changes', id: 'w1', init: false, token: 't3', docChanges: [{ dataType: 'add', id: 'b2', uid: 'u_devalice', doc: doc('b2'), oldIndex: -1, newIndex: 1 }] })
  assert.deepEqual(snaps.map((s) => s.docs.map((d) => d.id)), [['a1'], ['a1', 'b2']])
  // A resume the server could not continue: a fresh init replaces everything.
  sockets[1].drop()
  await until(() => sockets.length === 3, 'a third socket')
  sockets[2].open()
  sockets[2].push({ type: 'changes', id: 'w1', init: true, token: 't9', docChanges: [{ dataType: 'init', id: 'c3', uid: 'u_devalice', doc: doc('c3'), oldIndex: -1, newIndex: 0 }] })
  assert.equal(snaps[2].type, 'init')
  assert.deepEqual(snaps[2].docs.map((d) => d.id), ['c3'])
  w.close()
})

test('watch: several watches share the socket; a watch error ends only that watch', async () => {
  const { mb, sockets } = await loggedIn()
  const errors = []
  const snaps = []
  const a = mb.db.collection('todo').watch({ onChange: (s) => snaps.push(['a', s]), onError: (e) => errors.push(['a', e]) })
  const b = mb.db.collection('todo').where({ x: 1 }).watch({ onChange: (s) => snaps.push(['b', s]), onError: (e) => errors.push(['b', e]) })
  await until(() => sockets.length === 1, 'the socket')
  sockets[0].open()
  assert.deepEqual(sockets[0].sent.map((m) => m.type + ':' + (m.id || '')), ['auth:', 'subscribe:w1', 'subscribe:w2'])
  sockets[0].push({ type: 'error', id: 'w2', error: { code: 'InvalidArgument', message: 'bad where', requestId: 'r1' } })
  assert.equal(errors.length, 1)
  assert.equal(errors[0][0], 'b')
  assert.ok(errors[0][1] instanceof MinibaseError)
  assert.equal(errors[0][1].code, 'InvalidArgument')
  assert.equal(b.closed, true)
  const c = mb.db.collection('other').watch({ onChange: () => undefined })
  assert.deepEqual(sockets[0].sent[3], { type: 'subscribe', id: 'w3', collection: 'other' }, 'a watch added to an open socket subscribes at once')
  c.close()
  assert.deepEqual(sockets[0].sent[4], { type: 'unsubscribe', id: 'w3' })
  assert.equal(a.closed, false)
  assert.equal(sockets.length, 1)
  a.close()
})

test('watch: the session ended (4401 Unauthenticated) ends every watch with that code and forgets the session', async () => {
  const { mb, server, sockets } = await loggedIn()
  const errors = []
  mb.db.collection('todo').watch({ onChange: () => undefined, onError: (e) => errors.push(e) })
  await until(() => sockets.length === 1, 'the socket')
  sockets[0].open()
  server.sessions.get(mb._session.sessionId).revoked = true
  sockets[0].push({ type: 'error', error: { code: 'Unauthenticated', message: 'the session was revoked: log in again' } })
  sockets[0].drop(4401)
  await until(() => errors.length === 1, 'onError')
  assert.equal(errors[0].code, 'Unauthenticated')
  assert.equal(mb.isLoggedIn, false)
  await tick()
  assert.equal(sockets.length, 1, 'no reconnect')
})

test('watch: expired credentials (the session lives) are refreshed and the watches resume', async () => {
  const { mb, sockets } = await loggedIn()
  const errors = []
  const w = mb.db.collection('todo').watch({ onChange: () => undefined, onError: (e) => errors.push(e) })
  await until(() => sockets.length === 1, 'the socket')
  sockets[0].open()
  const before = mb._session.sts.AccessKeyId
  sockets[0].push({ type: 'error', error: { code: 'Unauthenticated', message: 'the credentials have expired' } })
  await until(() => sockets.length === 2, 'a new socket')
  assert.notEqual(mb._session.sts.AccessKeyId, before, 'refreshed')
  sockets[1].open()
  assert.equal(/^FC (.+):/.exec(sockets[1].sent[0].headers.authorization)[1], mb._session.sts.AccessKeyId)
  assert.deepEqual(errors, [])
  w.close()
})

test('watch: before `expires` fresh credentials go as auth on the same socket', async () => {
  const { mb, server, sockets } = await loggedIn({ refreshMargin: 60 })
  const w = mb.db.collection('todo').watch({ onChange: () => undefined })
  await until(() => sockets.length === 1, 'the socket')
  sockets[0].open()
  const first = sockets[0].sent[0].headers.authorization
  // Credentials that expire 5.01 s from now: renewed 5 s before (the smallest margin).
  sockets[0].push({ type: 'authed', uid: 'u_devalice', expires: (mb.serverNow() + 5010) / 1000 })
  mb._session.sts.Expiration = new Date(mb.serverNow() + 5010).toISOString()
  await until(() => sockets[0].sent.length === 3, 'a second auth')
  const again = sockets[0].sent[2]
  assert.equal(again.type, 'auth')
  assert.notEqual(again.headers.authorization, first)
  assert.ok(server.requests.some((r) => r.body && r.body.includes('"refresh"')), 'refreshed through the session function')
  assert.equal(sockets.length, 1, 'the socket stayed')
  w.close()
})

test('watch: realtimeAuth session sends the session id; realtimeEndpoint points elsewhere', async () => {
  const { mb, sockets } = await loggedIn({ realtimeAuth: 'session', realtimeEndpoint: 'http://rt.example.com:8000/' })
  const w = mb.db.collection('todo').watch({ onChange: () => undefined })
  await until(() => sockets.length === 1, 'the socket')
  assert.equal(sockets[0].url, 'ws://rt.example.com:8000/realtime')
  sockets[0].open()
  assert.deepEqual(sockets[0].sent[0], { type: 'auth', sessionId: mb._session.sessionId })
  w.close()
})

test('watch: refuses what a watch cannot do, and needs a login', async () => {
  const { mb } = await loggedIn()
  const todos = mb.db.collection('todo')
  assert.throws(() => todos.watch({}), /onChange/)
  assert.throws(() => todos.fields(['a']).watch({ onChange() {} }), /fields/)
  assert.throws(() => todos.startAfter('c').watch({ onChange() {} }), /startAfter/)
  await mb.logout()
  const errors = []
  todos.watch({ onChange() {}, onError: (e) => errors.push(e) })
  await until(() => errors.length === 1, 'onError')
  assert.equal(errors[0].code, 'Unauthenticated')
})

// ------------------------------------------------------------------ host socket adapters

function wxHost() {
  const tasks = []
  return {
    tasks,
    connectSocket(opts) {
      const l = { open: [], message: [], error: [], close: [] }
      const task = {
        opts,
        l,
        sent: [],
        onOpen: (f) => l.open.push(f),
        onMessage: (f) => l.message.push(f),
        onError: (f) => l.error.push(f),
        onClose: (f) => l.close.push(f),
        send: (o) => task.sent.push(o),
        close: (o) => (task.closed = o),
        fire: (kind, v) => l[kind].forEach((f) => f(v)),
      }
      tasks.push(task)
      return task
    },
  }
}

test('wx / tt SocketTask: header (singular), text frames, an error then one close', () => {
  const host = wxHost()
  const seen = []
  const s = wxStyleSocket(host, 'wx.connectSocket')({ url: 'wss://x/realtime', headers: { a: '1' } }, {
    onOpen: () => seen.push('open'),
    onMessage: (t) => seen.push('msg:' + t),
    onError: (m) => seen.push('error:' + m),
    onClose: (c) => seen.push('close:' + c.code),
  })
  const t = host.tasks[0]
  assert.equal(t.opts.url, 'wss://x/realtime')
  assert.deepEqual(t.opts.header, { a: '1' })
  assert.equal(t.opts.headers, undefined)
  t.fire('open', { header: {} })
  t.fire('message', { data: '{"type":"pong"}' })
  t.fire('message', { data: new TextEncoder().encode('{"b":1}').buffer })
  s.send('hi')
  assert.deepEqual(t.sent, [{ data: 'hi' }])
  t.fire('error', { errMsg: 'boom' })
  t.fire('close', { code: 1006, reason: '' })
  assert.deepEqual(seen, ['open', 'msg:{"type":"pong"}', 'msg:{"b":1}', 'error:boom', 'close:1006'])
})

test('alipay: SocketTask with multiple: true, or the app-wide my.onSocket* socket; every message shape', () => {
  const shapes = [
    { data: 'plain' },
    { data: 'plain', isBuffer: false },
    { data: { data: 'plain', isBuffer: false } },
    { data: Buffer.from('plain').toString('base64'), isBuffer: true },
    { data: { data: Buffer.from('plain').toString('base64'), isBuffer: true } },
  ]
  for (const shape of shapes) assert.equal(frameText(shape), 'plain', JSON.stringify(shape))
  assert.equal(new TextDecoder().decode(base64Decode(Buffer.from('héllo ✓').toString('base64'))), 'héllo ✓')

  // A base library with SocketTask.
  const host = wxHost()
  const globals = new Set()
  for (const k of ['Open', 'Message', 'Error', 'Close']) {
    host['onSocket' + k] = (f) => globals.add(f)
    host['offSocket' + k] = (f) => globals.delete(f)
  }
  const got = []
  alipaySocket(host)({ url: 'wss://x/realtime' }, { onMessage: (t) => got.push(t) })
  assert.equal(host.tasks[0].opts.multiple, true)
  host.tasks[0].fire('message', { data: { data: 'nested', isBuffer: false } })
  assert.deepEqual(got, ['nested'])
  assert.equal(globals.size, 0, 'the global listeners are not kept with a SocketTask')

  // An old one: connectSocket returns nothing; the global API carries the one socket.
  const listeners = { Open: [], Message: [], Error: [], Close: [] }
  const old = { sent: [], closed: 0 }
  for (const k of Object.keys(listeners)) {
    old['onSocket' + k] = (f) => listeners[k].push(f)
    old['offSocket' + k] = (f) => (listeners[k] = listeners[k].filter((x) => x !== f))
  }
  old.connectSocket = (o) => {
    old.opts = o
    listeners.Open.forEach((f) => f({})) // may come before connectSocket returns
    return undefined
  }
  old.sendSocketMessage = (o) => old.sent.push(o)
  old.closeSocket = () => old.closed++
  const seen = []
  const s = alipaySocket(old)({ url: 'wss://x/realtime', headers: { h: '1' } }, {
    onOpen: () => seen.push('open'),
    onMessage: (t) => seen.push(t),
    onClose: (c) => seen.push('close:' + c.code),
  })
  assert.deepEqual(old.opts.header, { h: '1' })
  listeners.Message.forEach((f) => f({ data: 'hello', isBuffer: false }))
  s.send('out')
  assert.deepEqual(old.sent, [{ data: 'out' }])
  s.close()
  assert.equal(old.closed, 1)
  assert.deepEqual(seen, ['open', 'hello', 'close:1000'])
  for (const k of Object.keys(listeners)) assert.equal(listeners[k].length, 0, 'my.offSocket' + k + ' removed the listener')
})

test('sse: one POST stream per watch, Bearer or signed, frames parsed across chunk boundaries', async () => {
  const server = fakeServer()
  const calls = []
  const enc = new TextEncoder()
  let push = null
  const fetchImpl = async (url, init) => {
    calls.push({ url, init })
    const chunks = []
    let wake = null
    push = (text) => {
      chunks.push(text === null ? null : enc.encode(text))
      if (wake) wake()
    }
    return {
      status: 200,
      body: {
        getReader: () => ({
          read: async () => {
            while (!chunks.length) await new Promise((r) => (wake = r))
            const c = chunks.shift()
            return c === null ? { done: true } : { done: false, value: c }
          },
        }),
      },
    }
  }
  const mb = createClient({ endpoint: 'https://api.example.com', service: 'svc', platform: 'web', storage: memoryStorage(), transport: server.transport(), realtime: 'sse', fetch: fetchImpl, watchRetryDelay: 1 })
  await mb.login({ authCode: 'dev:alice' })
  const snaps = []
  const w = mb.db.collection('todo').watch({ onChange: (s) => snaps.push(s) })
  await until(() => calls.length === 1, 'the request')
  assert.equal(calls[0].url, 'https://api.example.com/realtime/sse')
  assert.equal(calls[0].init.method, 'POST')
  const h = calls[0].init.headers
  const keyId = /^FC (.+):/.exec(h.authorization)[1]
  assert.equal(h.authorization, `FC ${keyId}:` + nodeSign(server.creds.get(keyId).secret, nodeStringToSign('POST', '/realtime/sse', h)))
  const frame = JSON.stringify({ type: 'changes', id: 'w1', init: true, token: 't1', docChanges: [{ dataType: 'init', id: 'a1', uid: 'u', doc: doc('a1'), oldIndex: -1, newIndex: 0 }] })
  push('data: ' + frame.slice(0, 20))
  push(frame.slice(20) + '\n\n')
  await until(() => snaps.length === 1, 'the init')
  push(null) // the stream ended: reopened with resume
  await until(() => calls.length === 2, 'a new stream')
  assert.equal(JSON.parse(calls[1].init.body).resume.token, 't1')
  w.close()
})
