'use strict'
// Generated from src/signer.js by scripts/build.mjs: do not edit.
// FC 2.0 request signatures (docs/http-api.md), as Function Compute's own SDKs compute them:
//   Authorization: FC <AccessKeyId>:<base64(HMAC-SHA256(AccessKeySecret, S))>
//   S = METHOD \n Content-MD5 \n Content-Type \n Date \n <x-fc-* headers> <resource>
const { base64Encode, contentMd5, hmacSha256, utf8Encode } = require('./crypto.js')

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

function pad2(n) {
  return (n < 10 ? '0' : '') + n
}

/** RFC 1123 GMT date ("Wed, 25 Nov 2026 12:00:13 GMT") of a time in ms since the epoch. */
function formatHttpDate(ms) {
  const d = new Date(ms)
  return (
    DAYS[d.getUTCDay()] + ', ' + pad2(d.getUTCDate()) + ' ' + MONTHS[d.getUTCMonth()] + ' ' +
    d.getUTCFullYear() + ' ' + pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ':' +
    pad2(d.getUTCSeconds()) + ' GMT'
  )
}

/** Percent-decoding that leaves malformed escapes as they are (like Python's unquote). */
function unquote(path) {
  return path.replace(/(%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run)
    } catch (e) {
      return run
    }
  })
}

/**
 * The signed resource: the unescaped path; for HTTP-trigger (`/proxy/`) paths, plus the
 * query's `k=v` pairs sorted and joined by "\n" (a key with an empty list signs bare).
 */
function canonicalResource(path, query) {
  const resource = unquote(path)
  if (path.indexOf('/proxy/') < 0) return resource
  const pairs = []
  const q = query || {}
  for (const key of Object.keys(q)) {
    const value = q[key]
    if (typeof value === 'string') pairs.push(key + '=' + value)
    else if (!value || value.length === 0) pairs.push(key)
    else for (const v of value) pairs.push(key + '=' + v)
  }
  pairs.sort(compareCodeUnits)
  return resource + '\n' + pairs.join('\n')
}

// Python sorts str by code point; for the ASCII keys and header names FC uses, that is
// the same as comparing UTF-16 code units.
function compareCodeUnits(a, b) {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Lower-cased copy of a header object (a later duplicate of a name wins). */
function lowerHeaders(headers) {
  const out = {}
  for (const k of Object.keys(headers || {})) out[k.toLowerCase()] = String(headers[k])
  return out
}

/** The string to sign, S, for a request (header names may use any case). */
function stringToSign(method, path, headers, query) {
  const h = lowerHeaders(headers)
  const names = Object.keys(h).filter((k) => k.indexOf('x-fc-') === 0).sort(compareCodeUnits)
  let fc = ''
  for (const k of names) fc += k + ':' + h[k] + '\n'
  return [
    String(method).toUpperCase(),
    h['content-md5'] || '',
    h['content-type'] || '',
    h['date'] || '',
    fc + canonicalResource(path, query),
  ].join('\n')
}

/** base64(HMAC-SHA256(secret, string)), in pure JS (synchronous). */
function signString(secret, string) {
  return base64Encode(hmacSha256(utf8Encode(secret), utf8Encode(string)))
}

function subtle() {
  const c = typeof crypto !== 'undefined' ? crypto : undefined
  return c && c.subtle && typeof c.subtle.importKey === 'function' ? c.subtle : null
}

const keyCache = new Map() // secret → Promise<CryptoKey>, a few entries at most

/**
 * base64(HMAC-SHA256(secret, string)) with WebCrypto when the host has it (browsers in
 * secure contexts, Node ≥ 19), else the pure-JS HMAC. Always async.
 */
async function signStringAsync(secret, string, options) {
  const s = options && options.webCrypto === false ? null : subtle()
  if (!s) return signString(secret, string)
  let key = keyCache.get(secret)
  if (!key) {
    if (keyCache.size >= 8) keyCache.clear()
    key = s.importKey('raw', utf8Encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
    keyCache.set(secret, key)
  }
  try {
    const sig = await s.sign('HMAC', await key, utf8Encode(string))
    return base64Encode(new Uint8Array(sig))
  } catch (e) {
    keyCache.delete(secret)
    return signString(secret, string) // e.g. a host whose subtle refuses HMAC
  }
}

/** The `Authorization` header value (synchronous, pure JS). */
function authorization({ accessKeyId, accessKeySecret, method, path, headers, query }) {
  return 'FC ' + accessKeyId + ':' + signString(accessKeySecret, stringToSign(method, path, headers, query))
}

/**
 * Headers for one FC-signed request: `content-type`, `content-md5` (of `request.body`, a
 * string or bytes; none is an empty body), the date (`date`, or `x-fc-date` where the
 * host cannot set Date, e.g. browsers), `x-fc-security-token` and `authorization`.
 * `credentials` is the `sts` object a login returns. The Content-MD5 is signed, so the
 * signature covers the body: a captured request cannot carry another event.
 */
async function signRequest(credentials, request, options) {
  const opts = options || {}
  const headers = {}
  const extra = lowerHeaders(request.headers)
  for (const k of Object.keys(extra)) headers[k] = extra[k]
  if (!headers['content-type']) headers['content-type'] = 'application/json'
  if (!headers['content-md5']) headers['content-md5'] = contentMd5(request.body === undefined ? '' : request.body)
  const dateHeader = opts.dateHeader || 'date'
  if (!headers[dateHeader]) headers[dateHeader] = formatHttpDate(opts.now !== undefined ? opts.now : Date.now())
  if (credentials.SecurityToken) headers['x-fc-security-token'] = credentials.SecurityToken
  const s = stringToSign(request.method || 'POST', request.path, headers, request.query)
  const sig = await signStringAsync(credentials.AccessKeySecret, s, opts)
  headers['authorization'] = 'FC ' + credentials.AccessKeyId + ':' + sig
  return headers
}

module.exports = {
  formatHttpDate: formatHttpDate,
  canonicalResource: canonicalResource,
  lowerHeaders: lowerHeaders,
  stringToSign: stringToSign,
  signString: signString,
  signStringAsync: signStringAsync,
  authorization: authorization,
  signRequest: signRequest,
}
