// The `files` function (docs/http-api.md): signed upload/download URLs, stat, list, remove.
// Paths are relative to the caller's own area unless they start with a shared area.
import { MinibaseError } from './errors.js'

const MAX_BATCH = 100 // paths in one downloadUrls call
const FILE_ID_PREFIX = 'mb://'

function isBlob(v) {
  return typeof Blob !== 'undefined' && v instanceof Blob
}

function readLocalFile(client, filePath) {
  const api = client._host
  const fs = api && typeof api.getFileSystemManager === 'function' ? api.getFileSystemManager() : null
  if (!fs) {
    return Promise.reject(
      new MinibaseError('InvalidArgument', 'a string is a local file path, which only mini-programs can read: pass bytes or a Blob', 400),
    )
  }
  return new Promise((resolve, reject) => {
    fs.readFile({
      filePath,
      success: (r) => resolve(r.data),
      fail: (e) => reject(new MinibaseError('InvalidArgument', 'cannot read ' + filePath + ': ' + ((e && (e.errMsg || e.errorMessage)) || 'error'), 400)),
    })
  })
}

function page(answer) {
  return { data: answer && Array.isArray(answer.data) ? answer.data : [], next: answer && answer.next != null ? answer.next : null }
}

export class Files {
  constructor(client) {
    this._client = client
  }

  async _call(event) {
    return this._client.invoke('files', event)
  }

  /**
   * Upload `content` to `path`: bytes (ArrayBuffer, typed array), a Blob/File (web), or in
   * mini-programs a local file path (string, or `{filePath}`) read with the host's file
   * system manager. Asks for a signed URL (op `uploadUrl`), then sends the bytes with
   * exactly the method and headers the server returned. Resolves to `{path, size, contentType}`.
   */
  async upload(path, content, options) {
    const o = options || {}
    let body = content
    if (typeof body === 'string') body = await readLocalFile(this._client, body)
    else if (body && typeof body === 'object' && typeof body.filePath === 'string') body = await readLocalFile(this._client, body.filePath)
    let size
    let contentType = o.contentType
    if (isBlob(body)) {
      size = body.size
      contentType = contentType || body.type || undefined
    } else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
      size = body.byteLength
    } else {
      throw new MinibaseError('InvalidArgument', 'upload takes bytes (ArrayBuffer, Uint8Array), a Blob, or a local file path', 400)
    }
    contentType = contentType || 'application/octet-stream'
    const target = (await this._call({ op: 'uploadUrl', path, contentType, size })).data
    if (!target || typeof target.url !== 'string') throw new MinibaseError('Internal', 'uploadUrl answered without a url', 500)
    await this._client._raw({
      url: this._client._absolute(target.url),
      method: target.method || 'PUT',
      headers: Object.assign({}, target.headers || {}),
      body,
    })
    const done = { path, size, contentType }
    if (typeof target.fileId === 'string') done.fileId = target.fileId
    return done
  }

  _link(d) {
    return d && typeof d.url === 'string' ? Object.assign({}, d, { url: this._client._absolute(d.url) }) : d
  }

  /**
   * A download URL: `{url, expiresAt}` (the url is made absolute). In a public area it is
   * stable and `expiresAt` is null. `options.thumb` ("200x200", one of `[files.thumbs] sizes`)
   * asks for a thumbnail. `path` may be a file id (`mb://…`).
   */
  async downloadUrl(path, options) {
    const e = { op: 'downloadUrl', path }
    if (options && options.thumb != null) e.thumb = options.thumb
    return this._link((await this._call(e)).data)
  }

  /**
   * Download URLs for many paths or file ids in one call per 100: one entry per path, in
   * order, `{path, fileId, url, expiresAt}` or `{path, error: {code, message}}` for one that
   * is missing or forbidden (the others still get theirs).
   */
  async downloadUrls(paths, options) {
    if (!Array.isArray(paths)) throw new MinibaseError('InvalidArgument', 'downloadUrls takes an array of paths', 400)
    const chunks = []
    for (let i = 0; i < paths.length; i += MAX_BATCH) chunks.push(paths.slice(i, i + MAX_BATCH))
    const answers = await Promise.all(
      chunks.map((chunk) => {
        const e = { op: 'downloadUrls', paths: chunk }
        if (options && options.thumb != null) e.thumb = options.thumb
        return this._call(e)
      }),
    )
    const out = []
    for (const a of answers) for (const item of (a && a.data) || []) out.push(this._link(item))
    return out
  }

  /**
   * Every file id (`mb://…` string) found in `docs` (documents, arrays, nested objects)
   * resolved to a URL in as few calls as possible: `{[fileId]: url}`; an id that cannot
   * be read (missing, forbidden) is left out. `options.thumb` as for `downloadUrl`.
   */
  async resolveFileIds(docs, options) {
    const ids = []
    const seen = new Set()
    const walk = (v, depth) => {
      if (depth > 32) return
      if (typeof v === 'string') {
        if (v.indexOf(FILE_ID_PREFIX) === 0 && !seen.has(v)) {
          seen.add(v)
          ids.push(v)
        }
      } else if (Array.isArray(v)) {
        for (const x of v) walk(x, depth + 1)
      } else if (v && typeof v === 'object') {
        for (const k of Object.keys(v)) walk(v[k], depth + 1)
      }
    }
    walk(docs, 0)
    const urls = {}
    if (!ids.length) return urls
    const links = await this.downloadUrls(ids, options)
    links.forEach((link, i) => {
      if (link && typeof link.url === 'string') urls[ids[i]] = link.url
    })
    return urls
  }

  /** `{path, size, contentType, updated}` or null. */
  async stat(path) {
    return (await this._call({ op: 'stat', path })).data
  }

  /** A page of stat objects under `prefix`: `{data, next}`. */
  async list(options) {
    const o = options || {}
    const e = { op: 'list' }
    if (o.prefix !== undefined) e.prefix = o.prefix
    if (o.limit !== undefined) e.limit = o.limit
    if (o.cursor != null) e.cursor = o.cursor
    return page(await this._call(e))
  }

  async remove(path) {
    await this._call({ op: 'remove', path })
    return null
  }
}
