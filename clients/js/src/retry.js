// Retries with exponential backoff and jitter: network errors and `RateLimited` for every
// call, `Unavailable` (503) for retry-safe calls only.
import { RETRY_BATCH_OPS, RETRY_SAFE } from './codes.js'

export const RETRY_DEFAULTS = { maxRetries: 3, baseDelay: 200, maxDelay: 30000 }

/**
 * Whether calling function `name` with `event` again cannot apply anything twice: reads,
 * signed URLs, `put` (a whole document at its id), a batch of only `get`/`put`. The table
 * is generated from the server's Python client (codes.js), so both clients agree.
 */
export function isRetrySafe(name, event) {
  const ops = Object.prototype.hasOwnProperty.call(RETRY_SAFE, name) ? RETRY_SAFE[name] : null
  if (!ops || !event || typeof event !== 'object') return false
  if (name === 'db' && event.op === 'batch') {
    const subs = event.ops
    return Array.isArray(subs) && subs.length > 0 && subs.every((s) => !!s && typeof s === 'object' && RETRY_BATCH_OPS.indexOf(s.op) >= 0)
  }
  return ops.indexOf(event.op) >= 0
}

/**
 * Whether an error is worth retrying: no answer at all, or `RateLimited`; `Unavailable`
 * only when the call is `retrySafe` (it may have been applied). Never others.
 */
export function isRetryable(err, retrySafe) {
  if (!err) return false
  if (err.code === 'NetworkError' || err.code === 'RateLimited') return true
  return !!retrySafe && err.code === 'Unavailable'
}

/**
 * Milliseconds to wait before retry number `attempt` (0-based): "equal jitter", a random
 * point in [d/2, d] where d = min(maxDelay, baseDelay · 2^attempt).
 */
export function backoffDelay(attempt, options) {
  const o = Object.assign({}, RETRY_DEFAULTS, options)
  const random = o.random || Math.random
  const d = Math.min(o.maxDelay, o.baseDelay * Math.pow(2, attempt))
  return Math.round(d / 2 + random() * (d / 2))
}

/** A Retry-After value (delta-seconds or an HTTP date) in ms from `nowMs`; null if unusable. */
export function parseRetryAfter(value, nowMs) {
  if (value === undefined || value === null || value === '') return null
  if (typeof value === 'number') return value >= 0 ? value * 1000 : null
  const s = String(value).trim()
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000
  const t = Date.parse(s)
  if (isNaN(t)) return null
  return Math.max(0, t - (nowMs === undefined ? Date.now() : nowMs))
}

/**
 * Run `fn(attempt)` until it succeeds, retrying retryable errors at most `maxRetries`
 * times (`Unavailable` too when `options.retrySafe`). A Retry-After longer than `maxDelay`
 * is not waited for: the error is thrown.
 */
export async function withRetry(fn, options) {
  const o = Object.assign({}, RETRY_DEFAULTS, options)
  const sleep = o.sleep || ((ms) => new Promise((r) => setTimeout(r, ms)))
  const now = o.now || Date.now
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (!isRetryable(err, o.retrySafe) || attempt >= o.maxRetries) throw err
      let delay = backoffDelay(attempt, o)
      const after = parseRetryAfter(err.details && err.details.retryAfter, now())
      if (after !== null) {
        if (after > o.maxDelay) throw err
        delay = Math.max(delay, after)
      }
      if (o.onRetry) o.onRetry(err, attempt, delay)
      await sleep(delay)
    }
  }
}
