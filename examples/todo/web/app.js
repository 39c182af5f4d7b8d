// The TODO example's web client: plain ES modules, no build step. `./sdk` is a copy of
// the JS SDK's sources (clients/js/src; clients/js/scripts/vendor.mjs keeps it identical).
import { createClient, MinibaseError } from './sdk/index.js'

// The API is the server that serves this page; `?endpoint=http://host:port` points elsewhere.
const ENDPOINT = new URLSearchParams(location.search).get('endpoint') || location.origin
const SERVICE = 'todo-list-svc' // [app] service in minibase.toml
const NAME_KEY = 'todo:name' // the name typed at login, shown in the header
const MAX_IMAGE = 5 * 1024 * 1024

// The SDK keeps the session in localStorage, so a reload stays logged in.
const mb = createClient({ endpoint: ENDPOINT, service: SERVICE })
const todos = mb.db.collection('todo_list')

const state = {
  items: [], // the caller's todos, oldest first
  filter: 'all',
  loading: false,
  loadFailed: false,
  notice: '', // a note shown in the status line until the next request
  pending: 0, // requests in flight
  busy: new Set(), // ids of todos with a request in flight
  gone: new Set(), // ids of todos seen removed (see `loaded`)
  editing: null, // id of the todo whose title is being edited
  draft: '',
  focusEdit: false, // focus the edit field on the next render
  focusAfter: null, // id of the todo whose Edit button gets the focus back
}
const thumbs = new Map() // attachment path → {url, expiresAt, error}
let live = null // the watch that keeps state.items current (docs/realtime.md)
const THUMB = '200x200' // one of [files.thumbs] sizes in minibase.toml

const $ = (id) => document.getElementById(id)
const FILTERS = {
  all: () => true,
  active: (t) => !t.completed,
  completed: (t) => !!t.completed,
}

// ------------------------------------------------------------------ errors and busy state

function describe(err) {
  if (!(err instanceof MinibaseError)) return (err && err.message) || String(err)
  switch (err.code) {
    case 'NetworkError':
      return `Cannot reach the server at ${ENDPOINT}. Check that it is running and try again.`
    case 'RateLimited':
      return 'Too many requests: wait a moment and try again.'
    case 'Internal':
      return `The server had a problem (request ${err.requestId || 'unknown'}). Try again.`
    default: // the server's messages are plain English, e.g. what a bad title is
      return err.message.charAt(0).toUpperCase() + err.message.slice(1)
  }
}

function showError(message) {
  $('error-text').textContent = message
  $('error').hidden = false
}

function clearError() {
  $('error').hidden = true
}

/** Run one request: show progress, and any failure as a message. Resolves to true on success. */
async function run(fn, id) {
  const loggedIn = mb.isLoggedIn
  clearError()
  state.notice = ''
  state.pending++
  if (id) state.busy.add(id)
  renderStatus()
  try {
    await fn()
    return true
  } catch (e) {
    console.error(e)
    showError(describe(e))
    // The SDK forgets a session the server no longer knows (expired, logged out elsewhere).
    if (loggedIn && !mb.isLoggedIn) showLogin()
    return false
  } finally {
    state.pending--
    if (id) state.busy.delete(id)
    render()
  }
}

// ---------------------------------------------------------------------------- rendering

function renderStatus() {
  $('status').textContent = state.loading ? 'Loading your todos…' : state.pending ? 'Saving…' : state.notice
  $('list').setAttribute('aria-busy', String(state.pending > 0))
}

function render() {
  renderStatus()
  const visible = state.items.filter(FILTERS[state.filter])
  const active = document.activeElement
  // Items are updated in place (keyed by id), so an open file picker or a half-typed
  // title survives other requests finishing.
  const list = $('list')
  const nodes = visible.map((t) => renderItem(t, items.get(t.id)))
  const keep = new Set(nodes)
  for (const [id, li] of items) {
    if (!keep.has(li)) {
      li.remove()
      if (!find(id)) items.delete(id)
    }
  }
  nodes.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null)
  })

  const empty = $('empty')
  empty.hidden = state.loading || visible.length > 0
  empty.textContent = state.loadFailed
    ? 'Your todos could not be loaded. Reload the page to try again.'
    : state.items.length === 0
    ? 'Nothing to do yet. Add your first todo above.'
    : state.filter === 'active' ? 'No active todos. Well done!' : 'No completed todos yet.'

  const left = state.items.filter(FILTERS.active).length
  $('items-left').textContent = `${left} ${left === 1 ? 'item' : 'items'} left`
  for (const b of document.querySelectorAll('[data-filter]')) {
    b.setAttribute('aria-pressed', String(b.dataset.filter === state.filter))
  }
  $('clear').disabled = !state.items.some(FILTERS.completed)

  const li = items.get(state.editing || state.focusAfter)
  if (li && state.focusEdit) {
    const input = li.querySelector('.edit')
    input.focus()
    input.setSelectionRange(input.value.length, input.value.length)
  } else if (li && !state.editing && (!active || active === document.body || !active.isConnected || active.matches('.edit'))) {
    li.querySelector('[data-testid=todo-edit]').focus() // back to Edit once an edit closes
  }
  state.focusEdit = false
  state.focusAfter = null
}

const items = new Map() // todo id → its <li>

function renderItem(todo, li) {
  if (!li) {
    li = $('item-template').content.firstElementChild.cloneNode(true)
    li.dataset.id = todo.id
    const img = li.querySelector('img')
    img.addEventListener('error', () => {
      if (img.getAttribute('src')) showThumb(li, { error: 'The image could not be loaded.' })
    })
    items.set(todo.id, li)
  }
  const title = todo.title || '(untitled)'
  li.classList.toggle('done', !!todo.completed)
  const busy = state.busy.has(todo.id)
  li.classList.toggle('busy', busy)
  for (const el of li.querySelectorAll('button, input')) el.disabled = busy

  const toggle = li.querySelector('.toggle')
  toggle.checked = !!todo.completed
  toggle.setAttribute('aria-label', `Done: ${title}`)
  li.querySelector('.title').textContent = title
  li.querySelector('[data-testid=todo-edit]').setAttribute('aria-label', `Edit “${title}”`)
  li.querySelector('[data-testid=todo-delete]').setAttribute('aria-label', `Delete “${title}”`)
  li.querySelector('[data-testid=todo-attach-input]').setAttribute('aria-label', `Attach an image to “${title}”`)
  li.querySelector('[data-testid=todo-attach] span').textContent = todo.attachment ? 'Replace image' : 'Add image'

  const editing = state.editing === todo.id
  const input = li.querySelector('.edit')
  if (editing && input.hidden) input.value = state.draft // not while the user types
  input.hidden = !editing
  input.setAttribute('aria-label', `New title for “${title}”`)
  li.querySelector('.title').hidden = editing
  li.classList.toggle('editing', editing)

  const box = li.querySelector('.attachment')
  box.hidden = !todo.attachment
  if (todo.attachment) {
    box.querySelector('img').alt = `Image attached to “${title}”`
    li.dataset.path = todo.attachment
    showThumb(li, loadThumb(todo.attachment))
  } else {
    delete li.dataset.path
  }
  return li
}

/**
 * The thumbnail's URL (THUMB, rendered by the server: [files.thumbs] in minibase.toml):
 * `{url, expiresAt}` or `{error}`, fetched once per path.
 */
function loadThumb(path) {
  const entry = thumbs.get(path)
  const fresh = (e) => e.expiresAt === null || Date.parse(e.expiresAt) - Date.now() > 60_000
  if (entry && (entry.error || !entry.url || fresh(entry))) return entry
  const next = {}
  thumbs.set(path, next)
  mb.files.downloadUrl(path, { thumb: THUMB }).then(
    (d) => Object.assign(next, d),
    (e) => Object.assign(next, { error: describe(e) }),
  ).then(() => {
    for (const li of items.values()) if (li.dataset.path === path) showThumb(li, next)
  })
  return next
}

function showThumb(li, entry) {
  const img = li.querySelector('img')
  const note = li.querySelector('.thumb-error')
  if (entry.url && img.getAttribute('src') !== entry.url) img.src = entry.url
  img.hidden = !!entry.error
  note.hidden = !entry.error
  note.textContent = entry.error || ''
}

// ----------------------------------------------------------------------- screens

function showLogin() {
  stopWatching()
  $('booting').hidden = true
  $('todos').hidden = true
  $('who').hidden = true
  $('login').hidden = false
  $('login-name').focus()
}

async function showTodos() {
  $('booting').hidden = true
  $('login').hidden = true
  $('todos').hidden = false
  $('who').hidden = false
  $('user-name').textContent = localStorage.getItem(NAME_KEY) || (mb.user && mb.user.uid) || 'you'
  state.items = []
  state.loading = true
  render()
  $('new-title').focus()
  state.loadFailed = !(await run(async () => {
    try {
      loaded(await loadAll())
    } finally {
      state.loading = false
    }
  }))
  render()
  if (!state.loadFailed) watchTodos()
}

/**
 * Live updates: changes made elsewhere (another tab, the phone app) appear here within a
 * moment. Each change is applied to the list the page holds, so a request of this page
 * that is still on its way is not undone by the stream (nor the other way round).
 */
function watchTodos() {
  stopWatching()
  live = todos.orderBy('_created', 'asc').watch({
    onChange(snapshot) {
      if (snapshot.type === 'init') {
        // An init may arrive after this page's own requests showed newer versions: the
        // newer version of each todo wins, as for changes.
        const held = new Map(state.items.map((t) => [t.id, t]))
        state.items = snapshot.docs
          .filter((d) => !state.gone.has(d.id))
          .map((d) => {
            const mine = held.get(d.id)
            return mine && mine._version > d._version ? mine : d
          })
      } else {
        for (const c of snapshot.docChanges) {
          if (c.dataType === 'remove') removed([c.id])
          else if (!state.gone.has(c.id)) upsert(c.doc)
        }
      }
      render()
    },
    onError(e) {
      live = null
      if (e.code === 'Unauthenticated') {
        showError(describe(e))
        return showLogin()
      }
      state.notice = `Live updates stopped (${describe(e)}). Reload the page to resume them.`
      renderStatus()
    },
  })
}

function stopWatching() {
  if (live) live.close()
  live = null
}

async function loadAll() {
  const query = todos.orderBy('_created', 'asc').limit(200)
  let page = await query.get()
  const all = page.data
  while (page.next) {
    page = await query.get({ cursor: page.next })
    all.push(...page.data)
  }
  return all
}

// ----------------------------------------------------------------------- actions

const find = (id) => state.items.find((t) => t.id === id)
const replace = (doc) => {
  // Not over a newer version the live stream has brought meanwhile.
  state.items = state.items.map((t) => (t.id === doc.id && !(t._version > doc._version) ? doc : t))
}
const byCreated = (a, b) => (a._created < b._created ? -1 : a._created > b._created ? 1 : a.id < b.id ? -1 : 1)
/**
 * Todos removed (here, by a frame, or by clearCompleted) leave the list and are remembered:
 * a frame of an earlier edit may still be on its way, and a removal has no version to
 * compare it with, so without this the todo would come back until the removal's frame.
 */
const removed = (ids) => {
  for (const id of ids) state.gone.add(id)
  state.items = state.items.filter((t) => !state.gone.has(t.id))
}
/** A fresh load is the truth: a todo in it is alive, whatever was seen before. */
const loaded = (items) => {
  for (const t of items) state.gone.delete(t.id)
  state.items = items
}
/** Put a document into the list (oldest first): an answer and the stream may both bring it. */
const upsert = (doc) => {
  if (find(doc.id)) return replace(doc)
  state.items = [...state.items, doc].sort(byCreated)
}

async function login(event) {
  event.preventDefault()
  const name = $('login-name').value.trim()
  if (!name) return showError('Type a name to log in as (for example “alice”).')
  const button = event.submitter || $('login').querySelector('button')
  button.disabled = true
  const ok = await run(() => mb.login({ authCode: 'dev:' + name }))
  button.disabled = false
  if (ok) {
    localStorage.setItem(NAME_KEY, name)
    await showTodos()
  }
}

async function logout() {
  stopWatching()
  clearError()
  try {
    await mb.logout()
  } catch (e) {
    // The SDK forgets the session here even when the server cannot be told.
    showError(`Logged out on this device, but the server was not told: ${describe(e)}`)
  }
  localStorage.removeItem(NAME_KEY)
  state.items = []
  state.editing = null
  items.clear()
  thumbs.clear()
  $('list').replaceChildren()
  showLogin()
}

async function addTodo(event) {
  event.preventDefault()
  const input = $('new-title')
  const title = input.value.trim()
  if (!title) {
    showError('Type what needs to be done first.')
    return input.focus()
  }
  const button = $('new-form').querySelector('button')
  button.disabled = true
  const ok = await run(async () => {
    upsert(await todos.add({ title, completed: false }))
  })
  button.disabled = false
  if (ok) input.value = ''
  input.focus()
}

async function setCompleted(id, completed) {
  const before = find(id)
  // Shown at once, undone if the server says no. Its version sits between the stored one
  // and the next, so a late frame of the stored version (the todo's own insert, say) does
  // not undo the tick while the update is on its way; the answer or a newer frame does.
  const shown = { ...before, completed, _version: before._version + 0.5 }
  replace(shown)
  const ok = await run(async () => {
    replace(await todos.doc(id).update({ set: { completed } }))
  }, id)
  if (!ok && find(id) === shown) {
    state.items = state.items.map((t) => (t === shown ? before : t))
    render()
  }
}

async function removeTodo(id) {
  const todo = find(id)
  await run(async () => {
    await todos.doc(id).remove()
    removed([id])
    if (todo && todo.attachment) await mb.files.remove(todo.attachment)
  }, id)
}

function startEdit(id) {
  const todo = find(id)
  if (!todo || state.busy.has(id)) return
  state.editing = id
  state.draft = todo.title || ''
  state.focusEdit = true
  render()
}

function cancelEdit() {
  state.focusAfter = state.editing
  state.editing = null
  render()
}

async function saveEdit() {
  const id = state.editing
  if (!id) return
  const todo = find(id)
  const title = state.draft.trim()
  state.editing = null
  state.focusAfter = id
  if (todo && title === todo.title) return render()
  // `rename` is the example's own function (functions.py); it refuses an empty title.
  const ok = await run(async () => {
    replace(await mb.callFunction('rename', { id, title }))
  }, id)
  if (!ok && find(id)) {
    state.editing = id // keep the field open with what was typed, to fix it
    state.draft = title
    state.focusEdit = true
    render()
  }
}

async function clearCompleted() {
  const done = state.items.filter(FILTERS.completed)
  await run(async () => {
    const { removed: count } = await mb.callFunction('clearCompleted')
    const now = await loadAll()
    removed(done.map((t) => t.id).filter((id) => !now.some((t) => t.id === id)))
    loaded(now)
    for (const t of done) {
      if (t.attachment && !find(t.id)) await mb.files.remove(t.attachment)
    }
    state.notice = `Removed ${count} completed ${count === 1 ? 'todo' : 'todos'}.`
  })
}

function fileName(name) {
  const clean = name.replace(/[^\p{L}\p{N}._-]+/gu, '_').replace(/^[._]+/, '').slice(-80)
  return clean || 'image'
}

async function attach(id, file) {
  if (!file) return
  if (!file.type.startsWith('image/')) return showError(`“${file.name}” is not an image.`)
  if (file.size > MAX_IMAGE) {
    return showError(`“${file.name}” is ${(file.size / 1048576).toFixed(1)} MB: images up to 5 MB, please.`)
  }
  const old = find(id) && find(id).attachment
  const path = `todos/${id}/${fileName(file.name)}`
  await run(async () => {
    await mb.files.upload(path, file, { contentType: file.type })
    thumbs.delete(path)
    replace(await todos.doc(id).update({ set: { attachment: path } }))
    if (old && old !== path) await mb.files.remove(old)
  }, id)
}

async function detach(id) {
  const path = find(id) && find(id).attachment
  if (!path) return
  await run(async () => {
    replace(await todos.doc(id).update({ unset: ['attachment'] }))
    thumbs.delete(path)
    await mb.files.remove(path)
  }, id)
}

// ------------------------------------------------------------------------ wiring

function itemId(el) {
  const li = el.closest('.item')
  return li ? li.dataset.id : null
}

$('login').addEventListener('submit', login)
$('logout').addEventListener('click', logout)
$('new-form').addEventListener('submit', addTodo)
$('clear').addEventListener('click', clearCompleted)
$('error-close').addEventListener('click', clearError)

const list = $('list')
list.addEventListener('change', (e) => {
  const id = itemId(e.target)
  if (e.target.matches('.toggle')) setCompleted(id, e.target.checked)
  else if (e.target.matches('input[type=file]')) attach(id, e.target.files[0])
})
list.addEventListener('click', (e) => {
  const button = e.target.closest('button')
  if (!button) return
  const id = itemId(button)
  const what = button.dataset.testid
  if (what === 'todo-delete') removeTodo(id)
  else if (what === 'todo-edit') startEdit(id)
  else if (what === 'todo-attachment-remove') detach(id)
})
list.addEventListener('dblclick', (e) => {
  if (e.target.matches('.title')) startEdit(itemId(e.target))
})
list.addEventListener('input', (e) => {
  if (e.target.matches('.edit')) state.draft = e.target.value
})
list.addEventListener('keydown', (e) => {
  if (!e.target.matches('.edit')) return
  if (e.key === 'Enter') {
    e.preventDefault()
    saveEdit()
  } else if (e.key === 'Escape') {
    e.preventDefault()
    cancelEdit()
  }
})
// Leaving the field saves, as in most todo apps (Escape has already closed it).
list.addEventListener('focusout', (e) => {
  if (e.target.matches('.edit') && itemId(e.target) === state.editing) saveEdit()
})

function readFilter() {
  const f = location.hash.replace(/^#\/?/, '')
  state.filter = FILTERS[f] ? f : 'all'
}
for (const b of document.querySelectorAll('[data-filter]')) {
  b.addEventListener('click', () => {
    location.hash = b.dataset.filter === 'all' ? '/' : '/' + b.dataset.filter
  })
}
window.addEventListener('hashchange', () => {
  readFilter()
  render()
})

readFilter()
mb.ready.then(() => (mb.isLoggedIn ? showTodos() : showLogin()))
