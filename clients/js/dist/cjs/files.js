'use strict'
// Generated from src/files.js by scripts/build.mjs: do not edit.
// The `files` function (docs/http-api.md): signed upload/download URLs, stat, list, remove.
// Paths are relative to the caller's own area unless they start with a shared area.
const { MinibaseError } = require('./errors.js')

const MAX_BATCH = 100 // paths in one downloadUrls call
const TYPES = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', mp4: 'video/mp4', mp3: 'audio/mpeg', pdf: 'application/pdf', txt: 'text/plain' }
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

/** A local file's size from the host's file system manager; undefined where it cannot tell. */
function localFileSize(host, filePath) {
  const fs = host && typeof host.getFileSystemManager === 'function' ? host.getFileSystemManager() : null
  if (!fs || typeof fs.getFileInfo !== 'function') return Promise.resolve(undefined)
  return new Promise((resolve) => {
    fs.getFileInfo({ filePath, success: (r) => resolve(r && typeof r.size === 'number' ? r.size : undefined), fail: () => resolve(undefined) })
  })
}

/** The error a refused form upload answered: minibase's envelope, S3's XML, or the status. */
function uploadRefused(status, data) {
  const text = typeof data === 'string' ? data : ''
  try {
    const body = JSON.parse(text)
    if (body && body.error && typeof body.error.code === 'string') {
      return new MinibaseError(body.error.code, String(body.error.message || ''), status, body.error.requestId, body.error)
    }
  } catch (e) {
    // not JSON: S3's XML, or nothing
  }
  const code = /<Code>([^<]+)<\/Code>/.exec(text)
  return new MinibaseError(status === 413 ? 'PayloadTooLarge' : 'HttpError', 'the upload was refused (HTTP ' + status + (code ? ', ' + code[1] : '') + ')', status)
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
   * mini-programs a local file path (string, or `{filePath}`). A local file path goes as a
   * form upload (op `uploadForm`, then the host's `uploadFile`: a multipart POST the server
   * streams to storage, without reading the file into memory), and so does a Blob on the
   * web (`FormData`); bytes go as a PUT to a signed URL (op `uploadUrl`). `options.form`
   * (true/false) overrides the choice. Resolves to `{path, size, contentType, fileId}`.
   */
  async upload(path, content, options) {
    const o = Object.assign({}, options)
    const filePath = typeof content === 'string' ? content : content && typeof content === 'object' && typeof content.filePath === 'string' ? content.filePath : null
    const form = o.form !== undefined ? !!o.form : filePath !== null || isBlob(content)
    if (filePath !== null && !o.contentType) {
      const ext = (filePath.split('?')[0].split('.').pop() || '').toLowerCase()
      o.contentType = TYPES[ext] || 'application/octet-stream'
    }
    if (form && filePath !== null && this._client._host && typeof this._client._host.uploadFile === 'function') {
      return this._formOrPut(path, o, () => this._uploadFile(path, filePath, o), () => readLocalFile(this._client, filePath))
    }
    // A FormData body needs fetch (the web transport); mini-program request APIs cannot send one.
    if (form && isBlob(content) && typeof FormData !== 'undefined' && this._client.transport.name === 'fetch') {
      return this._formOrPut(path, o, () => this._uploadBlob(path, content, o), () => content)
    }
    return this._uploadPut(path, filePath !== null ? await readLocalFile(this._client, filePath) : content, o)
  }

  /** Form uploads where the server offers them; the PUT where it says to use that instead. */
  async _formOrPut(path, o, sendForm, readBytes) {
    try {
      return await sendForm()
    } catch (e) {
      if (!(e instanceof MinibaseError) || !e.details || e.details.fallback !== 'uploadUrl') throw e
    }
    return this._uploadPut(path, await readBytes(), o)
  }

  async _form(path, contentType, size) {
    const e = { op: 'uploadForm', path, contentType }
    if (size !== undefined) e.size = size
    const target = (await this._call(e)).data
    if (!target || typeof target.url !== 'string') throw new MinibaseError('Internal', 'uploadForm answered without a url', 500)
    return target
  }

  _done(path, size, contentType, target) {
    const done = { path, size, contentType }
    if (typeof target.fileId === 'string') done.fileId = target.fileId
    return done
  }

  /** A mini-program's local file through the host's own multipart upload (`uploadFile`). */
  async _uploadFile(path, filePath, o) {
    const host = this._client._host
    const contentType = o.contentType
    const size = await localFileSize(host, filePath)
    const target = await this._form(path, contentType, size)
    const url = this._client._absolute(target.url)
    const major = contentType.split('/')[0]
    const res = await new Promise((resolve, reject) => {
      host.uploadFile({
        url,
        filePath,
        name: target.name,
        fileName: target.name, // Alipay names the file field fileName
        fileType: major === 'video' || major === 'audio' ? major : 'image', // Alipay requires one of these
        formData: target.formData || {},
        header: {},
        success: resolve,
        fail: (e) => reject(new MinibaseError('NetworkError', 'uploadFile failed: ' + ((e && (e.errMsg || e.errorMessage)) || 'error'), 0)),
      })
    })
    const status = res.statusCode !== undefined ? res.statusCode : res.status
    if (!(status >= 200 && status < 300)) throw uploadRefused(status, res.data)
    return this._done(path, size, contentType, target)
  }

  /** A Blob on the web: a `FormData` POST. */
  async _uploadBlob(path, blob, o) {
    const contentType = o.contentType || blob.type || 'application/octet-stream'
    const target = await this._form(path, contentType, blob.size)
    const body = new FormData()
    const fields = target.formData || {}
    for (const k of Object.keys(fields)) body.append(k, fields[k])
    body.append(target.name, blob) // the file last: S3 and OSS ignore fields after it
    await this._client._raw({ url: this._client._absolute(target.url), method: 'POST', headers: {}, body })
    return this._done(path, blob.size, contentType, target)
  }

  /** Bytes (or a Blob) as a PUT to a signed URL (op `uploadUrl`). */
  async _uploadPut(path, body, o) {
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

module.exports = {
  Files: Files,
}
