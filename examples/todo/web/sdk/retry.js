// Retries with exponential backoff and jitter, for network errors and `RateLimited` only.

export const RETRY_DEFAULTS = { maxRetries: 3, baseDelay: 200, maxDelay: 30000 }

/** Whether an error is worth retrying: no answer at all, or `RateLimited`. Never others. */
export function isRetryable(err) {
  return !!err && (err.code === 'NetworkError' || err.code === 'RateLimited')
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
 * times. A Retry-After longer than `maxDelay` is not waited for: the error is thrown.
 */
export async function withRetry(fn, options) {
  const o = Object.assign({}, RETRY_DEFAULTS, options)
  const sleep = o.sleep || ((ms) => new Promise((r) => setTimeout(r, ms)))
  const now = o.now || Date.now
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (!isRetryable(err) || attempt >= o.maxRetries) throw err
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
