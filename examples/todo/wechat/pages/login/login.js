// The login screen: the platform's login where the server has it set up, and the dev login
// (any name is a stable test user) where the server has that. Shown when the platform's
// login was refused, and after Log out. The same file in the Alipay, WeChat and Douyin apps.
var app = getApp()

Page({
  data: {
    platformName: '',
    reason: '', // why we are here (the server's refusal, or a log-out note)
    canPlatform: false,
    canDev: false,
    loading: true,
    busy: false,
    name: '',
    error: '',
  },

  onLoad: function () {
    this.setData({ platformName: app.platformName, reason: app.loginReason || '' })
    app.loginReason = ''
    this.load()
  },

  load: function () {
    var self = this
    self.setData({ loading: true, error: '' })
    return app
      .loginChoices()
      .then(function (c) {
        self.setData({ canPlatform: c.platform, canDev: c.dev, reason: c.reason || self.data.reason })
      })
      .catch(function (e) {
        self.setData({ error: app.errorMessage(e) })
      })
      .then(function () {
        self.setData({ loading: false })
      })
  },

  onName: function (e) {
    this.setData({ name: e.detail.value })
  },

  done: function (work) {
    var self = this
    if (self.data.busy) return
    self.setData({ busy: true, error: '' })
    return work()
      .then(function () {
        app.api.reLaunch({ url: '/pages/todos/todos' })
      })
      .catch(function (e) {
        self.setData({ error: app.errorMessage(e) })
      })
      .then(function () {
        self.setData({ busy: false })
      })
  },

  onDevLogin: function () {
    var name = this.data.name.trim()
    if (!name) return this.setData({ error: 'Type a name to log in as (for example “alice”).' })
    return this.done(function () {
      return app.loginAsDev(name)
    })
  },

  onPlatformLogin: function () {
    return this.done(function () {
      return app.loginWithPlatform()
    })
  },
})
