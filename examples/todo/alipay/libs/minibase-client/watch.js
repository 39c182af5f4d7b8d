'use strict'
// Generated from src/watch.js by scripts/build.mjs: do not edit.
// Live queries: `query.watch({onChange, onError})` keeps a query's result current over the
// server's realtime protocol (docs/realtime.md). One WebSocket per client carries all its
// watches (mini-programs have few sockets: Alipay's oldest base libraries one, WeChat five);
// on the web a watch may instead read its own Server-Sent Events stream (`realtime: 'sse'`).
// A dropped connection is reopened with backoff and every watch resumed from the last token
// it saw (no gap, no duplicate); credentials are renewed on the open socket.
const { MinibaseError } = require('./errors.js')
const { backoffDelay } = require('./retry.js')
const { signRequest } = require('./signer.js')
const { utf8Decode } = require('./crypto.js')

// Reconnects wait `watchRetryDelay` (500 ms), doubling up to this, each randomised to
// 50–100 %; the count starts again once a frame arrives on the new connection.
const MAX_DELAY = 15000
// The server sends a heartbeat every 25 s on a quiet connection: 60 s of silence is a dead one.
const SILENCE = 60000
// Connection-level errors after which reconnecting can help.
const TRANSIENT = { Unavailable: 1, RateLimited: 1, Internal: 1, NetworkError: 1, DeadlineExceeded: 1 }

/** A timer that does not keep Node running by itself (the socket does while it is open). */
function background(fn, ms) {
  const t = setTimeout(fn, ms)
  if (t && typeof t.unref === 'function') t.unref()
  return t
}

function errorFrom(e) {
  const x = e || {}
  return new MinibaseError(x.code || 'Internal', x.message || 'the watch ended', undefined, x.requestId || null, x)
}

function report(fn, err) {
  if (!fn) return
  try {
    fn(err)
  } catch (e) {
    // the app's handler threw: nothing more to do
  }
}

/** The handle `watch()` returns: `close()`, and the last snapshot's `docs`. */
class Watcher {
  constructor(realtime, event, handlers) {
    this._rt = realtime
    this._event = event
    this._onChange = handlers.onChange
    this._onError = handlers.onError || null
    this.id = null // the connection's name for it
    this.docs = [] // the current result, in the query's order
    this.token = null // the last token seen: resumes from there
    this._inited = false
    this._closed = false
  }

  get closed() {
    return this._closed
  }

  /** Stop watching; no callback is called after this. */
  close() {
    if (this._closed) return
    this._closed = true
    this._rt.remove(this)
  }

  /** The subscribe message: the query, and where to resume from. */
  subscribe() {
    const m = Object.assign({ type: 'subscribe', id: this.id }, this._event)
    if (this._inited && this.token) {
      m.resume = {
        token: this.token,
        docs: this.docs.map((d) => [d.uid, d.id, d._created, d._version]),
      }
    }
    return m
  }

  /** A `changes` frame: apply it and tell the app. */
  changes(frame) {
    if (this._closed) return
    if (frame.token) this.token = frame.token
    const list = Array.isArray(frame.docChanges) ? frame.docChanges : []
    const init = !!frame.init
    if (!init && list.length === 0) return
    const docs = init ? [] : this.docs.slice()
    const changes = []
    for (const c of list) {
      let doc = c.doc
      if (c.oldIndex >= 0) {
        const old = docs.splice(c.oldIndex, 1)[0]
        if (doc == null) doc = old // a remove: the document may no longer be readable
      }
      if (c.newIndex >= 0 && doc != null) docs.splice(c.newIndex, 0, doc)
      changes.push({ dataType: c.dataType, id: c.id, uid: c.uid, doc: doc == null ? null : doc, oldIndex: c.oldIndex, newIndex: c.newIndex })
    }
    this.docs = docs
    this._inited = true
    const snapshot = { type: init ? 'init' : 'change', docs: docs.slice(), docChanges: changes }
    try {
      this._onChange(snapshot)
    } catch (e) {
      report(this._onError, e) // the app's handler threw: the stream goes on
    }
  }

  /** The watch has ended on the server's side (or cannot go on): tell the app, once. */
  fail(err) {
    if (this._closed) return
    this._closed = true
    this._rt.remove(this, true)
    report(this._onError, err)
  }

  /** Heartbeats carry a token too (the resume point of a quiet watch). */
  heartbeat(token) {
    if (token && this._inited) this.token = token
  }
}

/** All the watches of one client over one WebSocket (docs/realtime.md, `GET /realtime`). */
class SocketRealtime {
  constructor(client) {
    this._client = client
    this._watches = new Map() // id → Watcher
    this._next = 1
    this._socket = null
    this._open = false
    this._attempt = 0
    this._retryTimer = null
    this._silenceTimer = null
    this._authTimer = null
    this._generation = 0 // bumps with every new socket: late events of old ones are ignored
  }

  add(watcher) {
    watcher.id = 'w' + this._next++
    this._watches.set(watcher.id, watcher)
    if (this._open) this._send(watcher.subscribe())
    else if (!this._socket && !this._retryTimer) this._connect()
  }

  /** `ended`: the server ended it already (nothing to unsubscribe). */
  remove(watcher, ended) {
    if (!this._watches.has(watcher.id)) return
    this._watches.delete(watcher.id)
    if (this._watches.size === 0) this._stop()
    else if (this._open && !ended) this._send({ type: 'unsubscribe', id: watcher.id })
  }

  _send(msg) {
    if (this._socket) this._socket.send(JSON.stringify(msg))
  }

  _stop() {
    this._generation++
    for (const t of ['_retryTimer', '_silenceTimer', '_authTimer']) {
      if (this[t]) clearTimeout(this[t])
      this[t] = null
    }
    const s = this._socket
    this._socket = null
    this._open = false
    if (s) s.close(1000, 'no more watches')
  }

  async _connect() {
    this._retryTimer = null
    const gen = ++this._generation
    let auth
    let opener
    try {
      opener = this._client._socketOpener()
      if (!opener) throw new MinibaseError('InvalidArgument', 'no WebSocket here: pass createClient({ WebSocket }) (Node < 22), or realtime: "sse" on the web', 400)
      auth = await this._client._realtimeAuth()
    } catch (e) {
      if (gen === this._generation) this._trouble(e)
      return
    }
    if (gen !== this._generation || this._watches.size === 0) return
    const url = this._client._realtimeUrl('ws')
    let socket
    try {
      socket = opener(
        { url, headers: {} },
        {
          onOpen: () => {
            if (gen !== this._generation) return
            this._open = true
            this._listen(gen)
            this._send(auth)
            for (const w of this._watches.values()) this._send(w.subscribe())
          },
          onMessage: (text) => {
            if (gen === this._generation) this._frame(text, gen)
          },
          onError: () => undefined, // the close that follows says what to do
          onClose: () => {
            if (gen !== this._generation) return
            this._lost()
          },
        },
      )
    } catch (e) {
      this._trouble(e)
      return
    }
    if (gen !== this._generation) {
      socket.close(1000, '')
      return
    }
    this._socket = socket
  }

  /** (Re)arms the silence watchdog: no frame for 60 s means the connection is dead. */
  _listen(gen) {
    if (this._silenceTimer) clearTimeout(this._silenceTimer)
    this._silenceTimer = background(() => {
      if (gen === this._generation) this._drop()
    }, SILENCE)
  }

  /** Drop the socket and reconnect (with backoff). */
  _drop() {
    const s = this._socket
    this._generation++
    this._socket = null
    this._open = false
    if (s) s.close(1000, '')
    this._lost()
  }

  _lost() {
    this._socket = null
    this._open = false
    if (this._silenceTimer) clearTimeout(this._silenceTimer)
    if (this._authTimer) clearTimeout(this._authTimer)
    this._silenceTimer = null
    this._authTimer = null
    if (this._watches.size === 0 || this._retryTimer) return
    const delay = backoffDelay(this._attempt, { baseDelay: this._client.watchRetryDelay, maxDelay: MAX_DELAY, random: this._client._retry.random })
    this._attempt++
    this._retryTimer = setTimeout(() => this._connect(), delay)
  }

  /** A failure to connect: retried when it may pass, else every watch ends with it. */
  _trouble(err) {
    if (err && TRANSIENT[err.code]) return this._lost()
    this._failAll(err)
  }

  _failAll(err) {
    const all = Array.from(this._watches.values())
    this._stop()
    this._watches.clear()
    for (const w of all) w.fail(err)
  }

  _frame(text, gen) {
    let f
    try {
      f = JSON.parse(text)
    } catch (e) {
      return
    }
    if (!f || typeof f !== 'object') return
    this._listen(gen)
    const w = f.id !== undefined ? this._watches.get(f.id) : null
    if (f.type === 'changes') {
      this._attempt = 0
      if (w) w.changes(f)
    } else if (f.type === 'heartbeat') {
      for (const x of this._watches.values()) x.heartbeat(f.token)
    } else if (f.type === 'authed') {
      this._attempt = 0
      this._renewAt(f.expires, gen)
    } else if (f.type === 'error') {
      const err = errorFrom(f.error)
      if (f.id !== undefined) {
        if (w) w.fail(err)
        return
      }
      this._connectionError(err, gen)
    }
  }

  /** An error for the whole connection (the server closes it next). */
  _connectionError(err, gen) {
    this._generation++
    const s = this._socket
    this._socket = null
    this._open = false
    if (s) s.close(1000, '')
    if (err.code === 'Unauthenticated') {
      // Expired invoke credentials are renewed and the watches resumed; an ended session
      // (logged out, revoked, expired, user disabled) ends them.
      this._client._realtimeRenew(err).then(
        () => {
          if (this._watches.size) this._lost()
        },
        (e) => this._failAll(e && e.code ? e : err),
      )
      return
    }
    if (TRANSIENT[err.code]) return this._lost()
    this._failAll(err)
  }

  /** Signed credentials: send fresh ones before `expires` (server epoch seconds). */
  _renewAt(expires, gen) {
    if (this._authTimer) clearTimeout(this._authTimer)
    this._authTimer = null
    if (typeof expires !== 'number') return
    const margin = Math.max(5000, Math.min(this._client.refreshMargin * 1000, 60000))
    const wait = Math.max(0, expires * 1000 - this._client.serverNow() - margin)
    this._authTimer = background(() => {
      this._authTimer = null
      if (gen !== this._generation) return
      this._client._realtimeAuth(expires * 1000).then(
        (auth) => {
          if (gen === this._generation) this._send(auth)
        },
        (e) => {
          if (gen !== this._generation) return
          if (e && e.code === 'Unauthenticated') return this._failAll(e)
          this._drop() // a refresh that did not go through: reconnect and resume
        },
      )
    }, wait)
  }
}

/** One SSE stream per watch (`POST /realtime/sse`), read with fetch and a stream reader. */
class SseRealtime {
  constructor(client, fetchImpl) {
    this._client = client
    this._fetch = fetchImpl
    this._streams = new Map() // Watcher → {abort, timer}
    this._next = 1
  }

  add(watcher) {
    watcher.id = 'w' + this._next++
    const st = { attempt: 0, ctl: null, timer: null, gen: 0 }
    this._streams.set(watcher, st)
    this._open(watcher, st)
  }

  remove(watcher) {
    const st = this._streams.get(watcher)
    if (!st) return
    this._streams.delete(watcher)
    st.gen++
    if (st.timer) clearTimeout(st.timer)
    if (st.ctl) st.ctl.abort()
  }

  _retry(watcher, st) {
    if (!this._streams.has(watcher) || st.timer) return
    const delay = backoffDelay(st.attempt, { baseDelay: this._client.watchRetryDelay, maxDelay: MAX_DELAY, random: this._client._retry.random })
    st.attempt++
    st.timer = setTimeout(() => {
      st.timer = null
      this._open(watcher, st)
    }, delay)
  }

  async _open(watcher, st) {
    const gen = ++st.gen
    const ctl = typeof AbortController !== 'undefined' ? new AbortController() : null
    st.ctl = ctl
    let res
    try {
      const body = JSON.stringify(watcher.subscribe())
      const headers = await this._client._realtimeHeaders(body)
      if (gen !== st.gen) return
      res = await this._fetch(this._client._realtimeUrl('http') + '/sse', { method: 'POST', headers, body, signal: ctl ? ctl.signal : undefined })
    } catch (e) {
      if (gen !== st.gen) return
      if (e && e.code && !TRANSIENT[e.code]) return watcher.fail(e)
      return this._retry(watcher, st)
    }
    if (gen !== st.gen) return
    if (res.status !== 200) {
      let err
      try {
        const body = JSON.parse(await res.text())
        err = errorFrom(body && body.error)
      } catch (e) {
        err = new MinibaseError('Internal', 'HTTP ' + res.status, res.status)
      }
      return this._ended(watcher, st, err, gen)
    }
    let buffer = ''
    let ended = null
    try {
      const reader = res.body.getReader()
      for (;;) {
        const r = await reader.read()
        if (gen !== st.gen) return
        if (r.done) break
        buffer += utf8Decode(r.value)
        let cut
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          const data = event
            .split('\n')
            .filter((l) => l.indexOf('data:') === 0)
            .map((l) => l.slice(5).replace(/^ /, ''))
            .join('\n')
          if (!data) continue
          let f
          try {
            f = JSON.parse(data)
          } catch (e) {
            continue
          }
          if (f.type === 'changes') {
            st.attempt = 0
            watcher.changes(f)
          } else if (f.type === 'heartbeat') watcher.heartbeat(f.token)
          else if (f.type === 'error') {
            ended = errorFrom(f.error)
            break
          }
        }
        if (ended) break
      }
    } catch (e) {
      if (gen !== st.gen) return
    }
    if (gen !== st.gen) return
    if (ctl) ctl.abort()
    if (ended) return this._ended(watcher, st, ended, gen)
    this._retry(watcher, st)
  }

  _ended(watcher, st, err, gen) {
    if (err.code === 'Unauthenticated') {
      this._client._realtimeRenew(err).then(
        () => gen === st.gen && this._open(watcher, st),
        (e) => watcher.fail(e && e.code ? e : err),
      )
      return
    }
    if (TRANSIENT[err.code]) return this._retry(watcher, st)
    watcher.fail(err)
  }
}

module.exports = {
  Watcher: Watcher,
  SocketRealtime: SocketRealtime,
  SseRealtime: SseRealtime,
}
