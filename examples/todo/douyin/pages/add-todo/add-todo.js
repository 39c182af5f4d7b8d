// Adds one todo, then goes back to the list (which reloads in its onShow).
// The same file in the Alipay, WeChat and Douyin apps.
var app = getApp()

Page({
  data: {
    title: '',
    saving: false,
    error: '',
  },

  onInput: function (e) {
    this.setData({ title: e.detail.value })
  },

  add: function () {
    var self = this
    var title = self.data.title.trim()
    if (!title) {
      self.setData({ error: 'Type what needs to be done first.' })
      return
    }
    if (self.data.saving) return
    self.setData({ saving: true, error: '' })
    return app
      .ensureLogin()
      .then(function () {
        return app.todos().add({ title: title, completed: false })
      })
      .then(function () {
        app.api.navigateBack()
      })
      .catch(function (e) {
        self.setData({ saving: false, error: app.errorMessage(e) })
      })
  },
})
