// The TODO example for Alipay: the same app as the web page (add, edit, complete, filter,
// a picture per todo, delete, clear completed, log out) on minibase.
// The SDK is the CommonJS build vendored into libs/ (node clients/js/scripts/vendor.mjs).
var minibase = require('./libs/minibase-client/index.js')
var config = require('./config.js')

var NAME_KEY = 'todo:devName' // the name typed on the dev-login screen
var LOGGED_OUT_KEY = 'todo:loggedOut' // set by Log out: no silent login at the next launch
var THUMB = '200x200' // one of [files.thumbs] sizes in minibase.toml
var TYPES = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp' }

var mb = minibase.createClient({
  endpoint: config.endpoint,
  service: config.service,
  platform: 'alipay',
  // A session ended on the server (logout elsewhere, revoked, expired, user disabled):
  // the SDK logs in again the same way, once, and the call goes through.
  relogin: function () {
    return loginOptions()
  },
})

/** How this app logs in: devUser, else the name typed on the dev-login screen, else my.getAuthCode({scopes: 'auth_base'}). */
function loginOptions() {
  if (config.devUser) return { authCode: 'dev:' + config.devUser }
  var name = mb.storage.get(NAME_KEY)
  if (name) return { authCode: 'dev:' + name }
  return {} // my.getAuthCode({scopes: 'auth_base'}) → the server's session function
}

function loginNeeded(reason) {
  var e = new Error(reason || 'Log in to see your todos.')
  e.code = 'LoginNeeded'
  return e
}

App({
  mb: mb,
  api: my,
  platformName: 'Alipay',

  /** Resolves once logged in: a session stored by an earlier launch counts. */
  ensureLogin: function () {
    var self = this
    return mb.ready.then(function () {
      if (mb.isLoggedIn) return mb.user
      var opts = loginOptions()
      if (!opts.authCode && mb.storage.get(LOGGED_OUT_KEY)) throw loginNeeded('')
      return mb.login(opts).catch(function (e) {
        if (opts.authCode || e.code === 'NetworkError') throw e
        // The platform's login was refused: the login screen says why, and offers the dev
        // login where the server has it.
        return self.loginChoices().then(
          function (c) {
            throw loginNeeded(c.reason || self.errorMessage(e))
          },
          function () {
            throw e
          }
        )
      })
    })
  },

  /** What the login screen offers: {platform, dev, reason}. */
  loginChoices: function () {
    var name = this.platformName
    return mb.providers().then(function (p) {
      var platform = p.providers.indexOf('alipay') >= 0
      var dev = p.providers.indexOf('dev') >= 0
      var reason = ''
      if (!platform) {
        var why = p.unavailable.alipay
        reason = name + ' login is not set up on this server' + (why ? ': ' + why : '') + '. '
        reason += dev
          ? 'Log in with a test name below (the server\'s dev login), or set devUser in config.js.'
          : 'Set it up there, or set devUser in config.js to use the dev login of a local server ([auth.dev]).'
      }
      return { platform: platform, dev: dev, reason: reason }
    })
  },

  loginWithPlatform: function () {
    mb.storage.remove(LOGGED_OUT_KEY)
    mb.storage.remove(NAME_KEY)
    return mb.login({})
  },

  loginAsDev: function (name) {
    return mb.login({ authCode: 'dev:' + name }).then(function (user) {
      mb.storage.set(NAME_KEY, name)
      mb.storage.remove(LOGGED_OUT_KEY)
      return user
    })
  },

  /** Ends the session (here even when the server cannot be told); resolves to a message or ''. */
  logout: function () {
    var self = this
    return mb
      .logout()
      .then(
        function () {
          return ''
        },
        function (e) {
          return 'Logged out on this phone, but the server was not told: ' + self.errorMessage(e)
        }
      )
      .then(function (message) {
        mb.storage.remove(NAME_KEY)
        mb.storage.set(LOGGED_OUT_KEY, '1')
        self.thumbs = {}
        return message
      })
  },

  userName: function () {
    return config.devUser || mb.storage.get(NAME_KEY) || (mb.user ? mb.user.uid : 'you')
  },

  todos: function () {
    return mb.db.collection('todo_list')
  },

  /** All the user's todos, oldest first, with a thumbnail URL for each picture (one call for all). */
  loadTodos: function () {
    var self = this
    var query = this.todos().orderBy('_created', 'asc').limit(200)
    var all = []
    function next(cursor) {
      return query.get(cursor ? { cursor: cursor } : undefined).then(function (page) {
        all = all.concat(page.data)
        return page.next ? next(page.next) : all
      })
    }
    return this.ensureLogin()
      .then(function () {
        return next(null)
      })
      .then(function (todos) {
        return self.withThumbs(todos)
      })
  },

  /** The todos, each with a thumbnail URL for its picture (one call for those not cached). */
  withThumbs: function (todos) {
    var paths = todos.filter(function (t) { return t.attachment }).map(function (t) { return t.attachment })
    return this.thumbUrls(paths).then(function (urls) {
      return todos.map(function (t) {
        var copy = Object.assign({}, t)
        if (t.attachment) copy.thumb = urls[t.attachment] || ''
        return copy
      })
    })
  },

  /**
   * Live updates (docs/realtime.md): `onChange(snapshot)` after every change to the user's
   * todos made anywhere (another phone, the web page), oldest first. Returns `{close()}`.
   */
  watchTodos: function (onChange, onError) {
    return this.todos().orderBy('_created', 'asc').watch({ onChange: onChange, onError: onError })
  },

  loginReason: '', // why the login page opens (set just before it does)

  thumbs: {}, // attachment path → {url, expiresAt}

  /**
   * Thumbnail URLs (THUMB, rendered by the server: [files.thumbs] in minibase.toml) for the
   * pictures at `paths`: `{path: url}`, '' for one that cannot be shown. The ones not cached
   * with a minute left come in one downloadUrls call.
   */
  thumbUrls: function (paths) {
    var thumbs = this.thumbs
    var now = mb.serverNow()
    var missing = paths.filter(function (path) {
      var hit = thumbs[path]
      return !(hit && (hit.expiresAt === null || Date.parse(hit.expiresAt) - now > 60000))
    })
    var fetched = missing.length ? mb.files.downloadUrls(missing, { thumb: THUMB }) : Promise.resolve([])
    return fetched.then(
      function (links) {
        links.forEach(function (link, i) {
          if (link.url) thumbs[missing[i]] = link
        })
        return collect()
      },
      function () {
        return collect()
      }
    )
    function collect() {
      var urls = {}
      paths.forEach(function (path) {
        urls[path] = thumbs[path] ? thumbs[path].url : ''
      })
      return urls
    }
  },

  /** Lets the user pick one picture; resolves to its local path, or null if cancelled. */
  chooseImage: function () {
    var api = this.api
    return new Promise(function (resolve) {
      api.chooseImage({
        count: 1,
        sourceType: ['album', 'camera'],
        success: function (res) {
          var paths = res.tempFilePaths || res.apFilePaths || []
          resolve(paths[0] || null)
        },
        fail: function () {
          resolve(null) // cancelled (or no permission): nothing to do
        },
      })
    })
  },

  /** Uploads a picked picture as the todo's attachment (replacing and removing the old one). */
  attach: function (todo, filePath) {
    var self = this
    var base = filePath.split('/').pop().replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-80) || 'image'
    var ext = (base.split('.').pop() || '').toLowerCase()
    var type = TYPES[ext] || 'image/jpeg'
    var path = 'todos/' + todo.id + '/' + base
    // A local file path: a form upload through the platform's own uploadFile.
    return mb.files
      .upload(path, filePath, { contentType: type })
      .then(function () {
        delete self.thumbs[path]
        return self.todos().doc(todo.id).update({ set: { attachment: path } })
      })
      .then(function () {
        if (todo.attachment && todo.attachment !== path) return mb.files.remove(todo.attachment)
      })
  },

  detach: function (todo) {
    return this.todos()
      .doc(todo.id)
      .update({ unset: ['attachment'] })
      .then(function () {
        return mb.files.remove(todo.attachment)
      })
  },

  /** Deletes a todo and its picture, as the web app does. */
  removeTodo: function (todo) {
    return this.todos()
      .doc(todo.id)
      .remove()
      .then(function () {
        if (todo.attachment) return mb.files.remove(todo.attachment)
      })
  },

  /** The clearCompleted function (functions.py), then the pictures of the todos it removed. */
  clearCompleted: function (done) {
    return mb.callFunction('clearCompleted', {}).then(function (r) {
      return Promise.all(
        done
          .filter(function (t) {
            return t.attachment
          })
          .map(function (t) {
            return mb.files.remove(t.attachment)
          })
      ).then(function () {
        return r
      })
    })
  },

  rename: function (id, title) {
    return mb.callFunction('rename', { id: id, title: title }) // functions.py refuses an empty title
  },

  toast: function (text) {
    this.api.showToast({ content: text })
  },

  /** A message for the page from an SDK error. */
  errorMessage: function (e) {
    if (!e) return 'Something went wrong.'
    if (e.code === 'NetworkError') {
      return 'Cannot reach ' + config.endpoint + ' (check config.js, the server, and the domain allow-list).'
    }
    if (e.code === 'RateLimited') return 'Too many requests: wait a moment and try again.'
    if (e.code === 'HttpError') return 'The server refused the request (' + this.platformName + ' gave no details). Try again.'
    var m = e.message || String(e)
    return m.charAt(0).toUpperCase() + m.slice(1)
  },
})
