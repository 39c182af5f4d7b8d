'use strict'
// Generated from src/files.js by scripts/build.mjs: do not edit.
// The `files` function (docs/http-api.md): signed upload/download URLs, stat, list, remove.
// Paths are relative to the caller's own area unless they start with a shared area.
const { MinibaseError } = require('./errors.js')

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

class Files {
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
    return { path, size, contentType }
  }

  /** A signed download URL: `{url, expiresAt}` (the url is made absolute). */
  async downloadUrl(path) {
    const d = (await this._call({ op: 'downloadUrl', path })).data
    return d && typeof d.url === 'string' ? Object.assign({}, d, { url: this._client._absolute(d.url) }) : d
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

module.exports = {
  Files: Files,
}
