// One error class for everything the SDK can fail with, and the parsing of answers.

import { CODE_STATUS } from './codes.js'

// The code → status table is generated from the server's error tree (scripts/codes.py).
export { CODE_STATUS }

const STATUS_CODE = {}
for (const code of Object.keys(CODE_STATUS)) STATUS_CODE[CODE_STATUS[code]] = code

export class MinibaseError extends Error {
  /**
   * @param {string} code     a stable code: `NotFound`, `Unauthenticated`, an FC gateway code
   *                          such as `InvalidSecurityToken.Expired`, or `NetworkError`
   * @param {string} message  plain English
   * @param {number} [status] HTTP status (0 for network errors)
   * @param {string} [requestId]
   * @param {object} [details] extra machine-readable fields of the error body
   */
  constructor(code, message, status, requestId, details) {
    super(message)
    this.name = 'MinibaseError'
    this.code = code
    this.status = status === undefined ? CODE_STATUS[code] || 0 : status
    this.requestId = requestId || null
    this.details = details || {}
  }
}

/** Whether an error code comes from the FC gateway's expired/invalid credentials family. */
export function isCredentialsError(err) {
  return !!err && typeof err.code === 'string' && err.code.indexOf('InvalidSecurityToken') === 0
}

function header(res, name) {
  const h = res.headers || {}
  return h[name] === undefined ? null : h[name]
}

/**
 * The JSON body of a normalised response `{status, headers, data}`, or a thrown
 * MinibaseError for every kind of error answer:
 * - `{"error": {code, message, requestId, ...}}` (any status; on FC's Invoke API path
 *   function errors arrive as 200 with `x-fc-error-type: HandledInvocationError`),
 * - FC gateway refusals `{"ErrorCode", "ErrorMessage", "RequestId"?}`,
 * - anything else with a status ≥ 400, or a 2xx that is not JSON.
 */
export function parseResponse(res) {
  const status = res.status
  const text = res.data == null ? '' : String(res.data)
  let body
  let parsed = false
  if (text.trim() === '') {
    body = null
    parsed = true
  } else {
    try {
      body = JSON.parse(text)
      parsed = true
    } catch (e) {
      parsed = false
    }
  }
  const rid = header(res, 'x-fc-request-id')
  const handled = header(res, 'x-fc-error-type')
  if (parsed && body && typeof body === 'object' && !Array.isArray(body)) {
    if (body.error && typeof body.error === 'object') {
      const e = body.error
      const code = typeof e.code === 'string' ? e.code : STATUS_CODE[status] || 'Internal'
      const details = {}
      for (const k of Object.keys(e)) if (k !== 'code' && k !== 'message' && k !== 'requestId') details[k] = e[k]
      const st = status >= 400 ? status : CODE_STATUS[code] || status
      return fail(new MinibaseError(code, String(e.message || code), st, e.requestId || rid, details), res)
    }
    if (typeof body.ErrorCode === 'string') {
      const gw = typeof body.ServerTime === 'string' ? { serverTime: body.ServerTime } : undefined
      return fail(
        new MinibaseError(body.ErrorCode, String(body.ErrorMessage || body.ErrorCode), status, body.RequestId || rid, gw),
        res,
      )
    }
  }
  if (handled) {
    // FC's own shape for a function that threw: {"errorMessage", "errorType", "stackTrace"}.
    const msg = parsed && body && typeof body.errorMessage === 'string' ? body.errorMessage : 'the function failed (' + handled + ')'
    return fail(new MinibaseError('Internal', msg, 500, rid), res)
  }
  if (status >= 400 || status < 200) {
    const code = STATUS_CODE[status] || (status >= 500 ? 'Internal' : 'InvalidArgument')
    return fail(new MinibaseError(code, 'HTTP ' + status + (text ? ': ' + text.slice(0, 200) : ''), status, rid), res)
  }
  if (!parsed) {
    return fail(new MinibaseError('Internal', 'the answer is not JSON (HTTP ' + status + ')', status, rid), res)
  }
  return body
}

function fail(err, res) {
  const retry = header(res, 'retry-after')
  if (retry != null && err.details.retryAfter === undefined) err.details.retryAfter = retry
  // The body's serverTime (ms precision) where there is one: some hosts drop an error's headers.
  const date = typeof err.details.serverTime === 'string' ? err.details.serverTime : header(res, 'date')
  if (date) Object.defineProperty(err, 'serverDate', { value: date, enumerable: false })
  throw err
}
