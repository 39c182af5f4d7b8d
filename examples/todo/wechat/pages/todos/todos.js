// The list: tick, edit, filter, a picture per todo, delete, clear completed, log out.
// The same file in the Alipay, WeChat and Douyin apps: host calls go through app.api.
var app = getApp()

var FILTERS = {
  all: function () {
    return true
  },
  active: function (t) {
    return !t.completed
  },
  completed: function (t) {
    return !!t.completed
  },
}

Page({
  data: {
    todos: [],
    visible: [], // the todos the filter shows
    filter: 'all',
    left: 0,
    hasCompleted: false,
    user: '',
    loggedIn: false,
    loading: true,
    busy: false,
    error: '',
    editing: '', // id of the todo whose title is being edited
    draft: '',
  },

  // Also after coming back from the add-todo page.
  onShow: function () {
    this.load()
  },

  // A hidden page needs no live updates: onShow loads the list again anyway.
  onHide: function () {
    this.unwatch()
  },

  onUnload: function () {
    this.unwatch()
  },

  onPullDownRefresh: function () {
    var api = app.api
    this.load().then(function () {
      api.stopPullDownRefresh()
    })
  },

  load: function () {
    var self = this
    self.setData({ loading: true, error: '' })
    return app
      .ensureLogin()
      .then(function () {
        self.setData({ loggedIn: true, user: app.userName() })
        return app.loadTodos()
      })
      .then(function (todos) {
        self.loaded(todos)
        self.watch()
      })
      .catch(function (e) {
        if (e.code === 'LoginNeeded') {
          app.loginReason = e.message // for the login page (a URL query is decoded differently per platform)
          return app.api.reLaunch({ url: '/pages/login/login' })
        }
        self.setData({ loggedIn: app.mb.isLoggedIn, error: app.errorMessage(e) })
      })
      .then(function () {
        self.setData({ loading: false })
      })
  },

  // Changes made elsewhere (the web page, another phone) show here as they happen.
  watch: function () {
    var self = this
    if (self.live) return
    self.live = app.watchTodos(
      function (snapshot) {
        self.applyChanges(snapshot)
      },
      function (e) {
        self.live = null
        // The session ended: load() logs in again (as calls do) and watches again.
        if (e.code === 'Unauthenticated') return self.load()
        self.setData({ error: 'Live updates stopped: ' + app.errorMessage(e) })
      }
    )
  },

  unwatch: function () {
    if (this.live) this.live.close()
    this.live = null
  },

  // Each change goes into the list the page holds, unless the page already has a newer
  // version of that todo (from its own request's answer).
  applyChanges: function (snapshot) {
    var self = this
    var gone = (self.gone = self.gone || {})
    var list = (self.items || []).slice()
    if (snapshot.type === 'init') {
      // An init may arrive after this page's own requests already showed newer versions
      // (it is the result when the watch started): per todo the newer version wins.
      var held = {}
      list.forEach(function (t) {
        held[t.id] = t
      })
      list = snapshot.docs
        .filter(function (d) {
          return !gone[d.id]
        })
        .map(function (d) {
          var mine = held[d.id]
          return mine && mine._version > d._version ? mine : d
        })
    } else {
      snapshot.docChanges.forEach(function (c) {
        var at = -1
        list.forEach(function (t, i) {
          if (t.id === c.id) at = i
        })
        if (c.dataType === 'remove') {
          gone[c.id] = true
          if (at >= 0) list.splice(at, 1)
        } else if (gone[c.id]) {
          // Removed already: a frame of an earlier edit that came late (see removed).
        } else if (at < 0) {
          list.push(c.doc)
        } else if (!(list[at]._version > c.doc._version)) {
          list[at] = c.doc
        }
      })
      list.sort(function (a, b) {
        return a._created < b._created ? -1 : a._created > b._created ? 1 : a.id < b.id ? -1 : 1
      })
    }
    self.items = list
    var seq = (self.seq = (self.seq || 0) + 1)
    return app.withThumbs(list).then(function (todos) {
      if (seq === self.seq) self.show(todos) // not over a newer list
    })
  },

  // Todos removed (here, by a frame, or by clearCompleted) are remembered: a frame of an
  // earlier edit may still be on its way, and a removal has no version to compare it with,
  // so without this the todo would come back until the removal's frame.
  removed: function (ids) {
    var gone = (this.gone = this.gone || {})
    ids.forEach(function (id) {
      gone[id] = true
    })
  },

  // A fresh load is the truth: a todo in it is alive, whatever was seen before.
  loaded: function (todos) {
    var gone = (this.gone = this.gone || {})
    todos.forEach(function (t) {
      delete gone[t.id]
    })
    this.show(todos)
  },

  show: function (todos) {
    this.items = todos
    this.seq = (this.seq || 0) + 1
    var left = todos.filter(FILTERS.active).length
    this.setData({
      todos: todos,
      visible: todos.filter(FILTERS[this.data.filter]),
      left: left,
      hasCompleted: left < todos.length,
    })
  },

  find: function (id) {
    return this.data.todos.filter(function (t) {
      return t.id === id
    })[0]
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
        if (error) self.setData({ visible: [] })
        self.loaded(todos)
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
    var changed = this.data.visible.filter(function (t) {
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

  onFilter: function (e) {
    var filter = e.currentTarget.dataset.filter
    this.setData({ filter: filter, visible: this.data.todos.filter(FILTERS[filter]) })
  },

  onEdit: function (e) {
    var todo = this.find(e.currentTarget.dataset.id)
    if (todo) this.setData({ editing: todo.id, draft: todo.title || '' })
  },

  onDraft: function (e) {
    this.setData({ draft: e.detail.value })
  },

  onCancel: function () {
    this.setData({ editing: '', draft: '' })
  },

  onSave: function () {
    var self = this
    var id = self.data.editing
    var todo = self.find(id)
    var title = self.data.draft.trim()
    if (!todo) return self.onCancel()
    if (title === todo.title) return self.onCancel()
    return self.change(function () {
      return app.rename(id, title)
    }).then(function () {
      // Refused (an empty title): the field stays open with what was typed, to fix it.
      if (!self.data.error) self.setData({ editing: '', draft: '' })
    })
  },

  onAttach: function (e) {
    var self = this
    var todo = self.find(e.currentTarget.dataset.id)
    if (!todo) return
    return app.chooseImage().then(function (filePath) {
      if (!filePath) return
      return self.change(function () {
        return app.attach(todo, filePath)
      })
    })
  },

  onDetach: function (e) {
    var todo = this.find(e.currentTarget.dataset.id)
    if (!todo || !todo.attachment) return
    return this.change(function () {
      return app.detach(todo)
    })
  },

  onDelete: function (e) {
    var id = e.currentTarget.dataset.id
    var self = this
    var todo = this.find(id) || { id: id }
    return this.change(function () {
      return app.removeTodo(todo).then(function () {
        self.removed([id])
      })
    })
  },

  clearCompleted: function () {
    var self = this
    var done = this.data.todos.filter(FILTERS.completed)
    return this.change(function () {
      return app.clearCompleted(done).then(function (r) {
        app.toast('Removed ' + r.removed + ' completed ' + (r.removed === 1 ? 'todo' : 'todos') + '.')
        // Any still there after the load that follows were not removed: the load revives them.
        self.removed(
          done.map(function (t) {
            return t.id
          })
        )
      })
    })
  },

  addTodo: function () {
    app.api.navigateTo({ url: '../add-todo/add-todo' })
  },

  onLogout: function () {
    var self = this
    self.setData({ busy: true })
    return app.logout().then(function (message) {
      self.setData({ busy: false, todos: [], visible: [], loggedIn: false })
      app.loginReason = message
      app.api.reLaunch({ url: '/pages/login/login' })
    })
  },
})
