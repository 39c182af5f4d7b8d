// The TODO example for WeChat: the seed's two pages (list, add) on minibase.
// The SDK is the CommonJS build vendored into libs/ (node clients/js/scripts/vendor.mjs).
var minibase = require('./libs/minibase-client/index.js')
var config = require('./config.js')

var mb = minibase.createClient({ endpoint: config.endpoint, service: config.service, platform: 'wechat' })

App({
  mb: mb,

  /** Resolves once logged in: a session stored by an earlier launch counts. */
  ensureLogin: function () {
    return mb.ready.then(function () {
      if (mb.isLoggedIn) return mb.user
      // wx.login() → the server's session function.
      return mb.login(config.devUser ? { authCode: 'dev:' + config.devUser } : undefined)
    })
  },

  todos: function () {
    return mb.db.collection('todo_list')
  },

  /** All the user's todos, oldest first (logging in again if the session has ended). */
  loadTodos: function () {
    var query = this.todos().orderBy('_created', 'asc').limit(200)
    var all = []
    function next(cursor) {
      return query.get(cursor ? { cursor: cursor } : undefined).then(function (page) {
        all = all.concat(page.data)
        return page.next ? next(page.next) : all
      })
    }
    return this.ensureLogin().then(function () {
      return next(null)
    })
  },

  /** A message for the page from an SDK error. */
  errorMessage: function (e) {
    if (!e) return 'Something went wrong.'
    if (e.code === 'NetworkError') {
      return 'Cannot reach ' + config.endpoint + ' (check config.js, the server, and the domain allow-list).'
    }
    return e.message || String(e)
  },
})
