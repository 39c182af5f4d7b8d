'use strict'
// Generated from src/codes.js by scripts/build.mjs: do not edit.
// Generated from minibase/errors.py and minibase/client.py by scripts/codes.py: do not edit by hand.

/** HTTP status of each stable error code. */
const CODE_STATUS = {
  InvalidArgument: 400,
  NotIndexed: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  PayloadTooLarge: 413,
  ContentRejected: 422,
  ValidationFailed: 422,
  RateLimited: 429,
  Internal: 500,
  ProviderError: 502,
  Unavailable: 503,
  DeadlineExceeded: 504,
}

/** Calls sent again after 503 Unavailable: per function, the ops that cannot apply anything twice. */
const RETRY_SAFE = {
  db: ['aggregate', 'count', 'get', 'list', 'put', 'query'],
  files: ['downloadUrl', 'list', 'stat', 'uploadUrl'],
}

/** A db batch is sent again after 503 Unavailable when every op in it is one of these. */
const RETRY_BATCH_OPS = ['get', 'put']

module.exports = {
  CODE_STATUS: CODE_STATUS,
  RETRY_SAFE: RETRY_SAFE,
  RETRY_BATCH_OPS: RETRY_BATCH_OPS,
}
