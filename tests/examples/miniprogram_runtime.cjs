// A mini-program runtime for the tests, built from the platforms' documented APIs: the app's
// own files (app.js, pages, the vendored SDK) run in a fresh V8 context that holds only what
// the host gives a mini-program — `my` / `wx` / `tt`, App, Page, getApp, getCurrentPages,
// console and the timer functions, and a CommonJS `require` limited to the app's folder. No
// Node globals: no process, Buffer, TextEncoder, fetch or WebCrypto.
//
// Pages render from `page.data` through their .axml / .wxml / .ttml templates (text and
// attribute interpolation, if/elif/else, for, block, bind/catch events); the driver taps,
// types and ticks on the rendered elements, and handlers get the platforms' event objects
// ({type, target, currentTarget: {dataset}, detail}). Storage and the picked "photos"
// outlive a relaunch (a new context over the same files). Requests go over real HTTP; the
// Alipay runtime reports an HTTP status >= 400 in one of the four shapes base libraries use.
// `connectSocket` opens a real WebSocket (Node's; Node 20 needs --experimental-websocket)
// behind each platform's API: WeChat's and Douyin's SocketTask; on Alipay a SocketTask
// (`multiple: true`, shapes a and b) or, as older base libraries have it, the one app-wide
// socket of `my.onSocket*` / `my.sendSocketMessage` / `my.closeSocket` (shapes c and d),
// with a message as `{data, isBuffer}` (a, c) or nested `{data: {data, isBuffer}}` (b, d).
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const vm = require('node:vm')

const PLATFORMS = {
  alipay: { global: 'my', markup: 'axml', prefix: 'a:' },
  wechat: { global: 'wx', markup: 'wxml', prefix: 'wx:' },
  douyin: { global: 'tt', markup: 'ttml', prefix: 'tt:' },
}
// A 1×1 PNG: what chooseImage "picks".
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
)

// ------------------------------------------------------------------ template expressions

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|([A-Za-z_$][\w$]*)|(===|!==|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()[\]]))/y

function tokenize(src) {
  const out = []
  TOKEN.lastIndex = 0
  let i = 0
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break
    TOKEN.lastIndex = i
    const m = TOKEN.exec(src)
    if (!m) throw new Error(`template expression: cannot read "${src.slice(i)}" in {{${src}}}`)
    i = TOKEN.lastIndex
    if (m[1] !== undefined) out.push({ t: 'num', v: Number(m[1]) })
    else if (m[2] !== undefined) out.push({ t: 'str', v: m[2].slice(1, -1).replace(/\\(.)/g, '$1') })
    else if (m[3] !== undefined) out.push({ t: 'id', v: m[3] })
    else out.push({ t: 'op', v: m[4] })
  }
  return out
}

const BINARY = { '||': 1, '&&': 2, '==': 3, '!=': 3, '===': 3, '!==': 3, '<': 4, '>': 4, '<=': 4, '>=': 4, '+': 5, '-': 5, '*': 6, '/': 6, '%': 6 }

/** Parses a mustache expression (no calls: the templates of all three platforms forbid them). */
function parseExpression(src) {
  const toks = tokenize(src)
  let p = 0
  const peek = (v) => toks[p] && toks[p].t === 'op' && toks[p].v === v
  const expect = (v) => {
    if (!peek(v)) throw new Error(`template expression: expected "${v}" in {{${src}}}`)
    p++
  }
  function primary() {
    const tk = toks[p++]
    if (!tk) throw new Error(`template expression: unexpected end of {{${src}}}`)
    if (tk.t === 'num' || tk.t === 'str') return { k: 'lit', v: tk.v }
    if (tk.t === 'id') {
      const lits = { true: true, false: false, null: null, undefined: undefined }
      return tk.v in lits ? { k: 'lit', v: lits[tk.v] } : { k: 'var', v: tk.v }
    }
    if (tk.v === '(') {
      const e = ternary()
      expect(')')
      return e
    }
    if (tk.v === '[') {
      const items = []
      while (!peek(']')) {
        items.push(ternary())
        if (!peek(']')) expect(',')
      }
      p++
      return { k: 'arr', items }
    }
    if (tk.v === '!' || tk.v === '-' || tk.v === '+') return { k: 'un', op: tk.v, e: postfix(primary()) }
    throw new Error(`template expression: unexpected "${tk.v}" in {{${src}}}`)
  }
  function postfix(e) {
    for (;;) {
      if (peek('.')) {
        p++
        const tk = toks[p++]
        if (!tk || tk.t !== 'id') throw new Error(`template expression: a name must follow "." in {{${src}}}`)
        e = { k: 'get', o: e, key: { k: 'lit', v: tk.v } }
      } else if (peek('[')) {
        p++
        const key = ternary()
        expect(']')
        e = { k: 'get', o: e, key }
      } else if (peek('(')) {
        throw new Error(`template expression: function calls are not allowed in templates: {{${src}}}`)
      } else return e
    }
  }
  function binary(min) {
    let left = postfix(primary())
    for (;;) {
      const tk = toks[p]
      const prec = tk && tk.t === 'op' ? BINARY[tk.v] : undefined
      if (prec === undefined || prec < min) return left
      p++
      left = { k: 'bin', op: tk.v, l: left, r: binary(prec + 1) }
    }
  }
  function ternary() {
    const c = binary(1)
    if (!peek('?')) return c
    p++
    const a = ternary()
    expect(':')
    return { k: 'if', c, a, b: ternary() }
  }
  const e = ternary()
  if (p !== toks.length) throw new Error(`template expression: unexpected "${toks[p].v}" in {{${src}}}`)
  return e
}

function evaluate(e, scope) {
  switch (e.k) {
    case 'lit':
      return e.v
    case 'var':
      return scope(e.v)
    case 'arr':
      return e.items.map((i) => evaluate(i, scope))
    case 'get': {
      const o = evaluate(e.o, scope)
      return o == null ? undefined : o[evaluate(e.key, scope)]
    }
    case 'un': {
      const v = evaluate(e.e, scope)
      return e.op === '!' ? !v : e.op === '-' ? -v : +v
    }
    case 'if':
      return evaluate(e.c, scope) ? evaluate(e.a, scope) : evaluate(e.b, scope)
    case 'bin': {
      if (e.op === '&&') return evaluate(e.l, scope) && evaluate(e.r, scope)
      if (e.op === '||') return evaluate(e.l, scope) || evaluate(e.r, scope)
      const l = evaluate(e.l, scope)
      const r = evaluate(e.r, scope)
      // prettier-ignore
      switch (e.op) {
        case '==': return l == r // eslint-disable-line eqeqeq
        case '!=': return l != r // eslint-disable-line eqeqeq
        case '===': return l === r
        case '!==': return l !== r
        case '<': return l < r
        case '>': return l > r
        case '<=': return l <= r
        case '>=': return l >= r
        case '+': return l + r
        case '-': return l - r
        case '*': return l * r
        case '/': return l / r
        case '%': return l % r
      }
    }
  }
  throw new Error('bad expression node ' + e.k)
}

/** A text with {{…}}: a function of the scope; a lone {{expr}} keeps its value's type. */
function interpolation(text) {
  const parts = []
  let i = 0
  for (;;) {
    const a = text.indexOf('{{', i)
    if (a < 0) break
    const b = text.indexOf('}}', a)
    if (b < 0) throw new Error(`unclosed {{ in "${text}"`)
    if (a > i) parts.push(text.slice(i, a))
    parts.push(parseExpression(text.slice(a + 2, b)))
    i = b + 2
  }
  if (i < text.length) parts.push(text.slice(i))
  if (parts.length === 1 && typeof parts[0] !== 'string') {
    const only = parts[0]
    return (scope) => evaluate(only, scope)
  }
  return (scope) =>
    parts
      .map((x) => {
        if (typeof x === 'string') return x
        const v = evaluate(x, scope)
        return v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)
      })
      .join('')
}

// ------------------------------------------------------------------------ template parsing

/** Parses the markup into {tag, attrs: [[name, value|true]], children} / {text}. */
function parseMarkup(src, file) {
  const root = { tag: '#root', attrs: [], children: [] }
  const stack = [root]
  let i = 0
  const fail = (msg) => {
    const line = src.slice(0, i).split('\n').length
    throw new Error(`${file}:${line}: ${msg}`)
  }
  while (i < src.length) {
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i)
      if (end < 0) fail('unclosed comment')
      i = end + 3
    } else if (src.startsWith('</', i)) {
      const m = /^<\/([\w-]+)\s*>/.exec(src.slice(i))
      if (!m) fail('bad closing tag')
      const top = stack.pop()
      if (!top || top.tag !== m[1]) fail(`</${m[1]}> closes <${top && top.tag}>`)
      i += m[0].length
    } else if (src[i] === '<') {
      const m = /^<([\w-]+)/.exec(src.slice(i))
      if (!m) fail('bad tag')
      i += m[0].length
      const el = { tag: m[1], attrs: [], children: [] }
      for (;;) {
        const ws = /^\s*/.exec(src.slice(i))[0]
        i += ws.length
        if (src.startsWith('/>', i)) {
          i += 2
          stack[stack.length - 1].children.push(el)
          break
        }
        if (src[i] === '>') {
          i++
          stack[stack.length - 1].children.push(el)
          stack.push(el)
          break
        }
        const a = /^([\w:.-]+)/.exec(src.slice(i))
        if (!a) fail(`bad attribute in <${el.tag}>`)
        i += a[0].length
        if (src[i] === '=') {
          const q = src[i + 1]
          if (q !== '"' && q !== "'") fail(`attribute ${a[1]} needs a quoted value`)
          const end = src.indexOf(q, i + 2)
          if (end < 0) fail(`unclosed value of ${a[1]}`)
          el.attrs.push([a[1], src.slice(i + 2, end)])
          i = end + 1
        } else {
          el.attrs.push([a[1], true])
        }
      }
    } else {
      // Text up to the next tag; a "<" inside {{…}} is part of an expression.
      let j = i
      while (j < src.length && src[j] !== '<') {
        if (src.startsWith('{{', j)) {
          const end = src.indexOf('}}', j)
          if (end < 0) fail('unclosed {{')
          j = end + 2
        } else j++
      }
      const text = src.slice(i, j)
      if (text.trim()) stack[stack.length - 1].children.push({ text })
      i = j
    }
  }
  if (stack.length !== 1) fail(`<${stack[stack.length - 1].tag}> is not closed`)
  return compile(root, file)
}

/** Precompiles directives, interpolations and event bindings of a parsed tree. */
function compile(node, file) {
  if (node.text !== undefined) return { text: interpolation(node.text.replace(/\s+/g, ' ')) }
  const out = { tag: node.tag, attrs: [], events: {}, dir: {}, children: node.children.map((c) => compile(c, file)) }
  for (const [name, value] of node.attrs) {
    const v = value === true ? () => true : interpolation(value)
    out.attrs.push([name, v, value])
  }
  return out
}

function camel(s) {
  return s.replace(/-([a-z])/g, (m, c) => c.toUpperCase())
}

// --------------------------------------------------------------------------------- runtime

class Runtime {
  /**
   * @param {object} o  platform, dir (the app), endpoint, shape ('a'..'d', Alipay only),
   *                    log (print the app's console)
   */
  constructor(o) {
    this.platform = o.platform
    this.spec = PLATFORMS[o.platform]
    if (!this.spec) throw new Error('unknown platform ' + o.platform)
    this.dir = path.resolve(o.dir)
    this.endpoint = o.endpoint
    this.shape = o.shape || 'a'
    this.log = !!o.log
    this.storage = new Map() // survives relaunches, as the host's storage does
    this.tempFiles = new Map() // path → bytes (picked photos)
    this.online = true
    this.clockOffset = 0 // ms the phone's clock is off
    this.timeScale = 0.05 // timers run 20× faster: the SDK's backoff stays short in CI
    this.requests = [] // every request the app made: {url, method, status}
    this.sockets = [] // every socket the app opened: {url, header, state, sent, received}
    this.toasts = []
    this.codeLogins = 0
    this.templates = new Map()
    this.ctx = null
  }

  // ---------------------------------------------------------------- the sandbox

  launch() {
    if (this.ctx) this._teardown()
    this.launches = (this.launches || 0) + 1
    this.globalSocket = { current: null, listeners: { Open: [], Message: [], Error: [], Close: [] } }
    this.pending = 0
    this.timers = new Map()
    this.nextTimer = 1
    this.stack = []
    this.pageDefs = new Map()
    this.modules = new Map()
    this.appInstance = null
    this.errors = []
    const ctx = vm.createContext(Object.create(null), { name: `${this.platform} mini-program` })
    this.ctx = ctx
    const self = this
    // Values handed to the app are made in its own realm (as the host's would be).
    this.toSandbox = vm.runInContext('(function (s) { return s === undefined ? undefined : JSON.parse(s) })', ctx)
    this.bytesToSandbox = vm.runInContext('(function (n, fill) { var b = new Uint8Array(n); fill(b); return b.buffer })', ctx)
    this.clone = vm.runInContext('(function (v) { return v === undefined ? undefined : JSON.parse(JSON.stringify(v)) })', ctx)
    vm.runInContext(
      `(function (offset) {
        var Real = Date
        function SimDate() {
          var a = Array.prototype.slice.call(arguments)
          if (!(this instanceof SimDate)) return new Real(Real.now() + offset()).toString()
          return a.length ? new (Function.prototype.bind.apply(Real, [null].concat(a)))() : new Real(Real.now() + offset())
        }
        SimDate.prototype = Real.prototype
        SimDate.now = function () { return Real.now() + offset() }
        SimDate.parse = Real.parse
        SimDate.UTC = Real.UTC
        Object.defineProperty(globalThis, 'Date', { value: SimDate, writable: true, configurable: true })
      })`,
      ctx,
    )(() => self.clockOffset)
    const g = {
      console: this._console(),
      setTimeout: (fn, ms) => this._timer(fn, ms, false),
      setInterval: (fn, ms) => this._timer(fn, ms, true),
      clearTimeout: (id) => this._clearTimer(id),
      clearInterval: (id) => this._clearTimer(id),
      App: (def) => {
        if (this.appInstance) throw new Error('App() called twice')
        this.appInstance = def
      },
      getApp: () => this.appInstance,
      Page: (def) => {
        if (!this.loadingRoute) throw new Error('Page() called outside a page file')
        this.pageDefs.set(this.loadingRoute, def)
      },
      getCurrentPages: () => this.stack.map((p) => p.instance),
    }
    g[this.spec.global] = this._host()
    for (const [k, v] of Object.entries(g)) Object.defineProperty(ctx, k, { value: v, writable: true, configurable: true, enumerable: true })

    const appJson = JSON.parse(fs.readFileSync(path.join(this.dir, 'app.json'), 'utf8'))
    this._require(path.join(this.dir, 'app.js'))
    if (!this.appInstance) throw new Error('app.js did not call App()')
    for (const route of appJson.pages) {
      this.loadingRoute = route
      this._require(path.join(this.dir, route + '.js'))
      this.loadingRoute = null
      if (!this.pageDefs.has(route)) throw new Error(`${route}.js did not call Page()`)
      this._template(route) // parse (and check) every template at launch
    }
    this.pages = appJson.pages
    const opts = this.toSandbox(JSON.stringify({ path: appJson.pages[0], query: {}, scene: 1001 }))
    if (typeof this.appInstance.onLaunch === 'function') this._call(() => this.appInstance.onLaunch(opts))
    if (typeof this.appInstance.onShow === 'function') this._call(() => this.appInstance.onShow(opts))
    this._open(appJson.pages[0], {})
  }

  /** Evaluates a script in the sandbox (for the self-checks of what it holds). */
  evaluate(code) {
    return vm.runInContext(code, this.ctx)
  }

  /** Ends the app for good: its sockets are closed and no timer of it runs again. */
  shutdown() {
    this.stopped = true
    this._teardown()
  }

  _teardown() {
    this.dropSockets()
    for (const t of this.timers.values()) (t.repeat ? clearInterval : clearTimeout)(t.handle)
    this.timers.clear()
    this.ctx = null
  }

  _console() {
    const out = (level) => (...args) => {
      if (level === 'error') this.errors.push(args.map(String).join(' '))
      if (this.log) console.error(`[${this.platform} ${level}]`, ...args)
    }
    return { log: out('log'), info: out('info'), warn: out('warn'), error: out('error'), debug: out('debug') }
  }

  _timer(fn, ms, repeat) {
    if (typeof fn !== 'function') throw new TypeError('setTimeout needs a function')
    const id = this.nextTimer++
    if (this.stopped) return id
    const delay = Math.max(0, Number(ms) || 0) * this.timeScale
    // A timer due within a second (app time) keeps the app busy; a later one (a live
    // stream's watchdog, a renewal in minutes) does not: idle() would never come.
    const counts = !repeat && (Number(ms) || 0) < 1000
    const run = () => {
      if (!repeat) {
        this.timers.delete(id)
        if (counts) this.pending--
      }
      this._call(fn)
    }
    const handle = repeat ? setInterval(run, delay) : setTimeout(run, delay)
    if (counts) this.pending++
    this.timers.set(id, { handle, repeat, counts })
    return id
  }

  _clearTimer(id) {
    const t = this.timers.get(id)
    if (!t) return
    if (t.repeat) clearInterval(t.handle)
    else {
      clearTimeout(t.handle)
      if (t.counts) this.pending--
    }
    this.timers.delete(id)
  }

  /** Runs app code; an exception in it is what the platform would log: kept and reported. */
  _call(fn) {
    try {
      return fn()
    } catch (e) {
      this.errors.push(String((e && e.stack) || e))
      if (this.log) console.error(`[${this.platform} uncaught]`, e)
      return undefined
    }
  }

  /** CommonJS as mini-programs have it: relative paths inside the app's folder only. */
  _require(file) {
    const full = path.resolve(file.endsWith('.js') ? file : file + '.js')
    if (!full.startsWith(this.dir + path.sep)) throw new Error(`require outside the app: ${file}`)
    if (this.modules.has(full)) return this.modules.get(full).exports
    if (!fs.existsSync(full)) throw new Error(`require: no file ${path.relative(this.dir, full)}`)
    const module = { exports: {} }
    this.modules.set(full, module)
    const code = fs.readFileSync(full, 'utf8')
    const wrapper = vm.runInContext(`(function (require, module, exports) {${code}\n})`, this.ctx, { filename: full })
    const req = (spec) => {
      if (typeof spec !== 'string' || !/^\.{1,2}\//.test(spec)) throw new Error(`require('${spec}'): only relative paths in a mini-program`)
      return this._require(path.join(path.dirname(full), spec))
    }
    wrapper(req, module, module.exports)
    return module.exports
  }

  // ------------------------------------------------------------------ the host API

  /**
   * Marks host work in flight (idle() waits for it); the returned release() ends it and says
   * whether to call the app back: not an app that has been relaunched since (its context is
   * gone, as on the platforms), whose work must not count against the new one's either.
   */
  _busy() {
    const launch = this.launches
    this.pending++
    let released = false
    return () => {
      if (released) return false
      released = true
      if (launch !== this.launches) return false
      this.pending--
      return true
    }
  }

  _host() {
    const self = this
    const p = this.platform
    const later = (fn) => {
      const release = this._busy()
      setTimeout(() => {
        if (release()) this._call(fn)
      }, 0)
    }
    const done = (o, ok, value) => {
      const v = this.toSandbox(JSON.stringify(value))
      later(() => {
        if (ok && o.success) o.success(v)
        if (!ok && o.fail) o.fail(v)
        if (o.complete) o.complete(v)
      })
    }
    const host = {
      request(o) {
        self._request(o)
      },
      navigateTo(o) {
        later(() => {
          self._navigate('push', o.url)
          if (o.success) o.success({})
        })
      },
      redirectTo(o) {
        later(() => {
          self._navigate('replace', o.url)
          if (o.success) o.success({})
        })
      },
      reLaunch(o) {
        later(() => {
          self._navigate('relaunch', o.url)
          if (o.success) o.success({})
        })
      },
      navigateBack(o) {
        later(() => {
          self._back((o && o.delta) || 1)
          if (o && o.success) o.success({})
        })
      },
      stopPullDownRefresh() {
        self.pullDownStopped = true
      },
      showToast(o) {
        self.toasts.push(p === 'alipay' ? o.content : o.title)
        done(o, true, {})
      },
      hideToast() {},
      showLoading() {},
      hideLoading() {},
      setNavigationBarTitle(o) {
        done(o, true, {})
      },
      chooseImage(o) {
        const name = `pic${self.tempFiles.size + 1}.png`
        const file = p === 'alipay' ? `https://resource/apml${name}` : p === 'wechat' ? `wxfile://tmp_${name}` : `ttfile://temp/${name}`
        self.tempFiles.set(file, PNG)
        const res = { tempFilePaths: [file], tempFiles: [{ path: file, size: PNG.length }] }
        if (p === 'alipay') res.apFilePaths = [file]
        else res.errMsg = 'chooseImage:ok'
        done(o, true, res)
      },
      uploadFile(o) {
        self._uploadFile(o)
      },
      connectSocket(o) {
        return self._connectSocket(o)
      },
      getFileSystemManager() {
        return {
          getFileInfo(o) {
            const bytes = self.tempFiles.get(o.filePath)
            if (!bytes) return done(o, false, p === 'alipay' ? { error: 10022, errorMessage: 'file not found' } : { errMsg: 'getFileInfo:fail no such file or directory ' + o.filePath })
            done(o, true, p === 'alipay' ? { size: bytes.length } : { size: bytes.length, errMsg: 'getFileInfo:ok' })
          },
          readFile(o) {
            const bytes = self.tempFiles.get(o.filePath)
            if (!bytes) return done(o, false, p === 'alipay' ? { error: 10022, errorMessage: 'file not found' } : { errMsg: 'readFile:fail no such file or directory ' + o.filePath })
            if (o.encoding) throw new Error('the SDK reads files as bytes')
            const data = self.bytesToSandbox(bytes.length, (u8) => u8.set(bytes))
            later(() => {
              if (o.success) o.success({ data })
            })
          },
        }
      },
    }
    const read = (key) => (this.storage.has(key) ? this.storage.get(key) : undefined)
    if (p === 'alipay') {
      // The app-wide socket's listeners (my.onSocketOpen & co.), as every base library has them.
      const listen = (kind) => (fn) => {
        if (typeof fn !== 'function') throw new Error(`my.onSocket${kind} takes a function`)
        self.globalSocket.listeners[kind].push(fn)
      }
      const unlisten = (kind) => (fn) => {
        const l = self.globalSocket.listeners
        l[kind] = fn === undefined ? [] : l[kind].filter((f) => f !== fn)
      }
      for (const kind of ['Open', 'Message', 'Error', 'Close']) {
        host['onSocket' + kind] = listen(kind)
        host['offSocket' + kind] = unlisten(kind)
      }
      host.sendSocketMessage = (o) => {
        const sock = self.globalSocket.current
        if (!sock || sock.state !== 'open') return done(o, false, { error: 10, errorMessage: 'the socket is not open' })
        if (o.isBuffer) throw new Error('the SDK sends text frames')
        sock.send(o.data)
        done(o, true, {})
      }
      host.closeSocket = (o) => {
        const sock = self.globalSocket.current
        if (sock) sock.close(1000, '')
        done(o || {}, true, {})
      }
      Object.assign(host, {
        getAuthCode(o) {
          self.codeLogins++
          done(o, true, { authCode: 'platform-code-' + self.codeLogins })
        },
        getStorageSync(o) {
          const v = read(o.key)
          return self.toSandbox(JSON.stringify({ data: v === undefined ? null : v }))
        },
        setStorageSync(o) {
          self.storage.set(o.key, self._storable(o.data))
        },
        removeStorageSync(o) {
          self.storage.delete(o.key)
        },
      })
    } else {
      Object.assign(host, {
        login(o) {
          self.codeLogins++
          const res = { code: 'platform-code-' + self.codeLogins, errMsg: 'login:ok' }
          if (p === 'douyin') Object.assign(res, { anonymousCode: 'anon', isLogin: true })
          done(o, true, res)
        },
        getStorageSync(key) {
          const v = read(key)
          return v === undefined ? '' : self.toSandbox(JSON.stringify(v))
        },
        setStorageSync(key, value) {
          self.storage.set(key, self._storable(value))
        },
        removeStorageSync(key) {
          self.storage.delete(key)
        },
      })
    }
    return host
  }

  _storable(v) {
    if (v === undefined || typeof v === 'function') throw new Error('storage takes JSON-able values')
    return JSON.parse(JSON.stringify(v))
  }

  /**
   * The platform's uploadFile: a real multipart/form-data POST of the local file (as the
   * platforms send it: the formData fields, then the file part), checked for each
   * platform's own parameter names (Alipay: fileName and a required fileType).
   */
  _uploadFile(o) {
    const p = this.platform
    const bytes = this.tempFiles.get(o.filePath)
    const name = p === 'alipay' ? o.fileName : o.name
    if (typeof o.url !== 'string' || typeof o.filePath !== 'string') throw new Error('uploadFile needs url and filePath')
    if (typeof name !== 'string' || !name) throw new Error(p === 'alipay' ? 'my.uploadFile needs fileName' : `${this.spec.global}.uploadFile needs name`)
    if (p === 'alipay' && !['image', 'video', 'audio'].includes(o.fileType)) throw new Error('my.uploadFile needs fileType: image, video or audio')
    const entry = { url: o.url, method: 'POST', status: 0, upload: true }
    this.requests.push(entry)
    const release = this._busy()
    const settle = (ok, value) => {
      setTimeout(() => {
        if (!release()) return
        const v = this.toSandbox(JSON.stringify(value))
        this._call(() => {
          if (ok && o.success) o.success(v)
          if (!ok && o.fail) o.fail(v)
          if (o.complete) o.complete(v)
        })
      }, 0)
    }
    if (!bytes) return settle(false, p === 'alipay' ? { error: 10022, errorMessage: 'file not found' } : { errMsg: 'uploadFile:fail file not found' })
    if (!this.online) return settle(false, p === 'alipay' ? { error: 12, errorMessage: 'network error' } : { errMsg: 'uploadFile:fail net::ERR_INTERNET_DISCONNECTED' })
    const form = new FormData()
    const fields = o.formData || {}
    for (const k of Object.keys(fields)) form.append(k, String(fields[k]))
    form.append(name, new Blob([bytes]), path.basename(o.filePath))
    fetch(o.url, { method: 'POST', headers: o.header || {}, body: form })
      .then(async (r) => {
        entry.status = r.status
        const data = await r.text()
        if (p === 'alipay') return settle(true, { statusCode: r.status, data, header: {} })
        return settle(true, { statusCode: r.status, data, errMsg: 'uploadFile:ok' })
      })
      .catch((e) => settle(false, p === 'alipay' ? { error: 12, errorMessage: String(e.message) } : { errMsg: 'uploadFile:fail ' + e.message }))
  }

  // ------------------------------------------------------------------ WebSocket

  /** Ends every open socket as a lost network would (code 1006 on the app's side). */
  dropSockets() {
    for (const sock of this.sockets) if (sock.state !== 'closed') sock.drop()
  }

  _connectSocket(o) {
    const p = this.platform
    if (typeof o.url !== 'string' || !/^wss?:\/\//.test(o.url)) throw new Error(`${this.spec.global}.connectSocket needs a ws:// or wss:// url, not ${o.url}`)
    if (o.headers) throw new Error(`${this.spec.global}.connectSocket takes "header", not "headers"`)
    const alipayTask = p === 'alipay' && o.multiple === true && (this.shape === 'a' || this.shape === 'b')
    const task = p !== 'alipay' || alipayTask
    if (p === 'alipay' && !task) {
      if (this.globalSocket.current && this.globalSocket.current.state !== 'closed') {
        return this._settle(o, false, { error: 2, errorMessage: 'the socket already exists' })
      }
    }
    const nested = p === 'alipay' && (this.shape === 'b' || this.shape === 'd')
    const listeners = { Open: [], Message: [], Error: [], Close: [] }
    const emit = (kind, value) => {
      const fns = task ? listeners[kind] : this.globalSocket.listeners[kind]
      if (this.stopped) return
      setTimeout(() => {
        if (sock.launch !== this.launches) return // an app that has been relaunched hears nothing
        for (const fn of fns.slice()) this._call(() => fn(this.toSandbox(JSON.stringify(value))))
      }, 0)
    }
    const sock = { url: o.url, header: o.header || {}, state: 'connecting', sent: [], received: [], launch: this.launches }
    this.sockets.push(sock)
    const failText = (m) => (p === 'alipay' ? { error: 1, errorMessage: m } : { errMsg: 'connectSocket:fail ' + m })
    const closeOnce = (code, reason) => {
      if (sock.state === 'closed') return
      sock.state = 'closed'
      release()
      emit('Close', p === 'alipay' ? { code, reason } : { code, reason, errMsg: 'closeSocket:ok' })
    }
    sock.send = (text) => {
      sock.sent.push(text)
      ws.send(text)
    }
    sock.close = (code, reason) => {
      if (sock.state === 'closed') return
      try {
        ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason || '')
      } catch (e) {
        ws.close()
      }
      closeOnce(code || 1000, reason || '')
    }
    sock.drop = () => {
      if (sock.state === 'closed') return
      try {
        ws.close()
      } catch (e) {
        // never opened
      }
      emit('Error', failText('network connection lost'))
      closeOnce(1006, 'network connection lost')
    }
    const release = this._busy() // until it opens or fails
    let ws
    if (!this.online) {
      setTimeout(() => {
        emit('Error', failText('net::ERR_INTERNET_DISCONNECTED'))
        closeOnce(1006, '')
      }, 0)
      ws = { close() {}, send() {} }
    } else {
      if (typeof WebSocket === 'undefined') throw new Error('the runtime needs WebSocket: Node >= 22, or Node 20 with --experimental-websocket')
      const init = { headers: sock.header }
      if (o.protocols) init.protocols = o.protocols
      ws = new WebSocket(o.url, init)
      ws.binaryType = 'arraybuffer'
      ws.onopen = () => {
        if (sock.state !== 'connecting') return
        sock.state = 'open'
        release()
        emit('Open', p === 'alipay' ? {} : { header: {}, errMsg: 'connectSocket:ok' })
      }
      ws.onmessage = (ev) => {
        if (sock.state !== 'open') return
        if (typeof ev.data !== 'string') throw new Error('the server sent a binary frame')
        sock.received.push(ev.data)
        const frame = p === 'alipay' ? { data: ev.data, isBuffer: false } : { data: ev.data }
        emit('Message', nested ? { data: frame } : frame)
      }
      ws.onerror = () => {
        if (sock.state === 'closed') return
        emit('Error', failText('WebSocket error'))
      }
      ws.onclose = (ev) => closeOnce(ev.code, ev.reason)
    }
    if (!task) {
      this.globalSocket.current = sock
      this._settle(o, true, {})
      return undefined // no SocketTask before base library 2.3.1 (Alipay)
    }
    this._settle(o, true, p === 'alipay' ? {} : p === 'douyin' ? { socketTaskId: this.sockets.length, errMsg: 'connectSocket:ok' } : { errMsg: 'connectSocket:ok' })
    const on = (kind) => (fn) => {
      if (typeof fn !== 'function') throw new Error(`SocketTask.on${kind} takes a function`)
      listeners[kind].push(fn)
    }
    const off = (kind) => (fn) => {
      listeners[kind] = fn === undefined ? [] : listeners[kind].filter((f) => f !== fn)
    }
    const self = this
    return {
      onOpen: on('Open'),
      onMessage: on('Message'),
      onError: on('Error'),
      onClose: on('Close'),
      offOpen: off('Open'),
      offMessage: off('Message'),
      offError: off('Error'),
      offClose: off('Close'),
      send(opts) {
        if (sock.state !== 'open') return self._settle(opts, false, failText('the socket is not open'))
        if (typeof opts.data !== 'string') throw new Error('the SDK sends text frames')
        sock.send(opts.data)
        self._settle(opts, true, {})
      },
      close(opts) {
        const c = opts || {}
        sock.close(c.code, c.reason)
        self._settle(c, true, {})
      },
    }
  }

  /** success / fail / complete of a host call, later. */
  _settle(o, ok, value) {
    const launch = this.launches
    const v = this.toSandbox(JSON.stringify(value))
    setTimeout(() => {
      if (launch !== this.launches) return
      this._call(() => {
        if (ok && o.success) o.success(v)
        if (!ok && o.fail) o.fail(v)
        if (o.complete) o.complete(v)
      })
    }, 0)
  }

  _request(o) {
    const p = this.platform
    const headers = (p === 'alipay' ? o.headers : o.header) || {}
    if (p !== 'alipay' && o.headers) throw new Error(`${this.spec.global}.request takes "header", not "headers"`)
    if (p === 'alipay' && o.header) throw new Error('my.request takes "headers", not "header"')
    const entry = { url: o.url, method: o.method || 'GET', status: 0 }
    this.requests.push(entry)
    const release = this._busy()
    const settle = (ok, value) => {
      setTimeout(() => {
        if (!release()) return
        const v = this.toSandbox(JSON.stringify(value))
        this._call(() => {
          if (ok && o.success) o.success(v)
          if (!ok && o.fail) o.fail(v)
          if (o.complete) o.complete(v)
        })
      }, 0)
    }
    if (!this.online) {
      return settle(false, p === 'alipay' ? { error: 12, errorMessage: 'network error' } : { errMsg: 'request:fail net::ERR_INTERNET_DISCONNECTED' })
    }
    let body = o.data
    if (body != null && typeof body === 'object') {
      // An ArrayBuffer from the sandbox (uploads); anything else would be form-encoded or JSON.
      if (Object.prototype.toString.call(body) !== '[object ArrayBuffer]') throw new Error('the SDK sends strings or ArrayBuffers')
      body = Buffer.from(new Uint8Array(body))
    }
    fetch(o.url, { method: entry.method, headers, body })
      .then(async (r) => {
        const h = {}
        r.headers.forEach((v, k) => (h[k] = v))
        const data = await r.text()
        entry.status = r.status
        if (p !== 'alipay') return settle(true, { statusCode: r.status, header: h, data, errMsg: 'request:ok' })
        if (r.status < 400 || this.shape === 'd') return settle(true, { status: r.status, headers: h, data })
        if (this.shape === 'a') return settle(false, { error: 19, errorMessage: 'http status error', status: r.status, headers: h, data })
        if (this.shape === 'b') return settle(false, { status: r.status, data })
        return settle(false, { error: 19, errorMessage: 'http status error' })
      })
      .catch((e) => settle(false, p === 'alipay' ? { error: 12, errorMessage: String(e.message) } : { errMsg: 'request:fail ' + e.message }))
  }

  // ------------------------------------------------------------------ pages

  _template(route) {
    if (!this.templates.has(route)) {
      const file = path.join(this.dir, `${route}.${this.spec.markup}`)
      const tree = parseMarkup(fs.readFileSync(file, 'utf8'), path.relative(this.dir, file))
      this._checkBindings(tree, route)
      this.templates.set(route, tree)
    }
    return this.templates.get(route)
  }

  /** Every directive is the platform's, and every event names a method of the page. */
  _checkBindings(node, route) {
    if (node.text) return
    for (const [name, , raw] of node.attrs) {
      const ev = this._eventOf(name)
      if (ev) {
        if (typeof raw !== 'string' || /\{\{/.test(raw)) throw new Error(`${route}: ${name} must name a method`)
        const def = this.pageDefs.get(route)
        if (!def || typeof def[raw] !== 'function') throw new Error(`${route}: ${name}="${raw}" but the page has no method ${raw}`)
      } else if (/^[\w-]+:/.test(name) && !name.startsWith(this.spec.prefix)) {
        throw new Error(`${route}: ${name} is not a ${this.platform} directive (${this.spec.prefix}…)`)
      } else if (name.startsWith(this.spec.prefix)) {
        const d = name.slice(this.spec.prefix.length)
        if (!['if', 'elif', 'else', 'for', 'for-item', 'for-index', 'key'].includes(d)) throw new Error(`${route}: unknown directive ${name}`)
      }
    }
    for (const c of node.children) this._checkBindings(c, route)
  }

  /** {name, capture: false, catch} for an event attribute of this platform, else null. */
  _eventOf(attr) {
    if (this.platform === 'alipay') {
      const m = /^(on|catch)([A-Z]\w*)$/.exec(attr)
      return m ? { name: m[2].charAt(0).toLowerCase() + m[2].slice(1), catch: m[1] === 'catch' } : null
    }
    const m = /^(bind|catch):?([a-z]\w*)$/.exec(attr)
    return m ? { name: m[2], catch: m[1] === 'catch' } : null
  }

  _open(route, query) {
    const def = this.pageDefs.get(route)
    if (!def) throw new Error(`navigation to ${route}: not a page of app.json`)
    const instance = Object.create(null)
    for (const k of Object.keys(def)) if (k !== 'data') instance[k] = def[k]
    instance.data = this.clone(def.data || {})
    instance.route = route
    const self = this
    instance.setData = function (patch, cb) {
      self._setData(instance, patch)
      if (typeof cb === 'function') setTimeout(() => self._call(cb), 0)
    }
    const page = { route, instance }
    this.stack.push(page)
    const q = this.toSandbox(JSON.stringify(query || {}))
    if (typeof instance.onLoad === 'function') this._call(() => instance.onLoad(q))
    if (typeof instance.onShow === 'function') this._call(() => instance.onShow())
    if (typeof instance.onReady === 'function') this._call(() => instance.onReady())
  }

  _setData(instance, patch) {
    if (!patch || typeof patch !== 'object') throw new Error('setData takes an object')
    const copy = this.clone(patch) // setData sends JSON across to the view: nothing else survives
    for (const key of Object.keys(copy)) {
      const parts = key.match(/[^.[\]]+/g)
      let o = instance.data
      for (let i = 0; i < parts.length - 1; i++) {
        if (o[parts[i]] == null || typeof o[parts[i]] !== 'object') o[parts[i]] = this.toSandbox(/^\d+$/.test(parts[i + 1]) ? '[]' : '{}')
        o = o[parts[i]]
      }
      o[parts[parts.length - 1]] = copy[key]
    }
  }

  _resolve(url) {
    const [pathPart, qs] = url.split('?')
    const base = this.stack.length ? path.posix.dirname(this.stack[this.stack.length - 1].route) : ''
    const route = pathPart.startsWith('/') ? pathPart.slice(1) : path.posix.normalize(path.posix.join(base, pathPart))
    const query = {}
    for (const kv of (qs || '').split('&').filter(Boolean)) {
      const [k, v] = kv.split('=')
      query[decodeURIComponent(k)] = decodeURIComponent(v || '')
    }
    return { route, query }
  }

  _navigate(how, url) {
    const { route, query } = this._resolve(url)
    if (!this.pageDefs.has(route)) throw new Error(`${how} ${url}: no page ${route} in app.json`)
    const top = this.stack[this.stack.length - 1]
    if (how === 'push') {
      if (top && top.instance.onHide) this._call(() => top.instance.onHide())
    } else if (how === 'replace') {
      this.stack.pop()
      if (top && top.instance.onUnload) this._call(() => top.instance.onUnload())
    } else {
      while (this.stack.length) {
        const p = this.stack.pop()
        if (p.instance.onUnload) this._call(() => p.instance.onUnload())
      }
    }
    this._open(route, query)
  }

  _back(delta) {
    for (let i = 0; i < delta && this.stack.length > 1; i++) {
      const p = this.stack.pop()
      if (p.instance.onUnload) this._call(() => p.instance.onUnload())
    }
    const top = this.stack[this.stack.length - 1]
    if (top.instance.onShow) this._call(() => top.instance.onShow())
  }

  // ------------------------------------------------------------------ the driver

  /** Resolves once the app is quiet: no request, socket handshake, timer due within a second or navigation pending. */
  async idle(limitMs = 15000) {
    const end = Date.now() + limitMs
    let quiet = 0
    while (quiet < 3) {
      await new Promise((r) => setImmediate(r))
      quiet = this.pending === 0 ? quiet + 1 : 0
      if (Date.now() > end) throw new Error(`the app did not settle within ${limitMs} ms (${this.pending} pending)`)
    }
    if (this.errors.length) {
      const errs = this.errors.splice(0)
      throw new Error('the app logged errors:\n' + errs.join('\n'))
    }
  }

  get route() {
    return this.stack[this.stack.length - 1].route
  }

  get page() {
    return this.stack[this.stack.length - 1].instance
  }

  /** The current page rendered from its data: a tree of {tag, attrs, dataset, events, children, text}. */
  render() {
    const top = this.stack[this.stack.length - 1]
    const data = top.instance.data
    const root = this._renderNode(this._template(top.route), (name) => data[name], null)
    return root[0]
  }

  _renderNode(node, scope, parent) {
    if (node.text) {
      const t = node.text(scope)
      return t.trim() ? [{ text: t, parent }] : []
    }
    const pre = this.spec.prefix
    const attr = (n) => node.attrs.find((a) => a[0] === n)
    const forA = attr(pre + 'for')
    if (forA) {
      const list = forA[1](scope)
      const itemName = attr(pre + 'for-item') ? attr(pre + 'for-item')[2] : 'item'
      const indexName = attr(pre + 'for-index') ? attr(pre + 'for-index')[2] : 'index'
      const out = []
      const items = Array.isArray(list) ? list : list && typeof list === 'object' ? Object.values(list) : []
      items.forEach((item, index) => {
        const inner = (n) => (n === itemName ? item : n === indexName ? index : scope(n))
        out.push(...this._renderElement(node, inner, parent, true))
      })
      return out
    }
    return this._renderElement(node, scope, parent, false)
  }

  _renderElement(node, scope, parent, inFor) {
    const pre = this.spec.prefix
    const cond = node.attrs.find((a) => a[0] === pre + 'if')
    if (cond && !cond[1](scope)) return []
    const el = { tag: node.tag, attrs: {}, dataset: {}, events: {}, children: [], parent }
    for (const [name, fn] of node.attrs) {
      if (name.startsWith(pre)) continue
      const ev = this._eventOf(name)
      if (ev) {
        el.events[ev.name] = { handler: fn(scope), catch: ev.catch }
        continue
      }
      const v = fn(scope)
      if (name.startsWith('data-')) el.dataset[camel(name.slice(5))] = v
      else el.attrs[name] = v
    }
    if (el.attrs.hidden === true || el.attrs.hidden === 'true') return []
    // Children, with if / elif / else chains among siblings.
    let chain = null // null: no chain; true: a branch was taken; false: none yet
    for (const child of node.children) {
      if (child.text) {
        chain = null
        el.children.push(...this._renderNode(child, scope, el))
        continue
      }
      const a = (n) => child.attrs.find((x) => x[0] === pre + n)
      if (a('if')) {
        const out = this._renderNode(child, scope, el)
        chain = !!child.attrs.find((x) => x[0] === pre + 'if')[1](scope)
        el.children.push(...out)
      } else if (a('elif') || a('else')) {
        if (chain === null) throw new Error(`${pre}${a('elif') ? 'elif' : 'else'} without ${pre}if in <${node.tag}>`)
        if (!chain && (a('else') || a('elif')[1](scope))) {
          chain = true
          el.children.push(...this._renderNode(child, scope, el))
        }
        if (a('else')) chain = null
      } else {
        chain = null
        el.children.push(...this._renderNode(child, scope, el))
      }
    }
    if (node.tag === 'block' || node.tag === '#root') {
      for (const c of el.children) c.parent = parent
      return node.tag === '#root' ? [el] : el.children
    }
    return [el]
  }

  /** All rendered elements matching a predicate, in document order. */
  findAll(pred, root) {
    const out = []
    const walk = (n) => {
      if (n.text !== undefined) return
      if (pred(n)) out.push(n)
      n.children.forEach(walk)
    }
    walk(root || this.render())
    return out
  }

  /** The one element matching: tag + class, and optionally its text. */
  find(selector, text, root) {
    const found = this.findAll((n) => matches(n, selector) && (text === undefined || textOf(n).includes(text)), root)
    if (found.length !== 1) {
      throw new Error(`${this.route}: ${found.length} elements match ${selector}${text !== undefined ? ` with "${text}"` : ''}\n${this.text()}`)
    }
    return found[0]
  }

  exists(selector, text, root) {
    return this.findAll((n) => matches(n, selector) && (text === undefined || textOf(n).includes(text)), root).length > 0
  }

  /** The rendered page as text (one line per text node). */
  text(root) {
    const lines = []
    const walk = (n) => {
      if (n.text !== undefined) lines.push(n.text.trim())
      else n.children.forEach(walk)
    }
    walk(root || this.render())
    return lines.join('\n')
  }

  _fire(el, name, detail) {
    let called = false
    for (let n = el; n; n = n.parent) {
      const b = n.events && n.events[name]
      if (b) {
        const fn = this.page[b.handler]
        if (typeof fn !== 'function') throw new Error(`${this.route}: no method ${b.handler}`)
        const e = this.toSandbox(
          JSON.stringify({
            type: name,
            timeStamp: Date.now(),
            target: { id: el.attrs.id || '', dataset: el.dataset },
            currentTarget: { id: n.attrs.id || '', dataset: n.dataset },
            detail: detail || {},
          }),
        )
        const page = this.page
        this._call(() => fn.call(page, e))
        called = true
        if (b.catch || name !== 'tap') break // only tap bubbles here
      }
      if (name !== 'tap') break
    }
    if (!called) throw new Error(`${this.route}: nothing handles ${name} on <${el.tag}>`)
  }

  async tap(el) {
    if (el.attrs.disabled === true || el.attrs.disabled === 'true') throw new Error(`${this.route}: <${el.tag}> "${textOf(el)}" is disabled`)
    this._fire(el, 'tap')
    await this.idle()
  }

  /** Types into an <input>: one input event with the whole value, as the platforms send it. */
  async input(el, value) {
    if (el.tag !== 'input') throw new Error('input() takes an <input>')
    this._fire(el, 'input', { value, cursor: value.length })
    await this.idle()
  }

  async confirm(el) {
    this._fire(el, 'confirm', { value: String(el.attrs.value == null ? '' : el.attrs.value) })
    await this.idle()
  }

  /** Ticks one checkbox: its checkbox-group reports the values now checked. */
  async toggle(box) {
    if (box.attrs.disabled === true) throw new Error(`${this.route}: the checkbox is disabled`)
    let group = box.parent
    while (group && group.tag !== 'checkbox-group') group = group.parent
    if (!group) throw new Error('a checkbox outside a checkbox-group')
    const values = this.findAll((n) => n.tag === 'checkbox', group)
      .filter((c) => (c === box ? !c.attrs.checked : !!c.attrs.checked))
      .map((c) => c.attrs.value)
    this._fire(group, 'change', { value: values })
    await this.idle()
  }

  async pullDown() {
    this.pullDownStopped = false
    this._call(() => this.page.onPullDownRefresh())
    await this.idle()
  }
}

function matches(n, selector) {
  const [tag, ...classes] = selector.split('.')
  if (tag && n.tag !== tag) return false
  const have = String(n.attrs.class || '').split(/\s+/)
  return classes.every((c) => have.includes(c))
}

function textOf(n) {
  if (n.text !== undefined) return n.text
  return n.children.map(textOf).join(' ').replace(/\s+/g, ' ').trim()
}

module.exports = { Runtime, PLATFORMS, PNG, parseMarkup, parseExpression, textOf }
