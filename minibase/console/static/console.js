// The minibase admin console: plain ES modules, no build step. Talks to /_/api/ only.
import { pickLanguage, saveLanguage, translator } from './i18n.js'

let lang = pickLanguage()
let t = translator(lang)
let me = null // {email, csrf, app}
const root = document.getElementById('root')

// ------------------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'testid') el.dataset.testid = v
    else if (k === 'text') el.textContent = v
    else el.setAttribute(k, v === true ? '' : v)
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

async function api(method, path, body) {
  const headers = {}
  if (method !== 'GET') headers['x-csrf-token'] = me ? me.csrf : ''
  if (body !== undefined) headers['content-type'] = 'application/json'
  let resp
  try {
    resp = await fetch('/_/api' + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    })
  } catch (e) {
    throw new ApiError(0, 'Network', t('error.network'))
  }
  const data = await resp.json().catch(() => ({}))
  if (!resp.ok) {
    const err = data.error || {}
    if (resp.status === 401 && me && path !== '/login') {
      // The session ended (idle, logged out elsewhere): back to the login form.
      me = null
      render()
    }
    throw new ApiError(resp.status, err.code || 'Error', err.message || resp.statusText)
  }
  return data.data
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return ''
  const d = new Date(seconds * 1000)
  return d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB')
}

function size(n) {
  if (n < 1024) return n + ' B'
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB'
  return (n / 1048576).toFixed(1) + ' MiB'
}

function flash(message, kind) {
  const box = document.getElementById('flash')
  if (!box) return
  box.replaceChildren(h('div', { class: 'flash ' + (kind || 'ok'), testid: kind === 'error' ? 'error' : 'notice', role: 'status' }, message))
}

function showError(e) {
  flash(`${t('error.title')}: ${e.code ? e.code + ' — ' : ''}${e.message}`, 'error')
}

async function guard(work) {
  try {
    return await work()
  } catch (e) {
    showError(e)
    return undefined
  }
}

function table(headers, rows, testid) {
  return h('table', { testid },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows))
}

function pre(value, testid) {
  return h('pre', { class: 'json', testid }, JSON.stringify(value, null, 2))
}

function parseJSON(text, fallback) {
  if (!text.trim()) return fallback
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new ApiError(400, 'InvalidArgument', e.message)
  }
}

// --------------------------------------------------------------------------- routing

function route() {
  const hash = location.hash.replace(/^#\/?/, '')
  const [path, query] = hash.split('?')
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  return { page: parts[0] || 'overview', args: parts.slice(1), query: new URLSearchParams(query || '') }
}

function go(hash) {
  if (location.hash === hash) render()
  else location.hash = hash
}

const PAGES = {
  overview: overviewPage,
  users: usersPage,
  collections: collectionsPage,
  files: filesPage,
  audit: auditPage,
  data: dataPage,
  settings: settingsPage,
}

function shell(active, content) {
  const nav = h('nav', { testid: 'nav' },
    Object.keys(PAGES).map((p) => h('a', { href: '#/' + p, class: p === active ? 'active' : null, testid: 'nav-' + p }, t('nav.' + p))))
  const header = h('header', {},
    h('span', { class: 'brand' }, t('app.title')),
    h('span', { class: 'app' }, me.app),
    h('span', { class: 'spacer' }),
    h('span', { class: 'who', testid: 'admin-email' }, me.email),
    h('button', { class: 'link', testid: 'lang', onclick: switchLanguage }, t('lang.switch')),
    h('button', { class: 'link', testid: 'logout', onclick: logout }, t('logout')))
  return h('div', { class: 'shell' }, header, nav, h('main', {}, h('div', { id: 'flash' }), content))
}

function switchLanguage() {
  lang = lang === 'zh' ? 'en' : 'zh'
  saveLanguage(lang)
  t = translator(lang)
  render()
}

async function logout() {
  await guard(() => api('POST', '/logout'))
  me = null
  render()
}

async function render() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
  document.title = t('app.title')
  if (!me) {
    try {
      me = await api('GET', '/me')
    } catch (e) {
      me = null
    }
  }
  if (!me) return root.replaceChildren(loginPage())
  const { page, args, query } = route()
  const content = h('div', { class: 'page', testid: 'page-' + page }, h('p', { class: 'muted' }, t('loading')))
  root.replaceChildren(shell(page, content))
  const build = PAGES[page] || overviewPage
  try {
    const built = await build(args, query)
    content.replaceChildren(...[built].flat(Infinity).filter((x) => x !== null && x !== undefined))
  } catch (e) {
    content.replaceChildren()
    showError(e)
  }
}

// ----------------------------------------------------------------------------- login

function loginPage() {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, testid: 'login-email' })
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' })
  const error = h('div', { class: 'error-text', testid: 'login-error' })
  const form = h('form', {
    class: 'login',
    testid: 'login',
    onsubmit: async (ev) => {
      ev.preventDefault()
      error.textContent = ''
      try {
        me = await api('POST', '/login', { email: email.value, password: password.value })
        me.app = me.app || ''
        const full = await api('GET', '/me')
        me = full
        render()
      } catch (e) {
        error.textContent = e.message
      }
    },
  },
  h('h1', {}, t('login.title')),
  h('label', {}, t('login.email'), email),
  h('label', {}, t('login.password'), password),
  h('button', { type: 'submit', testid: 'login-submit' }, t('login.submit')),
  error,
  h('p', { class: 'muted' }, t('login.hint')),
  h('button', { type: 'button', class: 'link', testid: 'lang', onclick: switchLanguage }, t('lang.switch')))
  return form
}

// -------------------------------------------------------------------------- overview

function auditRows(events) {
  return events.map((e) => {
    const { seq, at, event, uid, admin, requestId, ...rest } = e
    const user = uid ? h('a', { href: '#/users/' + encodeURIComponent(uid) }, uid) : null
    return h('tr', { testid: 'audit-row' },
      h('td', {}, when(at)),
      h('td', { testid: 'audit-event' }, event),
      h('td', {}, admin ? [admin, user ? [' → ', user] : null] : user),
      h('td', { class: 'detail' }, Object.keys(rest).length ? JSON.stringify(rest) : ''))
  })
}

async function overviewPage() {
  const o = await api('GET', '/overview')
  const card = (title, value, testid, sub) => h('div', { class: 'card', testid }, h('div', { class: 'label' }, title), h('div', { class: 'value' }, value), sub ? h('div', { class: 'muted' }, sub) : null)
  const docs = Object.entries(o.documents).reduce((a, [, n]) => a + n, 0)
  const traffic = (label, x) => h('div', { class: 'card', testid: 'traffic' },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, x.requests),
    h('div', { class: 'muted' }, `${t('overview.requests')} · ${x.clientErrors} ${t('overview.clientErrors')} · ${x.serverErrors} ${t('overview.serverErrors')}`))
  return [
    h('div', { class: 'cards' },
      card(t('overview.users'), o.users, 'count-users', `${o.disabledUsers} ${t('overview.disabled')}`),
      card(t('overview.documents'), docs, 'count-documents',
        Object.entries(o.documents).map(([c, n]) => `${c}: ${n}`).join(' · ')),
      card(t('overview.files'), o.files ? o.files.count + (o.files.more ? '+' : '') : '—', 'count-files'),
      o.traffic ? traffic(t('overview.traffic') + ' · ' + t('overview.hour'), o.traffic.hour) : null,
      o.traffic ? traffic(t('overview.traffic') + ' · ' + t('overview.day'), o.traffic.day) : null),
    h('h2', {}, t('overview.recent')),
    o.recentAudit.length
      ? table([t('audit.time'), t('audit.event'), t('audit.who'), t('audit.detail')], auditRows(o.recentAudit), 'recent-audit')
      : h('p', { class: 'muted' }, t('audit.none')),
  ]
}

// ----------------------------------------------------------------------------- users

async function usersPage(args, query) {
  if (args.length) return userDetail(args[0])
  const q = h('input', { type: 'search', placeholder: t('users.search'), value: query.get('q') || '', testid: 'user-search' })
  const provider = h('select', { testid: 'user-provider' },
    h('option', { value: '' }, t('users.provider')),
    ['dev', 'alipay', 'wechat', 'douyin'].map((p) => h('option', { value: p, selected: query.get('provider') === p }, p)))
  const form = h('form', {
    class: 'bar',
    onsubmit: (ev) => {
      ev.preventDefault()
      const params = new URLSearchParams()
      if (q.value.trim()) params.set('q', q.value.trim())
      if (provider.value) params.set('provider', provider.value)
      go('#/users?' + params)
    },
  }, q, provider, h('button', { type: 'submit', testid: 'user-search-submit' }, t('users.find')))
  const params = new URLSearchParams()
  if (query.get('q')) params.set('q', query.get('q'))
  if (query.get('provider')) params.set('provider', query.get('provider'))
  const users = await api('GET', '/users?' + params)
  const rows = users.map((u) => h('tr', { testid: 'user-row' },
    h('td', {}, h('a', { href: '#/users/' + encodeURIComponent(u.uid), testid: 'user-link' }, u.uid)),
    h('td', {}, u.identities.map((i) => `${i.provider}: ${i.subject}`).join(', ')),
    h('td', {}, when(u.created)),
    h('td', { testid: 'user-status' }, u.disabled ? t('users.disabledState') : t('users.active'))))
  return [form, users.length ? table([t('users.uid'), t('users.identities'), t('users.created'), t('users.status')], rows, 'users') : h('p', { class: 'muted', testid: 'users-none' }, t('users.none'))]
}

async function userDetail(uid) {
  const u = await api('GET', '/users/' + encodeURIComponent(uid))
  const act = (label, path, testid, confirmText) => h('button', {
    testid,
    onclick: async () => {
      if (confirmText && !confirm(confirmText)) return
      const r = await guard(() => api('POST', `/users/${encodeURIComponent(uid)}/${path}`))
      if (r) {
        await render()
        flash(t('users.done', { n: r.revokedSessions || 0 }))
      }
    },
  }, label)
  const docs = Object.entries(u.documents).map(([name, d]) => [
    h('h3', {}, h('a', { href: `#/collections/${encodeURIComponent(name)}?uid=${encodeURIComponent(uid)}` }, name), ` (${d.items.length}${d.more ? '+' : ''})`),
    d.items.length ? h('div', { class: 'docs' }, d.items.map((doc) => pre(doc, 'user-document'))) : h('p', { class: 'muted' }, t('coll.none')),
  ])
  return [
    h('p', {}, h('a', { href: '#/users' }, t('users.back'))),
    h('h1', { testid: 'user-uid' }, u.uid),
    h('p', {}, `${t('users.created')}: ${when(u.created)} · ${t('users.phone')}: ${u.phone || '—'} · ${t('users.status')}: `,
      h('strong', { testid: 'user-state' }, u.disabled ? t('users.disabledState') : t('users.active'))),
    h('div', { class: 'bar' },
      u.disabled
        ? act(t('users.enable'), 'enable', 'user-enable')
        : act(t('users.disable'), 'disable', 'user-disable', t('users.confirmDisable', { uid })),
      act(t('users.revoke'), 'revoke', 'user-revoke')),
    h('h2', {}, t('users.identities')),
    table(['provider', 'appId', 'subject (openid)', 'unionid', t('users.created')],
      u.identities.map((i) => h('tr', { testid: 'identity-row' }, h('td', {}, i.provider), h('td', {}, i.appId), h('td', {}, i.subject), h('td', {}, i.unionid || ''), h('td', {}, when(i.created)))), 'identities'),
    h('h2', {}, t('users.sessions')),
    table(['ref', 'provider', t('users.created'), t('users.lastUsed'), t('users.revoked')],
      u.sessions.map((s) => h('tr', { testid: 'session-row' }, h('td', {}, s.ref), h('td', {}, s.provider), h('td', {}, when(s.created)), h('td', {}, when(s.lastUsed)), h('td', {}, s.revoked ? when(s.revoked) : ''))), 'sessions'),
    h('h2', {}, t('users.documents')),
    docs,
    h('h2', {}, t('users.files')),
    fileTable(u.files.items),
  ]
}

// ----------------------------------------------------------------------- collections

async function collectionsPage(args, query) {
  const all = await api('GET', '/collections')
  const list = h('ul', { class: 'tabs', testid: 'collections' },
    all.map((c) => h('li', {}, h('a', { href: '#/collections/' + encodeURIComponent(c.name), class: c.name === args[0] ? 'active' : null, testid: 'collection-link' }, c.name))))
  const col = all.find((c) => c.name === args[0])
  if (!col) return [list, h('p', { class: 'muted' }, t('coll.pick'))]
  const info = h('div', { class: 'cards' },
    h('div', { class: 'card wide', testid: 'collection-rules' }, h('div', { class: 'label' }, t('coll.rules')),
      h('dl', {}, Object.entries(col.rules).map(([op, text]) => [h('dt', {}, op), h('dd', {}, h('code', {}, text))]))),
    h('div', { class: 'card wide', testid: 'collection-schema' }, h('div', { class: 'label' }, t('coll.schema')), col.schema ? pre(col.schema) : h('p', { class: 'muted' }, t('coll.none'))),
    h('div', { class: 'card wide', testid: 'collection-indexes' }, h('div', { class: 'label' }, t('coll.indexes')),
      col.indexes.length ? h('ul', {}, col.indexes.map((ix) => h('li', {}, h('code', {}, ix.join(', '))))) : h('p', { class: 'muted' }, t('coll.none'))))
  const where = h('input', { placeholder: t('coll.where'), value: query.get('where') || '', testid: 'query-where' })
  const order = h('input', { placeholder: t('coll.orderBy'), value: query.get('orderBy') || '', testid: 'query-order' })
  const owner = h('input', { placeholder: t('coll.owner'), value: query.get('uid') || '', testid: 'query-owner' })
  const results = h('div', { testid: 'query-results' })
  const editor = h('div', { testid: 'editor-box' })
  let cursor = null

  async function run(more) {
    const body = { where: parseJSON(where.value, undefined), orderBy: parseJSON(order.value, undefined), limit: 20 }
    if (owner.value.trim()) body.uid = owner.value.trim()
    if (more) body.cursor = cursor
    const page = await api('POST', `/collections/${encodeURIComponent(col.name)}/query`, body)
    cursor = page.next
    const rows = page.items.map((doc) => h('tr', { testid: 'doc-row' },
      h('td', {}, doc.id),
      h('td', {}, h('a', { href: '#/users/' + encodeURIComponent(doc.uid), testid: 'doc-owner' }, doc.uid)),
      h('td', { class: 'detail' }, JSON.stringify(Object.fromEntries(Object.entries(doc).filter(([k]) => !['id', 'uid', '_version', '_created', '_updated'].includes(k))))),
      h('td', {}, doc._version),
      h('td', {}, h('button', { class: 'small', testid: 'doc-edit', onclick: () => edit(doc) }, t('coll.edit')),
        h('button', { class: 'small danger', testid: 'doc-delete', onclick: () => remove(doc) }, t('coll.delete')))))
    const tableEl = table(['id', 'uid', 'fields', '_version', ''], rows, 'documents')
    if (more) results.querySelector('tbody').append(...rows)
    else results.replaceChildren(h('p', { class: 'muted', testid: 'query-total' }, t('coll.total', { n: page.total })), tableEl)
    results.querySelector('[data-testid=query-more]')?.remove()
    if (cursor) results.append(h('button', { testid: 'query-more', onclick: () => guard(() => run(true)) }, t('coll.more')))
  }

  function edit(doc) {
    const isNew = !doc
    const id = h('input', { value: doc ? doc.id : '', disabled: !isNew, testid: 'edit-id', placeholder: t('coll.id') })
    const uid = h('input', { value: doc ? doc.uid : owner.value, disabled: !isNew, testid: 'edit-uid', placeholder: 'uid' })
    const fields = doc ? Object.fromEntries(Object.entries(doc).filter(([k]) => !['id', 'uid', '_version', '_created', '_updated'].includes(k))) : {}
    const text = h('textarea', { rows: 10, testid: 'edit-fields' })
    text.value = JSON.stringify(fields, null, 2)
    editor.replaceChildren(h('form', {
      class: 'editor',
      testid: 'editor',
      onsubmit: async (ev) => {
        ev.preventDefault()
        const ok = await guard(async () => {
          const value = parseJSON(text.value, {})
          if (isNew) await api('POST', `/collections/${encodeURIComponent(col.name)}/docs`, { uid: uid.value.trim(), id: id.value.trim(), fields: value })
          else await api('PUT', `/collections/${encodeURIComponent(col.name)}/docs/${encodeURIComponent(doc.uid)}/${encodeURIComponent(doc.id)}`, { fields: value, ifVersion: doc._version })
          return true
        })
        if (ok) {
          editor.replaceChildren()
          await guard(() => run(false))
          flash(t('coll.saved'))
        }
      },
    }, h('div', { class: 'bar' }, id, uid), h('label', {}, t('coll.fields'), text),
    h('div', { class: 'bar' }, h('button', { type: 'submit', testid: 'edit-save' }, t('coll.save')),
      h('button', { type: 'button', class: 'link', onclick: () => editor.replaceChildren() }, t('coll.cancel')))))
  }

  async function remove(doc) {
    if (!confirm(t('coll.confirmDelete', { id: doc.id }))) return
    const ok = await guard(() => api('DELETE', `/collections/${encodeURIComponent(col.name)}/docs/${encodeURIComponent(doc.uid)}/${encodeURIComponent(doc.id)}`))
    if (ok) {
      await guard(() => run(false))
      flash(t('coll.deleted'))
    }
  }

  const form = h('form', { class: 'bar', onsubmit: (ev) => { ev.preventDefault(); guard(() => run(false)) } },
    where, order, owner, h('button', { type: 'submit', testid: 'query-run' }, t('coll.run')),
    h('button', { type: 'button', testid: 'doc-new', onclick: () => edit(null) }, t('coll.new')))
  await guard(() => run(false))
  return [list, info, form, editor, results]
}

// ----------------------------------------------------------------------------- files

function fileTable(items) {
  if (!items.length) return h('p', { class: 'muted', testid: 'files-none' }, t('files.none'))
  const preview = h('div', { class: 'preview', testid: 'file-preview' })
  const rows = items.map((f) => h('tr', { testid: 'file-row' },
    h('td', { testid: 'file-key' }, f.key),
    h('td', {}, size(f.size)),
    h('td', {}, f.contentType),
    h('td', {}, when(f.updated)),
    h('td', {},
      h('button', {
        class: 'small',
        testid: 'file-preview-button',
        onclick: async () => {
          const u = await guard(() => api('GET', '/files/url?key=' + encodeURIComponent(f.key)))
          if (!u) return
          if (u.inline) preview.replaceChildren(h('img', { src: u.url, alt: f.key, testid: 'file-image' }))
          else preview.replaceChildren(h('a', { href: u.url, testid: 'file-download' }, t('files.download')))
        },
      }, t('files.preview')),
      h('button', {
        class: 'small danger',
        testid: 'file-delete',
        onclick: async () => {
          if (!confirm(t('files.confirmDelete', { key: f.key }))) return
          if (await guard(() => api('DELETE', '/files?key=' + encodeURIComponent(f.key)))) render()
        },
      }, t('files.delete')))))
  return [table([t('files.key'), t('files.size'), t('files.type'), t('files.updated'), ''], rows, 'files'), preview]
}

async function filesPage(args, query) {
  const prefix = query.get('prefix') || ''
  const after = query.get('after') || ''
  const data = await api('GET', `/files?prefix=${encodeURIComponent(prefix)}&after=${encodeURIComponent(after)}`)
  const input = h('input', { value: prefix, placeholder: t('files.prefix'), testid: 'files-prefix' })
  const areas = h('div', { class: 'bar', testid: 'areas' }, t('files.area') + ':',
    data.areas.map((a) => h('a', { href: '#/files?prefix=' + encodeURIComponent(a.prefix), class: 'chip', testid: 'area-link' }, `${a.name} (${a.prefix}, read: ${a.read})`)))
  const form = h('form', { class: 'bar', onsubmit: (ev) => { ev.preventDefault(); go('#/files?prefix=' + encodeURIComponent(input.value)) } },
    input, h('button', { type: 'submit', testid: 'files-list' }, t('files.list')))
  const more = data.next ? h('a', { href: `#/files?prefix=${encodeURIComponent(prefix)}&after=${encodeURIComponent(data.next)}` }, t('coll.more')) : null
  return [areas, form, fileTable(data.items), more]
}

// ----------------------------------------------------------------------------- audit

async function auditPage(args, query) {
  const kind = h('input', { value: query.get('kind') || '', placeholder: t('audit.kind'), testid: 'audit-kind' })
  const uid = h('input', { value: query.get('uid') || '', placeholder: t('audit.uid'), testid: 'audit-uid' })
  const since = h('input', { type: 'datetime-local', value: query.get('since') || '', title: t('audit.since'), testid: 'audit-since' })
  const until = h('input', { type: 'datetime-local', value: query.get('until') || '', title: t('audit.until'), testid: 'audit-until' })
  const form = h('form', {
    class: 'bar',
    onsubmit: (ev) => {
      ev.preventDefault()
      const p = new URLSearchParams()
      for (const [k, el] of [['kind', kind], ['uid', uid], ['since', since], ['until', until]]) if (el.value) p.set(k, el.value)
      go('#/audit?' + p)
    },
  }, kind, uid, h('label', {}, t('audit.since'), since), h('label', {}, t('audit.until'), until), h('button', { type: 'submit', testid: 'audit-filter' }, t('audit.filter')))
  const p = new URLSearchParams()
  if (query.get('kind')) p.set('kind', query.get('kind'))
  if (query.get('uid')) p.set('uid', query.get('uid'))
  for (const k of ['since', 'until']) if (query.get(k)) p.set(k, String(new Date(query.get(k)).getTime() / 1000))
  if (query.get('before')) p.set('before', query.get('before'))
  const events = await api('GET', '/audit?' + p)
  const older = events.length ? (() => { const q = new URLSearchParams(query); q.set('before', events[events.length - 1].seq); return h('a', { href: '#/audit?' + q, testid: 'audit-older' }, t('audit.older')) })() : null
  return [form, events.length ? table([t('audit.time'), t('audit.event'), t('audit.who'), t('audit.detail')], auditRows(events), 'audit') : h('p', { class: 'muted', testid: 'audit-none' }, t('audit.none')), older]
}

// ------------------------------------------------------------------------------ data

async function dataPage() {
  const file = h('input', { type: 'file', accept: '.jsonl,.gz,.jsonl.gz', testid: 'import-file' })
  const bar = h('progress', { max: 100, value: 0, testid: 'import-progress' })
  const result = h('p', { testid: 'import-result' })
  const upload = h('button', {
    testid: 'import-submit',
    onclick: () => {
      const f = file.files[0]
      if (!f) return
      // XMLHttpRequest: fetch cannot report an upload's progress.
      const xhr = new XMLHttpRequest()
      xhr.open('POST', '/_/api/import')
      xhr.setRequestHeader('x-csrf-token', me.csrf)
      xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) bar.value = Math.round((100 * ev.loaded) / ev.total) }
      xhr.onload = () => {
        let data = {}
        try { data = JSON.parse(xhr.responseText) } catch (e) { /* shown below */ }
        if (xhr.status === 200) {
          bar.value = 100
          result.textContent = t('data.imported', data.data)
        } else showError(new ApiError(xhr.status, data.error?.code, data.error?.message || xhr.statusText))
      }
      xhr.onerror = () => showError(new ApiError(0, 'Network', t('error.network')))
      xhr.send(f)
    },
  }, t('data.upload'))
  return [
    h('h2', {}, t('data.export')),
    h('p', {}, t('data.exportHelp')),
    h('a', { class: 'button', href: '/_/api/export', download: '', testid: 'export-link' }, t('data.download')),
    h('h2', {}, t('data.import')),
    h('p', {}, t('data.importHelp')),
    h('div', { class: 'bar' }, file, upload, bar),
    result,
    h('p', { class: 'muted' }, t('data.backup')),
  ]
}

// -------------------------------------------------------------------------- settings

async function settingsPage() {
  const s = await api('GET', '/settings')
  return [h('p', { class: 'muted' }, t('settings.help')), pre(s, 'settings')]
}

window.addEventListener('hashchange', render)
render()
