// Alipay's four ways of reporting an HTTP status ≥ 400 (see myOverFetch), each against a
// real `minibase serve`: a refused login, a session ended on the server (with and without
// the relogin option), and a clock 30 minutes off, before and after login.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { alipayTransport, createClient, memoryStorage } from '../../src/index.js'
import { ALIPAY_SHAPES, myOverFetch, SERVICE, startServer } from './server.js'

let server
before(async () => {
  server = await startServer()
})
after(async () => {
  if (server) await server.stop()
})

let uniq = 0
const name = (p) => `${p}${process.pid}x${++uniq}`

async function endSession(sessionId) {
  const r = await fetch(`${server.endpoint}/2016-08-15/proxy/${SERVICE}/session/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ op: 'logout', sessionId }),
  })
  assert.equal(r.status, 200)
}

for (const shape of ALIPAY_SHAPES) {
  describe(`my.request shape ${shape}`, () => {
    function client(extra = {}) {
      const my = myOverFetch(shape)
      const mb = createClient({
        endpoint: server.endpoint,
        service: SERVICE,
        platform: 'alipay',
        transport: alipayTransport(my),
        storage: memoryStorage(),
        sleep: async () => {},
        ...extra,
      })
      const ops = () => my.calls.filter((c) => c.url.includes('/proxy/')).map((c) => JSON.parse(c.data).op || 'login')
      return { mb, my, ops }
    }

    test('a refused login: the server\'s code and message, or (error 19 alone) an HttpError', async () => {
      const { mb } = client()
      await assert.rejects(mb.login({ authCode: 'dev:' }), (e) =>
        shape === 'c' ? e.code === 'HttpError' && e.status === 0 : e.code === 'Unauthenticated' && e.status === 401 && /dev:<name>/.test(e.message),
      )
      // What the login screen needs is readable in every shape: it is a 200 answer.
      assert.deepEqual(await mb.providers(), { providers: ['dev'], unavailable: {} })
    })

    test('a session ended on the server: with relogin, a new login and the call goes through', async () => {
      const user = name('re')
      let asked = 0
      const { mb, ops } = client({ relogin: () => (++asked, { authCode: 'dev:' + user }) })
      await mb.login({ authCode: 'dev:' + user })
      const first = mb._session.sessionId
      const uid = mb.user.uid
      await endSession(first)
      const out = await mb.callFunction('whoami', { n: 1 })
      assert.equal(out.uid, uid)
      assert.equal(asked, 1)
      assert.notEqual(mb._session.sessionId, first)
      assert.deepEqual(ops(), ['login', 'refresh', 'login'])
      // Concurrent calls on an ended session share one new login.
      await endSession(mb._session.sessionId)
      const all = await Promise.all([1, 2, 3].map((n) => mb.callFunction('whoami', { n })))
      assert.deepEqual(all.map((a) => a.echo.n), [1, 2, 3])
      assert.equal(asked, 2)
    })

    test('a session ended on the server: without relogin, forgotten (not stuck across launches)', async () => {
      const { mb } = client()
      await mb.login({ authCode: 'dev:' + name('gone') })
      await endSession(mb._session.sessionId)
      await assert.rejects(mb.callFunction('whoami'), (e) => e.code === (shape === 'c' ? 'HttpError' : 'Unauthenticated'))
      assert.equal(mb.isLoggedIn, false)
      assert.equal(mb.storage.get(mb.storageKey), null)
    })

    for (const minutes of [30, -30]) {
      test(`a phone clock ${minutes} min off: learnt at login, and again when it drifts after`, async () => {
        const { mb, ops } = client({ now: () => Date.now() + minutes * 60000 })
        await mb.login({ authCode: 'dev:' + name('clock') })
        assert.ok(Math.abs(mb.clockOffset + minutes * 60000) < 5000, String(mb.clockOffset))
        assert.equal((await mb.callFunction('whoami')).provider, 'dev')
        // The phone's clock moves by another 30 min after login. Ahead, the credentials
        // look expired: a refresh, whose answer's Date fixes the clock. Behind, the signed
        // call is refused as skewed, and the server's time comes from the refusal's Date,
        // its body (no headers), or (error 19 alone) the refresh that follows.
        mb.clockOffset += minutes * 60000
        assert.equal((await mb.callFunction('whoami')).provider, 'dev')
        assert.ok(Math.abs(mb.clockOffset + minutes * 60000) < 5000, String(mb.clockOffset))
        assert.deepEqual(ops(), shape === 'c' || minutes > 0 ? ['login', 'refresh'] : ['login'])
      })
    }
  })
}
