// minibase-client: the JS SDK for minibase (Alipay, WeChat, Douyin mini-programs and the web).
export { createClient, MinibaseClient, FC_API } from './client.js'
export { Collection, Database, DocumentRef, Query } from './db.js'
export { Files } from './files.js'
export { Watcher } from './watch.js'
export { alipaySocket, base64Decode, frameText, socketFor, webSocket, wxStyleSocket } from './sockets.js'
export { CODE_STATUS, MinibaseError, isCredentialsError, parseResponse } from './errors.js'
export { backoffDelay, isRetryable, isRetrySafe, parseRetryAfter, withRetry } from './retry.js'
export {
  authorization,
  canonicalResource,
  formatHttpDate,
  signRequest,
  signString,
  signStringAsync,
  stringToSign,
} from './signer.js'
export { base64Encode, contentMd5, hex, hmacSha256, md5, sha256, utf8Decode, utf8Encode } from './crypto.js'
export {
  alipayStorage,
  douyinStorage,
  memoryStorage,
  storageFor,
  webStorage,
  wechatStorage,
} from './storage.js'
export {
  alipayTransport,
  detectPlatform,
  douyinTransport,
  fetchTransport,
  hostApi,
  transportFor,
  wechatTransport,
} from './transports.js'
