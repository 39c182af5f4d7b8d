'use strict'
// Generated from src/client.js by scripts/build.mjs: do not edit.
// The client: login through the `session` function, keep the session in the host's
// storage, refresh the invoke credentials, and call functions through FC's Invoke API
// with FC 2.0 signatures (docs/http-api.md).
const { MinibaseError, isCredentialsError, parseResponse } = require('./errors.js')
const { isRetrySafe, withRetry, RETRY_DEFAULTS } = require('./retry.js')
const { signRequest } = require('./signer.js')
const { storageFor } = require('./storage.js')
const { detectPlatform, hostApi, transportFor } = require('./transports.js')
const { Database } = require('./db.js')
const { Files } = require('./files.js')
const { socketFor } = require('./sockets.js')
const { SocketRealtime, SseRealtime, Watcher } = require('./watch.js')

const FC_API = '/2016-08-15'
const PROVIDERS = { alipay: 'alipay', wechat: 'wechat', douyin: 'douyin' }
const PLATFORMS = ['alipay', 'wechat', 'douyin', 'web']
// A server Date this far from the local clock (ms) becomes the clock offset: beyond the
// Date header's 1 s resolution and a slow answer's latency, well within FC's 15 min window.
const CLOCK_TOLERANCE = 60000

function isThenable(v) {
  return !!v && typeof v.then === 'function'
}

function parseSession(raw) {
  if (raw == null || raw === '') return null
  let s = raw
  if (typeof raw === 'string') {
    try {
      s = JSON.parse(raw)
    } catch (e) {
      return null
    }
  }
  if (!s || typeof s !== 'object' || typeof s.sessionId !== 'string' || !s.sts || typeof s.sts !== 'object') return null
  return s
}

function normaliseTransport(t) {
  if (!t) return null
  if (typeof t === 'function') return { name: 'custom', setsDate: false, request: t }
  if (typeof t.request !== 'function') throw new MinibaseError('InvalidArgument', 'transport must have a request() method', 400)
  return t
}

class MinibaseClient {
  constructor(options) {
    const o = options || {}
    if (typeof o.endpoint !== 'string' || !/^https?:\/\/[^/]+/.test(o.endpoint)) {
      throw new MinibaseError('InvalidArgument', 'endpoint must be an http(s) URL, e.g. https://api.example.com', 400)
    }
    if (typeof o.service !== 'string' || !o.service) {
      throw new MinibaseError('InvalidArgument', 'service (the FC service name, [app].service) is required', 400)
    }
    this.endpoint = o.endpoint.replace(/\/+$/, '')
    const m = /^(https?:\/\/[^/]+)(\/.*)?$/.exec(this.endpoint)
    this._origin = m[1]
    this._basePath = m[2] || ''
    this.service = o.service
    let transport = normaliseTransport(o.transport)
    if (o.platform !== undefined && PLATFORMS.indexOf(o.platform) < 0) {
      throw new MinibaseError('InvalidArgument', 'platform must be one of: ' + PLATFORMS.join(', '), 400)
    }
    this.platform = o.platform || (transport && PROVIDERS[transport.name] ? transport.name : detectPlatform())
    this._host = o.host || hostApi(this.platform)
    this.transport = transport || transportFor(this.platform, this._host)
    this.storage = o.storage || storageFor(this.platform, this._host)
    this.storageKey = o.storageKey || 'minibase:' + this.service + ':session'
    this.refreshMargin = o.refreshMargin === undefined ? 60 : o.refreshMargin
    this.timeout = o.timeout === undefined ? 20000 : o.timeout
    this.dateHeader = o.dateHeader || (this.transport.setsDate ? 'date' : 'x-fc-date')
    this._now = o.now || Date.now
    this._retry = {
      maxRetries: o.maxRetries === undefined ? RETRY_DEFAULTS.maxRetries : o.maxRetries,
      baseDelay: o.retryBaseDelay === undefined ? RETRY_DEFAULTS.baseDelay : o.retryBaseDelay,
      maxDelay: o.retryMaxDelay === undefined ? RETRY_DEFAULTS.maxDelay : o.retryMaxDelay,
      sleep: o.sleep,
      random: o.random,
      now: this._now,
    }
    this._webCrypto = o.webCrypto !== false
    if (o.relogin !== undefined && o.relogin !== null && o.relogin !== false && o.relogin !== true && typeof o.relogin !== 'function') {
      throw new MinibaseError('InvalidArgument', 'relogin must be true (the host login) or a function returning login options', 400)
    }
    this._relogin = o.relogin || null
    if (o.realtime !== undefined && o.realtime !== 'websocket' && o.realtime !== 'sse') {
      throw new MinibaseError('InvalidArgument', "realtime must be 'websocket' or 'sse'", 400)
    }
    if (o.realtimeAuth !== undefined && o.realtimeAuth !== 'signed' && o.realtimeAuth !== 'session') {
      throw new MinibaseError('InvalidArgument', "realtimeAuth must be 'signed' or 'session'", 400)
    }
    if (o.realtimeEndpoint !== undefined && (typeof o.realtimeEndpoint !== 'string' || !/^https?:\/\/[^/]+/.test(o.realtimeEndpoint))) {
      throw new MinibaseError('InvalidArgument', 'realtimeEndpoint must be an http(s) URL (the host running minibase serve)', 400)
    }
    this.realtime = o.realtime || 'websocket'
    this.realtimeAuth = o.realtimeAuth || 'signed'
    this.realtimeEndpoint = (o.realtimeEndpoint || this.endpoint).replace(/\/+$/, '')
    this.watchRetryDelay = o.watchRetryDelay === undefined ? 500 : o.watchRetryDelay
    this._WebSocket = o.WebSocket || null
    this._fetchImpl = o.fetch || null
    this._realtime = null
    this._reloggingIn = null
    this.clockOffset = 0 // server time − local time, ms; learnt from the session function's Date and RequestTimeTooSkewed
    this._session = null
    this._refreshing = null
    this.db = new Database(this)
    this.files = new Files(this)
    this.ready = this._load()
  }

  /** The logged-in user `{uid, provider, isNew}`, or null. */
  get user() {
    return this._session ? this._session.user || null : null
  }

  get isLoggedIn() {
    return !!this._session
  }

  /** The current time as the server sees it (ms). */
  serverNow() {
    return this._now() + this.clockOffset
  }

  // ------------------------------------------------------------------ storage

  _load() {
    let raw
    try {
      raw = this.storage.get(this.storageKey)
    } catch (e) {
      return Promise.resolve()
    }
    if (isThenable(raw)) {
      return raw.then(
        (v) => {
          if (!this._session) this._session = parseSession(v)
        },
        () => undefined,
      )
    }
    this._session = parseSession(raw)
    return Promise.resolve()
  }

  async _save() {
    if (this._session) await this.storage.set(this.storageKey, JSON.stringify(this._session))
  }

  async _clear() {
    this._session = null
    await this.storage.remove(this.storageKey)
  }

  // ------------------------------------------------------------------ session

  async _sessionCall(event) {
    const url = this.endpoint + FC_API + '/proxy/' + encodeURIComponent(this.service) + '/session/'
    const body = JSON.stringify(event)
    const answer = await withRetry(async () => {
      const res = await this.transport.request({
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        timeout: this.timeout,
      })
      this._learnClock(res)
      return parseResponse(res)
    }, this._retry)
    if (answer && typeof answer === 'object' && answer.sessionId === undefined && answer.data && typeof answer.data === 'object') {
      return answer.data
    }
    return answer
  }

  /**
   * The server's clock from an answer's `Date` (or an error body's `serverTime`): a phone
   * whose clock is off signs with the server's time from the first call on, and judges
   * credential expiry by it.
   */
  _learnClock(res) {
    let date = res && res.headers ? res.headers.date : null
    if (!date && res && typeof res.data === 'string' && res.data.indexOf('erverTime') >= 0) {
      const m = /"[sS]erverTime"\s*:\s*"([^"]+)"/.exec(res.data)
      date = m ? m[1] : null
    }
    const server = date ? Date.parse(date) : NaN
    if (isNaN(server)) return
    const offset = server - this._now()
    if (Math.abs(offset - this.clockOffset) > CLOCK_TOLERANCE) this.clockOffset = offset
  }

  /** The login providers set up on the server, and why declared others are not: `{providers, unavailable}`. */
  async providers() {
    const answer = await this._sessionCall({ op: 'providers' })
    return {
      providers: answer && Array.isArray(answer.providers) ? answer.providers : [],
      unavailable: answer && answer.unavailable && typeof answer.unavailable === 'object' ? answer.unavailable : {},
    }
  }

  _hostCode(opts) {
    const api = this._host
    const p = this.platform
    const fnName = p === 'alipay' ? 'my.getAuthCode' : p === 'wechat' ? 'wx.login' : 'tt.login'
    return new Promise((resolve, reject) => {
      const failed = (err) => {
        const e = err || {}
        reject(new MinibaseError('ProviderError', fnName + ' failed: ' + (e.errorMessage || e.errMsg || e.error || 'error'), 0, null, { hostError: e }))
      }
      const got = (code) => {
        if (typeof code === 'string' && code) resolve(code)
        else failed({ errMsg: 'no code in the answer' })
      }
      try {
        if (p === 'alipay') {
          api.getAuthCode({ scopes: opts.scopes || 'auth_base', success: (r) => got(r && r.authCode), fail: failed })
        } else if (p === 'wechat') {
          api.login({ timeout: this.timeout, success: (r) => got(r && r.code), fail: failed })
        } else {
          api.login({ force: true, success: (r) => got(r && r.code), fail: failed })
        }
      } catch (e) {
        failed({ errMsg: String((e && e.message) || e) })
      }
    })
  }

  /**
   * Log in. Without `authCode`, runs the host's code step (`my.getAuthCode({scopes:
   * 'auth_base'})`, `wx.login`, `tt.login`) and sends the platform's provider name; with
   * `authCode` (e.g. `'dev:alice'` for the dev provider) sends only what is given.
   * Resolves to the user `{uid, provider, isNew}`.
   */
  async login(options) {
    const o = options || {}
    await this.ready
    let code = o.authCode
    let provider = o.provider
    if (code === undefined || code === null) {
      if (!this._host || !PROVIDERS[this.platform]) {
        throw new MinibaseError('InvalidArgument', 'login() outside a mini-program needs {authCode}', 400)
      }
      code = await this._hostCode(o)
      provider = provider || PROVIDERS[this.platform]
    }
    const event = { authCode: code }
    if (provider) event.provider = provider
    const answer = await this._sessionCall(event)
    if (!answer || typeof answer.sessionId !== 'string' || !answer.sts || typeof answer.sts !== 'object') {
      throw new MinibaseError('Internal', 'the session function answered without sessionId and sts', 500)
    }
    this._session = {
      sessionId: answer.sessionId,
      sts: answer.sts,
      user: answer.user || null,
      expiresAt: answer.expiresAt || null,
    }
    await this._save()
    return this.user
  }

  /** New invoke credentials for the current session (concurrent callers share one request). */
  async refresh() {
    await this.ready
    if (!this._session) throw new MinibaseError('Unauthenticated', 'not logged in: call login() first', 401)
    if (this._refreshing) return this._refreshing
    const sid = this._session.sessionId
    this._refreshing = (async () => {
      try {
        const answer = await this._sessionCall({ op: 'refresh', sessionId: sid })
        if (!answer || !answer.sts || typeof answer.sts !== 'object') {
          throw new MinibaseError('Internal', 'the session function answered a refresh without sts', 500)
        }
        if (this._session && this._session.sessionId === sid) {
          this._session = {
            sessionId: sid,
            sts: answer.sts,
            user: this._session.user || answer.user || null,
            expiresAt: answer.expiresAt || this._session.expiresAt,
          }
          await this._save()
        }
      } catch (e) {
        // The session itself is gone (revoked, expired, user disabled): forget it. An
        // HttpError (Alipay's error 19 without the answer) most likely says the same: a
        // refresh is refused for an ended session, seldom otherwise (a rate limit, a
        // server fault). Forgetting lets the app log in again; keeping it would leave the
        // app stuck on a dead session across launches.
        if ((e.code === 'Unauthenticated' || e.code === 'HttpError') && this._session && this._session.sessionId === sid) await this._clear()
        throw e
      } finally {
        this._refreshing = null
      }
    })()
    return this._refreshing
  }

  /**
   * Store the user's phone number on the server (the session function's `linkPhone`), where
   * functions read it as `ctx.user.phone`. WeChat: `{code}` from a
   * `<button open-type="getPhoneNumber">` event; Alipay: no argument (calls
   * `my.getPhoneNumber` itself and sends its `response`); dev logins: `{phone}`.
   * Resolves to the stored number.
   */
  async linkPhone(options) {
    const o = options || {}
    await this.ready
    if (!this._session) throw new MinibaseError('Unauthenticated', 'not logged in: call login() first', 401)
    const event = { op: 'linkPhone', sessionId: this._session.sessionId }
    if (o.code !== undefined) event.code = o.code
    else if (o.phone !== undefined) event.phone = o.phone
    else if (o.response !== undefined) event.response = o.response
    else if (this.platform === 'alipay' && this._host && typeof this._host.getPhoneNumber === 'function') {
      event.response = await this._hostPhone()
    } else {
      throw new MinibaseError('InvalidArgument', 'linkPhone needs {code} (the getPhoneNumber button\'s code) outside Alipay', 400)
    }
    const answer = await this._sessionCall(event)
    if (!answer || typeof answer.phone !== 'string') {
      throw new MinibaseError('Internal', 'the session function answered linkPhone without a phone', 500)
    }
    return answer.phone
  }

  /** `my.getPhoneNumber`'s `response` (the signed, encrypted answer the server checks). */
  _hostPhone() {
    return new Promise((resolve, reject) => {
      const failed = (err) => {
        const e = err || {}
        reject(new MinibaseError('ProviderError', 'my.getPhoneNumber failed: ' + (e.errorMessage || e.errMsg || e.error || 'error'), 0, null, { hostError: e }))
      }
      try {
        this._host.getPhoneNumber({
          success: (r) => (r && r.response ? resolve(r.response) : failed({ errMsg: 'no response in the answer' })),
          fail: failed,
        })
      } catch (e) {
        failed({ errMsg: String((e && e.message) || e) })
      }
    })
  }

  /** End the session on the server and forget it here (also when the server call fails). */
  async logout() {
    await this.ready
    if (!this._session) return
    const sid = this._session.sessionId
    try {
      await this._sessionCall({ op: 'logout', sessionId: sid })
    } catch (e) {
      if (e.code !== 'Unauthenticated') {
        await this._clear()
        throw e
      }
    }
    await this._clear()
  }

  _expiresSoon() {
    const exp = Date.parse(this._session.sts && this._session.sts.Expiration)
    if (isNaN(exp)) return true
    return exp - this.serverNow() < this.refreshMargin * 1000
  }

  // ---------------------------------------------------------------- functions

  /**
   * Call a function with a JSON event through FC's Invoke API; resolves to the whole
   * answer body (`{data, next?}`).
   */
  async invoke(name, event) {
    await this.ready
    if (typeof name !== 'string' || !name) throw new MinibaseError('InvalidArgument', 'the function name is required', 400)
    if (!this._session) throw new MinibaseError('Unauthenticated', 'not logged in: call login() first', 401)
    const body = JSON.stringify(event === undefined ? {} : event)
    if (this._expiresSoon()) await this._renew(this._session.sessionId, null)
    const retrySafe = isRetrySafe(name, event)
    let refreshed = false
    let skewFixed = false
    for (;;) {
      const sid = this._session ? this._session.sessionId : null
      try {
        return await this._signedCall(name, body, retrySafe)
      } catch (e) {
        // Expired or refused credentials; or (HttpError) a refusal whose status Alipay did
        // not pass on, which a refresh answers too: it renews the credentials, its answer's
        // Date fixes the clock, and its failure says the session has ended.
        if ((isCredentialsError(e) || e.code === 'HttpError') && !refreshed && sid) {
          refreshed = true // once per call: a second refusal is the answer
          await this._renew(sid, e)
          continue
        }
        if (e.code === 'RequestTimeTooSkewed' && !skewFixed && e.serverDate) {
          const server = Date.parse(e.serverDate)
          if (!isNaN(server)) {
            skewFixed = true
            this.clockOffset = server - this._now()
            continue
          }
        }
        throw e
      }
    }
  }

  /**
   * New credentials for session `sid` (unless another call has replaced it meanwhile); when
   * the server says the session has ended and a `relogin` option is set, a new login.
   * Resolves to true when it logged in again. `cause` is the error that led here.
   */
  async _renew(sid, cause) {
    if (this._session && this._session.sessionId !== sid) return false
    try {
      if (this._session) {
        await this.refresh()
        return false
      }
    } catch (re) {
      if (re.code !== 'Unauthenticated' && re.code !== 'HttpError') throw re
      if (!this._relogin) {
        if (cause && re.code === 'Unauthenticated') re.details.gatewayCode = cause.code
        throw re
      }
    }
    if (!this._relogin) throw new MinibaseError('Unauthenticated', 'the session has ended: log in again', 401)
    await this._loginAgain()
    return true
  }

  /** The `relogin` option's login; concurrent callers share one. */
  _loginAgain() {
    if (!this._reloggingIn) {
      this._reloggingIn = (async () => {
        try {
          const opts = this._relogin === true ? {} : await this._relogin()
          if (!opts) throw new MinibaseError('Unauthenticated', 'the session has ended: log in again', 401)
          await this.login(opts === true ? {} : opts)
        } finally {
          this._reloggingIn = null
        }
      })()
    }
    return this._reloggingIn
  }

  /** Call one of the developer's functions; resolves to the answer's `data`. */
  async callFunction(name, data) {
    const answer = await this.invoke(name, data === undefined ? {} : data)
    return answer && typeof answer === 'object' ? answer.data : answer
  }

  _signedCall(name, body, retrySafe) {
    const path = FC_API + '/services/' + encodeURIComponent(this.service) + '/functions/' + encodeURIComponent(name) + '/invocations'
    const url = this._origin + this._basePath + path
    return withRetry(async () => {
      const s = this._session
      if (!s) throw new MinibaseError('Unauthenticated', 'not logged in: call login() first', 401)
      const headers = await signRequest(
        s.sts,
        { method: 'POST', path: this._basePath + path, headers: { 'content-type': 'application/json' }, body },
        { dateHeader: this.dateHeader, now: this.serverNow(), webCrypto: this._webCrypto },
      )
      const res = await this.transport.request({ url, method: 'POST', headers, body, timeout: this.timeout })
      return parseResponse(res)
    }, Object.assign({}, this._retry, { retrySafe: !!retrySafe }))
  }

  // ----------------------------------------------------------------- realtime

  /** Start watching a query event (`Query.watch`). */
  _watch(event, handlers) {
    let rt = this._realtime
    if (!rt) {
      if (this.realtime === 'sse') {
        const f = this._fetchImpl || (typeof fetch !== 'undefined' ? fetch : null)
        if (!f) throw new MinibaseError('InvalidArgument', "realtime: 'sse' needs fetch (web pages, Node ≥ 18)", 400)
        rt = new SseRealtime(this, f)
      } else {
        rt = new SocketRealtime(this)
      }
      this._realtime = rt
    }
    const w = new Watcher(rt, event, handlers)
    rt.add(w)
    return w
  }

  /** The host's WebSocket API, normalised (sockets.js). */
  _socketOpener() {
    return socketFor(this.platform, this._host, this._WebSocket)
  }

  /** `{realtimeEndpoint}/realtime`, as ws(s):// for sockets. */
  _realtimeUrl(kind) {
    const url = this.realtimeEndpoint + '/realtime'
    return kind === 'ws' ? url.replace(/^http/, 'ws') : url
  }

  _realtimePath(suffix) {
    const m = /^https?:\/\/[^/]+(\/.*)?$/.exec(this.realtimeEndpoint)
    return ((m && m[1]) || '') + '/realtime' + suffix
  }

  /**
   * Fresh-enough invoke credentials: refreshed when they expire within refreshMargin, or
   * (`stale`, epoch ms) when they expire no later than the ones the server holds.
   */
  async _liveSession(stale) {
    await this.ready
    if (!this._session) throw new MinibaseError('Unauthenticated', 'not logged in: call login() first', 401)
    if (this.realtimeAuth === 'signed') {
      const exp = Date.parse(this._session.sts && this._session.sts.Expiration)
      if (this._expiresSoon() || (stale && !(exp > stale + 1000))) await this.refresh()
    }
    return this._session
  }

  /** The `auth` message of a realtime connection: the session id, or FC-signed headers. `stale`: see _liveSession. */
  async _realtimeAuth(stale) {
    const s = await this._liveSession(stale)
    if (this.realtimeAuth === 'session') return { type: 'auth', sessionId: s.sessionId }
    const headers = await signRequest(
      s.sts,
      { method: 'GET', path: this._realtimePath(''), body: '' },
      { dateHeader: this.dateHeader, now: this.serverNow(), webCrypto: this._webCrypto },
    )
    return { type: 'auth', headers }
  }

  /** The headers of an SSE request (`POST /realtime/sse`) with this body. */
  async _realtimeHeaders(body) {
    const s = await this._liveSession()
    const base = { 'content-type': 'application/json' }
    if (this.realtimeAuth === 'session') return Object.assign(base, { authorization: 'Bearer ' + s.sessionId })
    return signRequest(
      s.sts,
      { method: 'POST', path: this._realtimePath('/sse'), headers: base, body },
      { dateHeader: this.dateHeader, now: this.serverNow(), webCrypto: this._webCrypto },
    )
  }

  /**
   * The realtime server said Unauthenticated. Expired invoke credentials: refreshed, and the
   * watches resume. An ended session (the refresh is refused; with `realtimeAuth: 'session'`
   * the answer itself): forgotten here as for calls, and the error rejects.
   */
  async _realtimeRenew(err) {
    await this.ready
    if (!this._session) throw err
    if (this.realtimeAuth === 'session') {
      await this._clear()
      throw err
    }
    await this.refresh()
  }

  /** An absolute URL for a URL the server returned (which may be relative to the endpoint). */
  _absolute(url) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return url
    return url.charAt(0) === '/' ? this._origin + url : this.endpoint + '/' + url
  }

  /** Send raw bytes (uploads), retried like every other request. */
  _raw(req) {
    return withRetry(async () => {
      const res = await this.transport.request(Object.assign({ timeout: this.timeout }, req))
      if (res.status >= 200 && res.status < 300) return res
      parseResponse(res) // throws the error the body describes
      throw new MinibaseError('Internal', 'HTTP ' + res.status, res.status)
    }, this._retry)
  }
}

/** A client for one minibase service (docs/http-api.md). */
function createClient(options) {
  return new MinibaseClient(options)
}

module.exports = {
  FC_API: FC_API,
  MinibaseClient: MinibaseClient,
  createClient: createClient,
}
