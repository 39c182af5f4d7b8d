// watch() against a real `minibase serve`: two clients of one user, WebSocket and SSE, a
// connection lost while the other writes (resumed: no gap, no duplicate), a session ended
// elsewhere (onError Unauthenticated).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient, fetchTransport, memoryStorage } from '../../src/index.js'
import { SERVICE, startServer } from './server.js'

let server

before(async () => {
  server = await startServer()
})

after(async () => {
  if (server) await server.stop()
})

if (typeof WebSocket === 'undefined') throw new Error('these tests need a global WebSocket: Node >= 22, or Node 20 with --experimental-websocket (scripts/test.mjs adds it)')

/** WebSocket whose connections the test can cut, and refuse while `down`. */
function cuttable() {
  const open = new Set()
  const net = { down: false, opened: 0 }
  class CutWS extends WebSocket {
    constructor(url, protocols) {
      super(net.down ? 'ws://127.0.0.1:9/unreachable' : url, protocols)
      net.opened++
      open.add(this)
      this.addEventListener('close', () => open.delete(this))
    }
  }
  net.WS = CutWS
  net.cut = () => {
    for (const ws of open) ws.close(4000, 'cut by the test')
  }
  return net
}

function client(opts = {}) {
  return createClient({ endpoint: server.endpoint, service: SERVICE, storage: memoryStorage(), transport: fetchTransport(), watchRetryDelay: 20, ...opts })
}

/** The next snapshot matching `pred`, within `ms`. */
function snapshots() {
  const seen = []
  const waiters = []
  const errors = []
  return {
    seen,
    errors,
    onError: (e) => errors.push(e),
    onChange(s) {
      seen.push(s)
      for (const w of waiters.slice()) if (w.pred(s)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(s))
    },
    next(pred, ms = 1000, what = 'a snapshot') {
      const hit = seen.find(pred)
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const w = { pred, resolve }
        waiters.push(w)
        setTimeout(() => {
          if (waiters.indexOf(w) >= 0) reject(new Error(`no ${what} within ${ms} ms; saw ${JSON.stringify(seen.map((x) => x.docs.map((d) => d.title)))}`))
        }, ms)
      })
    },
  }
}

const titles = (s) => s.docs.map((d) => d.title)

for (const realtime of ['websocket', 'sse']) {
  test(`${realtime}: another client's add, update and remove reach the watch within a second`, async () => {
    const name = 'dev:' + realtime + process.pid
    const a = client({ realtime })
    const b = client()
    await a.login({ authCode: name })
    await b.login({ authCode: name })
    const seed = await b.db.collection('todo_list').add({ title: 'seed', done: false, n: 1 })
    const s = snapshots()
    const w = a.db.collection('todo_list').where({ done: false }).orderBy('n', 'asc').watch(s)
    const init = await s.next((x) => x.type === 'init', 3000, 'init')
    assert.deepEqual(titles(init), ['seed'])
    assert.deepEqual(init.docChanges.map((c) => c.dataType), ['init'])

    const added = await b.db.collection('todo_list').add({ title: 'milk', done: false, n: 0 })
    let snap = await s.next((x) => titles(x).join() === 'milk,seed', 1000, 'the add')
    assert.deepEqual(snap.docChanges.map((c) => [c.dataType, c.id]), [['add', added.id]])

    await b.db.collection('todo_list').doc(added.id).update({ set: { n: 5 } })
    snap = await s.next((x) => titles(x).join() === 'seed,milk', 1000, 'the update')
    assert.deepEqual(snap.docChanges.map((c) => [c.dataType, c.id, c.oldIndex, c.newIndex]), [['update', added.id, 0, 1]])

    // Completed: it leaves the query's filter, a remove for this watch.
    await b.db.collection('todo_list').doc(seed.id).update({ set: { done: true } })
    snap = await s.next((x) => titles(x).join() === 'milk', 1000, 'the completion')
    assert.deepEqual(snap.docChanges.map((c) => [c.dataType, c.id]), [['remove', seed.id]])
    assert.equal(snap.docChanges[0].doc.title, 'seed', 'a remove carries the document the watch held')

    await b.db.collection('todo_list').doc(added.id).remove()
    await s.next((x) => x.docs.length === 0, 1000, 'the delete')
    w.close()
    assert.deepEqual(s.errors, [])
  })
}

test('websocket: a connection lost while the other client writes resumes with no gap and no duplicate', async () => {
  const net = cuttable()
  const a = client({ WebSocket: net.WS })
  const b = client()
  await a.login({ authCode: 'dev:resume' + process.pid })
  await b.login({ authCode: 'dev:resume' + process.pid })
  const todos = b.db.collection('todo_list')
  const one = await todos.add({ title: 'one', n: 1 })
  const s = snapshots()
  const w = a.db.collection('todo_list').orderBy('n', 'asc').watch(s)
  await s.next((x) => x.type === 'init', 3000, 'init')
  const before = s.seen.length

  net.down = true
  net.cut()
  await todos.add({ title: 'two', n: 2 })
  await todos.doc(one.id).update({ set: { title: 'uno' } })
  await todos.add({ title: 'three', n: 3 })
  await new Promise((r) => setTimeout(r, 100)) // it tries (and fails) to reconnect meanwhile
  net.down = false
  const snap = await s.next((x) => titles(x).join() === 'uno,two,three', 3000, 'the resumed changes')
  const after = s.seen.slice(before)
  assert.ok(after.every((x) => x.type === 'change'), 'resumed, not a fresh init')
  const changes = after.flatMap((x) => x.docChanges.map((c) => c.dataType + ':' + c.doc.title))
  assert.deepEqual(changes.sort(), ['add:three', 'add:two', 'update:uno'], 'each change once')
  assert.ok(net.opened >= 3)
  assert.equal(snap.docs.length, 3)
  w.close()
})

test('websocket: a session ended elsewhere ends the watch with Unauthenticated', async () => {
  const storage = memoryStorage()
  const a = client({ storage })
  await a.login({ authCode: 'dev:revoked' + process.pid })
  const s = snapshots()
  let failed
  const ended = new Promise((r) => (failed = r))
  const w = a.db.collection('todo_list').watch({ onChange: (x) => s.onChange(x), onError: failed })
  await s.next((x) => x.type === 'init', 3000, 'init')
  const other = client({ storage }) // the same stored session, e.g. a second tab
  await other.logout()
  const t0 = Date.now()
  const err = await Promise.race([ended, new Promise((_, no) => setTimeout(() => no(new Error('no onError within 5 s')), 5000))])
  assert.equal(err.code, 'Unauthenticated')
  assert.ok(Date.now() - t0 < 5000)
  assert.equal(w.closed, true)
  assert.equal(a.isLoggedIn, false, 'the ended session is forgotten, as after a refused call')
})
