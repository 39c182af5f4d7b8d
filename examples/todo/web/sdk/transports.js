// HTTP transports: the host's request API, normalised to
//   request({url, method, headers, body, timeout}) → Promise<{status, headers, data}>
// where `headers` has lower-cased names and `data` is the raw response text. Every
// transport asks for text and leaves JSON parsing to the SDK, so error bodies (4xx/5xx,
// non-JSON) come through the same way on every host. A failure to get any answer at all
// rejects with MinibaseError code `NetworkError` (status 0).
import { MinibaseError } from './errors.js'
import { utf8Decode } from './crypto.js'

/* global my, wx, tt */

/** The host's API object for a platform (`my`, `wx`, `tt`), or null. */
export function hostApi(platform) {
  if (platform === 'alipay') return typeof my !== 'undefined' && my ? my : null
  if (platform === 'wechat') return typeof wx !== 'undefined' && wx ? wx : null
  if (platform === 'douyin') return typeof tt !== 'undefined' && tt ? tt : null
  return null
}

/**
 * Which host this code runs in: `alipay` (`my.request`), `douyin` (`tt.request`),
 * `wechat` (`wx.request`), else `web` (fetch). Douyin is tested before WeChat because
 * some hosts provide `wx` as a compatibility alias.
 */
export function detectPlatform() {
  for (const p of ['alipay', 'douyin', 'wechat']) {
    const api = hostApi(p)
    if (api && typeof api.request === 'function') return p
  }
  return 'web'
}

function normaliseHeaders(raw) {
  const out = {}
  if (!raw || typeof raw !== 'object') return out
  for (const k of Object.keys(raw)) {
    const v = raw[k]
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)
  }
  return out
}

function responseText(data) {
  if (data == null) return ''
  if (typeof data === 'string') return data
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return utf8Decode(data)
  return JSON.stringify(data) // a host that parsed JSON despite being asked for text
}

/** The body as mini-program request APIs take it: a string or an exact ArrayBuffer. */
function miniBody(body) {
  if (body == null) return undefined
  if (typeof body === 'string' || body instanceof ArrayBuffer) return body
  if (ArrayBuffer.isView(body)) return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)
  throw new MinibaseError('InvalidArgument', 'mini-program requests take a string or an ArrayBuffer body', 400)
}

function networkError(what, detail) {
  return new MinibaseError('NetworkError', what + ' failed: ' + detail, 0)
}

/**
 * Alipay `my.request`: `headers`, `dataType: 'text'`. An HTTP status ≥ 400 reaches the app
 * in one of four ways, depending on the base library: `fail` with `error: 19` and
 * `status`/`data`/`headers`; `fail` with `status`/`data` only; `fail` with `error: 19` and
 * nothing else; or `success`. The first, second and fourth are answers like any other (the
 * server repeats in the body what the SDK needs from the headers). The third carries no
 * answer at all: it rejects with code `HttpError` (status 0, "refused, status unknown"),
 * which the client recovers from with a credentials refresh (see client.js).
 */
export function alipayTransport(api) {
  const host = api || hostApi('alipay')
  if (!host) throw new MinibaseError('InvalidArgument', 'my.request is not available here', 400)
  return {
    name: 'alipay',
    setsDate: true,
    request(req) {
      return new Promise((resolve, reject) => {
        const opts = {
          url: req.url,
          method: req.method || 'GET',
          headers: req.headers || {},
          dataType: 'text',
          success(res) {
            resolve({ status: res.status || res.statusCode || 200, headers: normaliseHeaders(res.headers || res.header), data: responseText(res.data) })
          },
          fail(err) {
            const e = err || {}
            if (typeof e.status === 'number' && e.status > 0) {
              resolve({ status: e.status, headers: normaliseHeaders(e.headers || e.header), data: responseText(e.data) })
            } else if (e.error === 19) {
              reject(
                new MinibaseError('HttpError', 'the server refused the request (my.request error 19, without the answer: status unknown)', 0, null, {
                  hostError: e,
                }),
              )
            } else {
              reject(networkError('my.request', (e.errorMessage || e.errMsg || 'error') + (e.error !== undefined ? ' (' + e.error + ')' : '')))
            }
          },
        }
        const data = miniBody(req.body)
        if (data !== undefined) opts.data = data
        if (req.timeout) opts.timeout = req.timeout
        host.request(opts)
      })
    },
  }
}

function wxStyleTransport(name, fn, host) {
  return {
    name,
    setsDate: true,
    request(req) {
      return new Promise((resolve, reject) => {
        const opts = {
          url: req.url,
          method: req.method || 'GET',
          header: req.headers || {},
          dataType: 'text',
          responseType: 'text',
          success(res) {
            resolve({ status: res.statusCode || res.status || 0, headers: normaliseHeaders(res.header || res.headers), data: responseText(res.data) })
          },
          fail(err) {
            const e = err || {}
            reject(networkError(fn, e.errMsg || e.errorMessage || 'error'))
          },
        }
        const data = miniBody(req.body)
        if (data !== undefined) opts.data = data
        if (req.timeout) opts.timeout = req.timeout
        host.request(opts)
      })
    },
  }
}

/** WeChat `wx.request`: `header`, `dataType: 'text'` (anything but 'json' skips parsing), `responseType: 'text'`. */
export function wechatTransport(api) {
  const host = api || hostApi('wechat')
  if (!host) throw new MinibaseError('InvalidArgument', 'wx.request is not available here', 400)
  return wxStyleTransport('wechat', 'wx.request', host)
}

/** Douyin `tt.request`: the same options as WeChat's. */
export function douyinTransport(api) {
  const host = api || hostApi('douyin')
  if (!host) throw new MinibaseError('InvalidArgument', 'tt.request is not available here', 400)
  return wxStyleTransport('douyin', 'tt.request', host)
}

/**
 * `fetch` (browsers, Node ≥ 18, Deno, Bun). Browsers refuse to set `Date`, so the SDK
 * sends `x-fc-date` through this transport (`setsDate: false`).
 */
export function fetchTransport(fetchImpl) {
  const f = fetchImpl || (typeof fetch !== 'undefined' ? fetch : null)
  if (!f) throw new MinibaseError('InvalidArgument', 'fetch is not available here: pass a transport', 400)
  return {
    name: 'fetch',
    setsDate: false,
    async request(req) {
      const init = { method: req.method || 'GET', headers: req.headers || {} }
      if (req.body != null) init.body = req.body
      let timer = null
      if (req.timeout && typeof AbortController !== 'undefined') {
        const ctl = new AbortController()
        init.signal = ctl.signal
        timer = setTimeout(() => ctl.abort(), req.timeout)
      }
      try {
        let res
        try {
          res = await f(req.url, init)
        } catch (e) {
          throw networkError('fetch', e && e.name === 'AbortError' ? 'timed out' : String((e && (e.cause && e.cause.code)) || (e && e.message) || e))
        }
        const headers = {}
        if (res.headers && typeof res.headers.forEach === 'function') {
          res.headers.forEach((v, k) => {
            headers[k.toLowerCase()] = v
          })
        }
        let data
        try {
          data = await res.text()
        } catch (e) {
          throw networkError('fetch', 'reading the answer: ' + String((e && e.message) || e))
        }
        return { status: res.status, headers, data }
      } finally {
        if (timer) clearTimeout(timer)
      }
    },
  }
}

/** The transport for a platform name (`alipay`, `wechat`, `douyin`, `web`). */
export function transportFor(platform, api) {
  if (platform === 'alipay') return alipayTransport(api)
  if (platform === 'wechat') return wechatTransport(api)
  if (platform === 'douyin') return douyinTransport(api)
  return fetchTransport()
}
