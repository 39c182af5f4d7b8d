// Generated from minibase/errors.py by scripts/codes.py: do not edit by hand.

/** HTTP status of each stable error code. */
export const CODE_STATUS = {
  InvalidArgument: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  PayloadTooLarge: 413,
  ValidationFailed: 422,
  RateLimited: 429,
  Internal: 500,
  ProviderError: 502,
  DeadlineExceeded: 504,
}
