// Type declarations for minibase-client (hand-written; index.d.cts is generated from this).

export type Platform = 'alipay' | 'wechat' | 'douyin' | 'web'

/** A Blob or File (declared structurally so no DOM lib is needed). */
export interface BlobLike {
  readonly size: number
  readonly type: string
  arrayBuffer(): Promise<ArrayBuffer>
}

/** The fetch function (declared structurally so no DOM lib is needed). */
export type FetchLike = (url: string, init?: any) => Promise<any>

/** Invoke credentials as the `session` function returns them (`sts`). */
export interface Credentials {
  AccessKeyId: string
  AccessKeySecret: string
  SecurityToken: string
  /** RFC 3339 UTC, e.g. "2026-11-25T12:00:00Z". */
  Expiration: string
}

export interface User {
  uid: string
  provider: string
  isNew: boolean
}

/** What is kept in storage under `storageKey` (as a JSON string). */
export interface StoredSession {
  sessionId: string
  sts: Credentials
  user: User | null
  expiresAt: string | null
}

// ------------------------------------------------------------------ transports

export interface TransportRequest {
  url: string
  method: string
  headers: Record<string, string>
  /** A string (JSON events) or bytes (uploads); Blobs only through fetch. */
  body?: string | ArrayBuffer | ArrayBufferView | BlobLike
  /** Milliseconds. */
  timeout?: number
}

export interface TransportResponse {
  status: number
  /** Lower-cased names. */
  headers: Record<string, string>
  /** The raw response text. */
  data: string
}

export interface Transport {
  name: string
  /** Whether the host may send a `Date` header (else the SDK signs `x-fc-date`). */
  setsDate: boolean
  request(req: TransportRequest): Promise<TransportResponse>
}

/** The subset of `my` / `wx` / `tt` the SDK uses. */
export interface HostApi {
  request(options: Record<string, unknown>): unknown
  [name: string]: any
}

export function alipayTransport(api?: HostApi): Transport
export function wechatTransport(api?: HostApi): Transport
export function douyinTransport(api?: HostApi): Transport
export function fetchTransport(fetchImpl?: FetchLike): Transport
export function transportFor(platform: Platform, api?: HostApi | null): Transport

/** A WebSocket as the SDK uses it, whatever the host: text frames, one close. */
export interface SocketHandlers {
  onOpen?(): void
  onMessage?(text: string): void
  onError?(message: string): void
  onClose?(info: { code: number; reason: string }): void
}
export interface OpenSocket {
  send(text: string): void
  close(code?: number, reason?: string): void
}
export type SocketOpener = (req: { url: string; headers?: Record<string, string>; protocols?: string[] }, handlers: SocketHandlers) => OpenSocket
/** The browser WebSocket constructor (declared structurally so no DOM lib is needed). */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => any
/** `my.connectSocket`: a SocketTask (`multiple: true`), else the app-wide `my.onSocket*` socket. */
export function alipaySocket(api: HostApi): SocketOpener
/** `wx.connectSocket` / `tt.connectSocket` and their SocketTask. */
export function wxStyleSocket(api: HostApi, name: string): SocketOpener
export function webSocket(ctor: WebSocketLike): SocketOpener
export function socketFor(platform: Platform, api?: HostApi | null, ctor?: WebSocketLike | null): SocketOpener | null
/** A received frame's text, whatever the host wrapped it in (Alipay: `{data, isBuffer}`, base64, nested). */
export function frameText(res: unknown): string
export function base64Decode(text: string): Uint8Array
export function detectPlatform(): Platform
export function hostApi(platform: Platform): HostApi | null

// --------------------------------------------------------------------- storage

export interface Storage {
  name?: string
  get(key: string): string | null | Promise<string | null>
  set(key: string, value: string): void | Promise<void>
  remove(key: string): void | Promise<void>
}

export function alipayStorage(api: HostApi): Storage
export function wechatStorage(api: HostApi): Storage
export function douyinStorage(api: HostApi): Storage
export function webStorage(storage: { getItem(k: string): string | null; setItem(k: string, v: string): void; removeItem(k: string): void }): Storage
export function memoryStorage(initial?: Record<string, string>): Storage
export function storageFor(platform: Platform, api?: HostApi | null): Storage

// ---------------------------------------------------------------------- errors

/** HTTP status of each stable code; generated from the server's error tree. */
export const CODE_STATUS: Readonly<Record<ErrorCode, number>>
/** The stable codes of minibase's errors (FC gateway codes and `NetworkError` come besides). */
export type ErrorCode =
  | 'InvalidArgument'
  | 'Unauthenticated'
  | 'PermissionDenied'
  | 'NotFound'
  | 'NotIndexed'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'ContentRejected'
  | 'PayloadTooLarge'
  | 'ValidationFailed'
  | 'RateLimited'
  | 'Internal'
  | 'ProviderError'
  | 'Unavailable'
  | 'DeadlineExceeded'

export class MinibaseError extends Error {
  constructor(code: string, message: string, status?: number, requestId?: string | null, details?: Record<string, unknown>)
  /**
   * A stable code (a key of `CODE_STATUS`): `InvalidArgument`, `Unauthenticated`,
   * `PermissionDenied`, `NotFound`, `MethodNotAllowed`, `Conflict`, `PayloadTooLarge`,
   * `ValidationFailed`, `RateLimited`, `Internal`, `ProviderError`, `Unavailable`,
   * `DeadlineExceeded`;
   * FC gateway codes such as `SignatureNotMatch` or
   * `InvalidSecurityToken.Expired`; `NetworkError` (no answer, status 0); or `HttpError`
   * (status 0: Alipay's `my.request` reported an HTTP error, error 19, without the answer).
   */
  code: string
  /** HTTP status of the error (0 when there was no HTTP answer). */
  status: number
  requestId: string | null
  /** Extra fields of the error body, e.g. `retryAfter`, `index` (batch), `path`. */
  details: Record<string, unknown>
}

export function isCredentialsError(err: unknown): boolean
/** The JSON body of a normalised response, or throws MinibaseError for error answers. */
export function parseResponse(res: TransportResponse): any

// ----------------------------------------------------------------------- retry

export interface RetryOptions {
  maxRetries?: number
  baseDelay?: number
  maxDelay?: number
  sleep?: (ms: number) => Promise<void>
  random?: () => number
  now?: () => number
  onRetry?: (err: MinibaseError, attempt: number, delayMs: number) => void
  /** Retry `Unavailable` (503) too: only for calls that cannot apply anything twice. */
  retrySafe?: boolean
}
/** NetworkError and RateLimited always; Unavailable only when `retrySafe`. */
export function isRetryable(err: unknown, retrySafe?: boolean): boolean
/** Whether calling function `name` with `event` again cannot apply anything twice (reads, put, signed URLs). */
export function isRetrySafe(name: string, event: unknown): boolean
export function backoffDelay(attempt: number, options?: RetryOptions): number
export function parseRetryAfter(value: unknown, nowMs?: number): number | null
export function withRetry<T>(fn: (attempt: number) => Promise<T>, options?: RetryOptions): Promise<T>

// --------------------------------------------------------------------- signing

export type SignQuery = Record<string, string | string[]>
export function formatHttpDate(ms: number): string
export function canonicalResource(path: string, query?: SignQuery | null): string
export function stringToSign(method: string, path: string, headers: Record<string, string>, query?: SignQuery | null): string
export function signString(secret: string, string: string): string
export function signStringAsync(secret: string, string: string, options?: { webCrypto?: boolean }): Promise<string>
export function authorization(args: {
  accessKeyId: string
  accessKeySecret: string
  method: string
  path: string
  headers: Record<string, string>
  query?: SignQuery | null
}): string
export function signRequest(
  credentials: Pick<Credentials, 'AccessKeyId' | 'AccessKeySecret'> & { SecurityToken?: string },
  request: { method?: string; path: string; headers?: Record<string, string>; query?: SignQuery | null },
  options?: { dateHeader?: 'date' | 'x-fc-date'; now?: number; webCrypto?: boolean },
): Promise<Record<string, string>>

export type BytesLike = string | ArrayBuffer | ArrayBufferView
export function sha256(input: BytesLike): Uint8Array
export function hmacSha256(key: BytesLike, data: BytesLike): Uint8Array
/** MD5 (16 bytes): only for the Content-MD5 header that binds a signature to the body. */
export function md5(input: BytesLike): Uint8Array
/** RFC 1864 Content-MD5 (base64 of the raw MD5) of a request body. */
export function contentMd5(body: BytesLike): string
export function base64Encode(input: BytesLike): string
export function hex(input: BytesLike): string
export function utf8Encode(text: string): Uint8Array
export function utf8Decode(bytes: ArrayBuffer | ArrayBufferView): string

// ----------------------------------------------------------------------- db

export type Doc<T = Record<string, unknown>> = T & {
  id: string
  uid: string
  _version: number
  _created: string
  _updated: string
}

export interface Page<T> {
  data: T[]
  /** The cursor of the next page; null on the last page. */
  next: string | null
}

export type Where = Record<string, unknown>

export interface UpdateSpec {
  set?: Record<string, unknown>
  unset?: Record<string, unknown> | string[]
  inc?: Record<string, number>
  push?: Record<string, unknown>
  pull?: Record<string, unknown>
  ifVersion?: number
}

export type DbOp =
  | { op: 'put'; collection?: string; obj: Record<string, unknown> & { id: string } }
  | { op: 'insert'; collection?: string; obj: Record<string, unknown> }
  | ({ op: 'update'; collection?: string; id: string; owner?: string } & UpdateSpec)
  | { op: 'remove'; collection?: string; id: string; owner?: string }
  | { op: 'get'; collection?: string; id: string; owner?: string }

export class DocumentRef<T = Record<string, unknown>> {
  readonly collection: string
  readonly id: string
  readonly owner: string | null
  get(options?: { fields?: string[] }): Promise<Doc<T> | null>
  /** Create or replace (op `put`). */
  set(obj: Partial<T> & Record<string, unknown>): Promise<null>
  update(patch: UpdateSpec): Promise<Doc<T>>
  remove(): Promise<null>
}

/** One `aggregate` stage (docs/data.md#aggregation); `$group` is required. */
export type AggregateStage =
  | { $match: Where }
  | {
      $group: { _id: null | string | Record<string, string> } & Record<
        string,
        null | string | Record<string, string> | { $count: Record<string, never> } | { $sum: string } | { $avg: string } | { $min: string } | { $max: string }
      >
    }
  | { $sort: Record<string, 1 | -1> }
  | { $limit: number }

/** One group: its `_id` (a value, or an object of values) and the accumulators. */
export type AggregateGroup = { _id: unknown } & Record<string, unknown>

export class Query<T = Record<string, unknown>> {
  readonly collection: string
  where(filter: Where): Query<T>
  orderBy(field: string, direction?: 'asc' | 'desc'): Query<T>
  limit(n: number): Query<T>
  fields(list: string[]): Query<T>
  startAfter(cursor: string | null): Query<T>
  owner(uid: string): Query<T>
  get(options?: { cursor?: string | null }): Promise<Page<Doc<T>>>
  count(): Promise<number>
  /** Groups of the matching documents; this query's `where` becomes the `$match` stage. */
  aggregate(pipeline: AggregateStage[]): Promise<AggregateGroup[]>
  /** Keep the result current (docs/realtime.md): first an `init` snapshot, then every change. */
  watch(handlers: WatchHandlers<T>): Watcher<T>
}

// --------------------------------------------------------------------- watch

export interface DocChange<T = Record<string, unknown>> {
  dataType: 'init' | 'add' | 'update' | 'remove'
  id: string
  /** The document's owner (documents are identified by uid and id together). */
  uid: string
  /** The document now; for a `remove`, the one the watch held. */
  doc: Doc<T>
  /** Its place before this change (-1: it was not in the result). */
  oldIndex: number
  /** Its place after (-1: it left the result). */
  newIndex: number
}

export interface Snapshot<T = Record<string, unknown>> {
  /** `init`: the whole result (the first snapshot, or a fresh start after a gap too long to replay). */
  type: 'init' | 'change'
  /** The query's current result, in its order. */
  docs: Doc<T>[]
  /** What changed since the previous snapshot, in order. */
  docChanges: DocChange<T>[]
}

export interface WatchHandlers<T = Record<string, unknown>> {
  onChange(snapshot: Snapshot<T>): void
  /** The watch has ended: a bad query, a limit, the session ended (`Unauthenticated`), … */
  onError?(err: MinibaseError): void
}

export class Watcher<T = Record<string, unknown>> {
  /** The current result (as of the last snapshot). */
  readonly docs: Doc<T>[]
  /** Ended: closed by the app, or by an error (onError was called). */
  readonly closed: boolean
  /** Stop watching; no callback is called after this. */
  close(): void
}

export class Collection<T = Record<string, unknown>> extends Query<T> {
  doc(id: string, options?: { owner?: string }): DocumentRef<T>
  /** Insert (op `insert`) → the created document. */
  add(obj: Partial<T> & Record<string, unknown>): Promise<Doc<T>>
}

export class Database {
  collection<T = Record<string, unknown>>(name: string): Collection<T>
  batch(ops: DbOp[], options?: { collection?: string }): Promise<unknown[]>
}

// ---------------------------------------------------------------------- files

export interface FileStat {
  path: string
  /** `mb://<key>`: the same for every caller; documents can store it. */
  fileId: string
  size: number
  contentType: string
  updated: string
}

export type DownloadLink =
  | { path: string; fileId: string; url: string; expiresAt: string | null }
  | { path: string | null; error: { code: string; message: string } }

export class Files {
  /**
   * Upload bytes, a Blob (web) or, in mini-programs, a local file path (string or
   * `{filePath}`). Local files (through the host's `uploadFile`) and Blobs on the web go as
   * form uploads (`uploadForm`), bytes as a PUT (`uploadUrl`); `form` forces either.
   */
  upload(
    path: string,
    content: ArrayBuffer | ArrayBufferView | BlobLike | string | { filePath: string },
    options?: { contentType?: string; form?: boolean },
  ): Promise<{ path: string; size: number; contentType: string; fileId: string }>
  /** `expiresAt` is null for a public area's stable URL. `path` may be a file id. */
  downloadUrl(path: string, options?: { thumb?: string }): Promise<{ url: string; expiresAt: string | null }>
  /** One entry per path, in order; a missing or forbidden one carries `error`. */
  downloadUrls(paths: string[], options?: { thumb?: string }): Promise<DownloadLink[]>
  /** Every `mb://` file id in `docs` → its URL (unreadable ones left out). */
  resolveFileIds(docs: unknown, options?: { thumb?: string }): Promise<Record<string, string>>
  stat(path: string): Promise<FileStat | null>
  list(options?: { prefix?: string; limit?: number; cursor?: string | null }): Promise<Page<FileStat>>
  remove(path: string): Promise<null>
}

// --------------------------------------------------------------------- client

export interface ClientOptions {
  /** e.g. "https://api.example.com" (a path prefix is kept and signed). */
  endpoint: string
  /** The FC service name ([app].service in minibase.toml). */
  service: string
  /** Default: detected from the globals `my`, `tt`, `wx`, else 'web'. */
  platform?: Platform
  /** The host API object (`my` / `wx` / `tt`); default: the global for `platform`. */
  host?: HostApi
  /** Default: the platform's request API, else fetch. A bare function is taken as `request`. */
  transport?: Transport | ((req: TransportRequest) => Promise<TransportResponse>)
  /** Default: the platform's sync storage, else localStorage, else memory. */
  storage?: Storage
  /** Default "minibase:<service>:session". */
  storageKey?: string
  /** Seconds before `Expiration` at which credentials are refreshed (default 60). */
  refreshMargin?: number
  /** Request timeout in ms (default 20000). */
  timeout?: number
  /** Default 'date' where the transport can send Date, else 'x-fc-date'. */
  dateHeader?: 'date' | 'x-fc-date'
  /** Use WebCrypto for HMAC when present (default true). */
  webCrypto?: boolean
  /** Retries for network errors and RateLimited (default 3). */
  maxRetries?: number
  /** ms, default 200. */
  retryBaseDelay?: number
  /** ms, default 30000; a longer Retry-After is not waited for. */
  retryMaxDelay?: number
  /** Clock (ms since the epoch), for tests. */
  now?: () => number
  /** Sleep, for tests. */
  sleep?: (ms: number) => Promise<void>
  /** Jitter source in [0, 1), for tests. */
  random?: () => number
  /**
   * Log in again, once, when the server says the session has ended (logout elsewhere,
   * revoked, user disabled, expired), then retry the call. `true`: the host's login
   * (`my.getAuthCode` / `wx.login` / `tt.login`); a function: the login options to use
   * (e.g. `() => ({authCode: 'dev:alice'})`), or null to give up. Default: no re-login.
   */
  relogin?: boolean | (() => LoginOptions | null | undefined | Promise<LoginOptions | null | undefined>)
  /** How `watch()` connects: 'websocket' (default) or, on the web, 'sse' (fetch stream). */
  realtime?: 'websocket' | 'sse'
  /** 'signed' (default): the invoke credentials, renewed on the open socket; 'session': the session id. */
  realtimeAuth?: 'signed' | 'session'
  /** The host serving `/realtime` (a long-running `minibase serve`); default: `endpoint`. */
  realtimeEndpoint?: string
  /** First reconnect delay in ms (default 500), doubling up to 15 s. */
  watchRetryDelay?: number
  /** The WebSocket constructor where there is no global one (Node < 22). */
  WebSocket?: WebSocketLike
  /** fetch for `realtime: 'sse'`; default: the global. */
  fetch?: FetchLike
}

export interface Providers {
  /** The login providers set up on the server, e.g. ['dev', 'alipay']. */
  providers: string[]
  /** Declared but not set up: provider → what to set, e.g. "set ALIPAY_APP_ID, … to enable it". */
  unavailable: Record<string, string>
}

export interface LoginOptions {
  /** A code to send as is (e.g. 'dev:alice'); without it the host's code step runs. */
  authCode?: string
  /** Provider name; default: the platform's when the host code step runs, else none. */
  provider?: string
  /** Alipay scopes (default 'auth_base'). */
  scopes?: string
}

export class MinibaseClient {
  constructor(options: ClientOptions)
  readonly endpoint: string
  readonly service: string
  readonly platform: Platform
  readonly transport: Transport
  readonly storage: Storage
  readonly storageKey: string
  readonly db: Database
  readonly files: Files
  /** Resolves once the stored session has been read (sync storage: immediately). */
  readonly ready: Promise<void>
  /** Server time − local time in ms, learnt from the session function's Date and from RequestTimeTooSkewed. */
  clockOffset: number
  readonly user: User | null
  readonly isLoggedIn: boolean
  serverNow(): number
  login(options?: LoginOptions): Promise<User>
  refresh(): Promise<void>
  logout(): Promise<void>
  /**
   * Store the user's phone number (`ctx.user.phone` in functions): WeChat `{code}` from a
   * getPhoneNumber button, Alipay no argument (calls `my.getPhoneNumber`), dev `{phone}`.
   */
  linkPhone(options?: { code?: string; phone?: string; response?: string | Record<string, unknown> }): Promise<string>
  /** The session function's `providers` op. */
  providers(): Promise<Providers>
  /** The whole answer body: `{data, next?}`. */
  invoke<T = any>(name: string, event?: Record<string, unknown>): Promise<{ data: T; next?: string | null }>
  /** The answer's `data`. */
  callFunction<T = any>(name: string, data?: Record<string, unknown>): Promise<T>
}

export function createClient(options: ClientOptions): MinibaseClient

export const FC_API: '/2016-08-15'
