// Runs an example mini-program's own code (app.js, pages/*/*.js and the vendored SDK) in
// Node against a real server, with a fake host API (`my` or `wx`): requests go out over
// HTTP, storage is in memory, navigation is recorded. It checks the page logic, not the
// templates (the developer tools render those).
//
//   node miniprogram_sim.cjs <app dir> <endpoint> <alipay|wechat>
//
// Exits 0 when the seed's flow works, 1 with the failed assertion otherwise.
'use strict'
const assert = require('node:assert/strict')
const path = require('node:path')

const [dir, endpoint, platform] = process.argv.slice(2)
if (!dir || !endpoint || !['alipay', 'wechat'].includes(platform)) {
  console.error('usage: node miniprogram_sim.cjs <app dir> <endpoint> <alipay|wechat>')
  process.exit(2)
}

// ------------------------------------------------------------------ the fake host
const stored = new Map()
const navigation = []
async function send(opts) {
  const headers = (platform === 'alipay' ? opts.headers : opts.header) || {}
  const res = await fetch(opts.url, { method: opts.method || 'GET', headers, body: opts.data })
  const answer = { data: await res.text(), headers: Object.fromEntries(res.headers) }
  if (platform === 'wechat') return opts.success({ statusCode: res.status, header: answer.headers, data: answer.data })
  // Alipay reports HTTP errors through `fail` (error 19), with the answer on current base libraries.
  if (res.status >= 400) return opts.fail({ error: 19, errorMessage: 'http status error', status: res.status, ...answer })
  opts.success({ status: res.status, ...answer })
}
const host = {
  request(opts) {
    send(opts).catch((e) => opts.fail(platform === 'wechat' ? { errMsg: 'request:fail ' + e.message } : { error: 12, errorMessage: e.message }))
  },
  navigateTo(o) {
    navigation.push(o.url)
  },
  navigateBack() {
    navigation.push('back')
  },
  stopPullDownRefresh() {},
}
if (platform === 'alipay') {
  Object.assign(host, {
    getAuthCode: (o) => o.success({ authCode: 'platform-code' }),
    getStorageSync: ({ key }) => ({ data: stored.has(key) ? stored.get(key) : null }),
    setStorageSync: ({ key, data }) => stored.set(key, data),
    removeStorageSync: ({ key }) => stored.delete(key),
  })
  global.my = host
} else {
  Object.assign(host, {
    login: (o) => o.success({ code: 'platform-code' }),
    getStorageSync: (key) => (stored.has(key) ? stored.get(key) : ''),
    setStorageSync: (key, value) => stored.set(key, value),
    removeStorageSync: (key) => stored.delete(key),
  })
  global.wx = host
}

let app = null
const pages = {}
let loading = null
global.App = (def) => {
  app = def
}
global.getApp = () => app
global.Page = (def) => {
  pages[loading] = def
}

function open(name) {
  const def = pages[name]
  const page = Object.assign(Object.create(def), { data: JSON.parse(JSON.stringify(def.data)) })
  page.setData = function (patch) {
    this.data = Object.assign({}, this.data, patch)
  }
  return page
}

// ----------------------------------------------------------------------- the app
const config = require(path.resolve(dir, 'config.js'))
assert.equal(config.service, 'todo-list-svc')
config.endpoint = endpoint
config.devUser = '' // first the platform's own login: the server has no keys for it

require(path.resolve(dir, 'app.js'))
assert.ok(app && app.mb, 'app.js calls App({mb, ...})')
for (const name of ['todos', 'add-todo']) {
  loading = name
  require(path.resolve(dir, 'pages', name, name + '.js'))
  assert.ok(pages[name], `pages/${name}/${name}.js calls Page()`)
}

async function main() {
  const list = open('todos')

  // The host's code step runs, the server refuses it (no Alipay/WeChat keys): a message.
  await list.load()
  assert.equal(list.data.loggedIn, false)
  assert.match(list.data.error, platform === 'alipay' ? /ALIPAY_APP_ID/ : /wechat/, 'a refused login shows the reason')
  assert.equal(list.data.loading, false)

  config.devUser = 'sim-' + platform + '-' + process.pid // now the dev login
  await list.load()
  assert.equal(list.data.error, '')
  assert.equal(list.data.loggedIn, true)
  assert.deepEqual(list.data.todos, [])

  for (const title of ['buy milk', 'walk dog']) {
    list.addTodo()
    assert.equal(navigation.pop(), '../add-todo/add-todo')
    const add = open('add-todo')
    await add.add()
    assert.match(add.data.error, /Type what needs to be done/)
    add.onInput({ detail: { value: '  ' + title + ' ' } })
    await add.add()
    assert.equal(add.data.error, '')
    assert.equal(navigation.pop(), 'back')
  }
  await list.load() // onShow
  assert.deepEqual(list.data.todos.map((t) => [t.title, t.completed]), [['buy milk', false], ['walk dog', false]])
  assert.equal(list.data.left, 2)
  assert.equal(list.data.hasCompleted, false)

  const [milk, dog] = list.data.todos
  await list.onTodoChanged({ detail: { value: [milk.id] } })
  assert.equal(list.data.error, '')
  assert.deepEqual(list.data.todos.map((t) => t.completed), [true, false])
  assert.equal(list.data.left, 1)
  assert.equal(list.data.hasCompleted, true)

  await list.onDelete({ currentTarget: { dataset: { id: dog.id } }, target: { dataset: { id: dog.id } } })
  assert.deepEqual(list.data.todos.map((t) => t.title), ['buy milk'])

  await list.clearCompleted()
  assert.equal(list.data.error, '')
  assert.deepEqual(list.data.todos, [])
  assert.equal(list.data.busy, false)

  // A refused change (a todo deleted elsewhere) shows the server's message, and the list
  // as the server has it.
  list.setData({ todos: [{ id: 'gone', title: 'deleted elsewhere', completed: false }] })
  await list.onTodoChanged({ detail: { value: ['gone'] } })
  assert.match(list.data.error, /gone|not found|no document/i)
  assert.deepEqual(list.data.todos, [])
  assert.equal(list.data.busy, false)
  // A bad id fails in the SDK before any request: a message too, not an exception.
  await list.onDelete({ currentTarget: { dataset: { id: '' } }, target: { dataset: { id: '' } } })
  assert.match(list.data.error, /id must be a non-empty string/)

  // The next launch reuses the stored session: no second login.
  assert.ok([...stored.keys()].some((k) => k.startsWith('minibase:todo-list-svc')), 'the session is stored')
  console.log(`${platform}: ok`)
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exit(1)
})
