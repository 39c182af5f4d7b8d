var app = getApp()

Page({
  data: {
    todos: [],
    left: 0,
    hasCompleted: false,
    loggedIn: false,
    loading: true,
    busy: false,
    error: '',
  },

  // Also after coming back from the add-todo page.
  onShow: function () {
    this.load()
  },

  onPullDownRefresh: function () {
    this.load().then(function () {
      my.stopPullDownRefresh()
    })
  },

  load: function () {
    var self = this
    self.setData({ loading: true, error: '' })
    return app
      .ensureLogin()
      .then(function () {
        self.setData({ loggedIn: true })
        return app.loadTodos()
      })
      .then(function (todos) {
        self.show(todos)
      })
      .catch(function (e) {
        self.setData({ loggedIn: app.mb.isLoggedIn, error: app.errorMessage(e) })
      })
      .then(function () {
        self.setData({ loading: false })
      })
  },

  show: function (todos) {
    var left = todos.filter(function (t) {
      return !t.completed
    }).length
    this.setData({ todos: todos, left: left, hasCompleted: left < todos.length })
  },

  // Runs one change, then shows the server's list again (and the error, if any).
  change: function (work) {
    var self = this
    var error = ''
    self.setData({ busy: true, error: '' })
    return Promise.resolve()
      .then(work)
      .catch(function (e) {
        error = app.errorMessage(e)
      })
      .then(function () {
        return app.loadTodos()
      })
      .then(function (todos) {
        // After a refused toggle the checkboxes must be drawn again from the data.
        if (error) self.setData({ todos: [] })
        self.show(todos)
      })
      .catch(function (e) {
        error = error || app.errorMessage(e)
      })
      .then(function () {
        self.setData({ busy: false, error: error })
      })
  },

  onTodoChanged: function (e) {
    var checked = e.detail.value // ids of the checked todos
    var changed = this.data.todos.filter(function (t) {
      return (checked.indexOf(t.id) >= 0) !== !!t.completed
    })
    return this.change(function () {
      return Promise.all(
        changed.map(function (t) {
          return app.todos().doc(t.id).update({ set: { completed: !t.completed } })
        })
      )
    })
  },

  onDelete: function (e) {
    var id = (e.currentTarget || e.target).dataset.id
    return this.change(function () {
      return app.todos().doc(id).remove()
    })
  },

  clearCompleted: function () {
    return this.change(function () {
      return app.mb.callFunction('clearCompleted', {}) // functions.py on the server
    })
  },

  addTodo: function () {
    my.navigateTo({ url: '../add-todo/add-todo' })
  },
})
