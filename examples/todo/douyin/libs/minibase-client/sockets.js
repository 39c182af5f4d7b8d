'use strict'
// Generated from src/sockets.js by scripts/build.mjs: do not edit.
// WebSocket adapters: every host's socket API normalised to
//   openSocket({url, headers, protocols}, {onOpen, onMessage(text), onClose({code, reason}), onError(message)})
//     → {send(text), close(code, reason)}
// Text frames only (the watch protocol is JSON text). Each adapter calls onClose exactly once,
// after onError too, and nothing after the app's own close().
const { MinibaseError } = require('./errors.js')
const { utf8Decode } = require('./crypto.js')

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Bytes of a base64 string (Alipay hands binary frames over as base64 text). */
function base64Decode(text) {
  const s = String(text).replace(/[^A-Za-z0-9+/]/g, '')
  const out = new Uint8Array(Math.floor((s.length * 3) / 4))
  let n = 0
  let bits = 0
  let acc = 0
  for (let i = 0; i < s.length; i++) {
    acc = (acc << 6) | B64.indexOf(s.charAt(i))
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[n++] = (acc >> bits) & 0xff
    }
  }
  return out.subarray(0, n)
}

function isBinary(data) {
  return typeof ArrayBuffer !== 'undefined' && (data instanceof ArrayBuffer || ArrayBuffer.isView(data) || Object.prototype.toString.call(data) === '[object ArrayBuffer]')
}

/** A received frame as text, whatever the host wrapped it in. */
function frameText(res) {
  let data = res && typeof res === 'object' && 'data' in res ? res.data : res
  let isBuffer = !!(res && res.isBuffer)
  // Alipay: some base libraries nest the frame as {data: {data, isBuffer}}.
  if (data && typeof data === 'object' && !isBinary(data) && 'data' in data) {
    isBuffer = isBuffer || !!data.isBuffer
    data = data.data
  }
  if (data == null) return ''
  if (isBinary(data)) return utf8Decode(data)
  if (isBuffer) return utf8Decode(base64Decode(data))
  return typeof data === 'string' ? data : JSON.stringify(data)
}

function hostMessage(e) {
  const x = e || {}
  return String(x.errMsg || x.errorMessage || x.message || (x.error !== undefined ? 'error ' + x.error : '') || 'socket error')
}

/** Guards the handlers: onClose once, nothing after it. */
function guard(handlers) {
  let closed = false
  return {
    get closed() {
      return closed
    },
    open() {
      if (!closed && handlers.onOpen) handlers.onOpen()
    },
    message(res) {
      if (!closed && handlers.onMessage) handlers.onMessage(frameText(res))
    },
    error(e) {
      if (!closed && handlers.onError) handlers.onError(hostMessage(e))
    },
    close(res) {
      if (closed) return
      closed = true
      const r = res || {}
      if (handlers.onClose) handlers.onClose({ code: typeof r.code === 'number' ? r.code : 1006, reason: String(r.reason || '') })
    },
  }
}

/** SocketTask methods (WeChat, Douyin, Alipay with multiple: true). */
function taskSocket(task, h) {
  task.onOpen(() => h.open())
  task.onMessage((res) => h.message(res))
  task.onError((e) => {
    h.error(e)
    // Not every host follows an error with a close event.
    h.close({ code: 1006, reason: hostMessage(e) })
  })
  task.onClose((res) => h.close(res))
  return {
    send(text) {
      if (!h.closed) task.send({ data: text })
    },
    close(code, reason) {
      if (h.closed) return
      h.close({ code: code || 1000, reason: reason || '' })
      try {
        task.close({ code: code || 1000, reason: reason || '' })
      } catch (e) {
        // already closed by the host
      }
    },
  }
}

/**
 * WeChat `wx.connectSocket` / Douyin `tt.connectSocket`: `{url, header, protocols}` → a
 * SocketTask (`onOpen`, `onMessage({data})`, `onError({errMsg})`, `onClose({code, reason})`,
 * `send({data})`, `close({code, reason})`). The listeners are set right after the call, as
 * the platforms ask (else onOpen may be missed).
 */
function wxStyleSocket(host, fnName) {
  return function open(req, handlers) {
    const h = guard(handlers)
    const opts = { url: req.url, header: req.headers || {}, fail: (e) => (h.error(e), h.close({ code: 1006, reason: hostMessage(e) })) }
    if (req.protocols && req.protocols.length) opts.protocols = req.protocols
    let task
    try {
      task = host.connectSocket(opts)
    } catch (e) {
      throw new MinibaseError('NetworkError', fnName + ' failed: ' + hostMessage(e), 0)
    }
    if (!task || typeof task.onMessage !== 'function') throw new MinibaseError('NetworkError', fnName + ' returned no SocketTask (base library too old)', 0)
    return taskSocket(task, h)
  }
}

/**
 * Alipay `my.connectSocket`. With `multiple: true` base libraries that have SocketTask
 * (≥ 2.3.1 in the IDE's table) return one; older ones return nothing and run a single
 * app-wide socket through `my.onSocketOpen` / `onSocketMessage` / `onSocketError` /
 * `onSocketClose`, `my.sendSocketMessage` and `my.closeSocket`. Those global listeners are
 * set before the call (their open event may come before connectSocket returns) and removed
 * with `my.offSocket*` when the socket ends. A message is `{data}` with text, or base64
 * text and `isBuffer: true`, and some base libraries nest it: `{data: {data, isBuffer}}`.
 */
function alipaySocket(host) {
  return function open(req, handlers) {
    const h = guard(handlers)
    let mode = 'pending' // 'task' | 'global'
    const g = {
      open: () => mode !== 'task' && h.open(),
      message: (res) => mode !== 'task' && h.message(res),
      error: (e) => {
        if (mode === 'task') return
        h.error(e)
        end({ code: 1006, reason: hostMessage(e) })
      },
      close: (res) => mode !== 'task' && end(res),
    }
    const globals = [
      ['onSocketOpen', 'offSocketOpen', g.open],
      ['onSocketMessage', 'offSocketMessage', g.message],
      ['onSocketError', 'offSocketError', g.error],
      ['onSocketClose', 'offSocketClose', g.close],
    ]
    const hasGlobals = typeof host.onSocketMessage === 'function'
    function unlisten() {
      for (const [, off, fn] of globals) if (typeof host[off] === 'function') host[off](fn)
    }
    function end(res) {
      unlisten()
      h.close(res)
    }
    if (hasGlobals) for (const [on, , fn] of globals) host[on](fn)
    const opts = {
      url: req.url,
      header: req.headers || {},
      multiple: true,
      fail: (e) => {
        h.error(e)
        end({ code: 1006, reason: hostMessage(e) })
      },
    }
    if (req.protocols && req.protocols.length) opts.protocols = req.protocols
    let task
    try {
      task = host.connectSocket(opts)
    } catch (e) {
      unlisten()
      throw new MinibaseError('NetworkError', 'my.connectSocket failed: ' + hostMessage(e), 0)
    }
    if (task && typeof task.onMessage === 'function') {
      mode = 'task'
      unlisten()
      return taskSocket(task, h)
    }
    if (!hasGlobals) throw new MinibaseError('NetworkError', 'my.connectSocket returned no SocketTask and my.onSocketMessage is missing', 0)
    mode = 'global'
    return {
      send(text) {
        if (!h.closed) host.sendSocketMessage({ data: text })
      },
      close() {
        if (h.closed) return
        end({ code: 1000, reason: '' })
        try {
          host.closeSocket({})
        } catch (e) {
          // already closed by the host
        }
      },
    }
  }
}

/** A WebSocket constructor with the browser API (browsers, Node ≥ 22, or any passed in). */
function webSocket(WS) {
  return function open(req, handlers) {
    const h = guard(handlers)
    let ws
    try {
      ws = req.protocols && req.protocols.length ? new WS(req.url, req.protocols) : new WS(req.url)
    } catch (e) {
      throw new MinibaseError('NetworkError', 'WebSocket failed: ' + String((e && e.message) || e), 0)
    }
    if ('binaryType' in ws) ws.binaryType = 'arraybuffer'
    ws.onopen = () => h.open()
    ws.onmessage = (ev) => h.message(ev)
    ws.onerror = () => {
      h.error({ errMsg: 'WebSocket error' })
      // A failed handshake fires no close event in some implementations (Node 20's).
      h.close({ code: 1006, reason: 'WebSocket error' })
      try {
        ws.close()
      } catch (e) {
        // already closed
      }
    }
    ws.onclose = (ev) => h.close(ev)
    return {
      send(text) {
        if (!h.closed) ws.send(text)
      },
      close(code, reason) {
        if (h.closed) return
        h.close({ code: code || 1000, reason: reason || '' })
        try {
          ws.close(code || 1000, reason || '')
        } catch (e) {
          // already closing
        }
      },
    }
  }
}

/** The socket opener for a platform, or null where there is none. */
function socketFor(platform, host, WS) {
  if (platform === 'alipay' && host && typeof host.connectSocket === 'function') return alipaySocket(host)
  if (platform === 'wechat' && host && typeof host.connectSocket === 'function') return wxStyleSocket(host, 'wx.connectSocket')
  if (platform === 'douyin' && host && typeof host.connectSocket === 'function') return wxStyleSocket(host, 'tt.connectSocket')
  const ctor = WS || (typeof WebSocket !== 'undefined' ? WebSocket : null)
  return ctor ? webSocket(ctor) : null
}

module.exports = {
  base64Decode: base64Decode,
  frameText: frameText,
  wxStyleSocket: wxStyleSocket,
  alipaySocket: alipaySocket,
  webSocket: webSocket,
  socketFor: socketFor,
}
