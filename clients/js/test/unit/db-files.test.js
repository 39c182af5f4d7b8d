import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient, memoryStorage } from '../../src/index.js'
import { fakeHost, fakeServer } from '../helpers.js'

async function setup(client = {}) {
  const server = fakeServer()
  const events = []
  const answers = []
  server.functions.db = server.functions.files = (e) => {
    events.push(e)
    // An answer may be a function of the event: for calls sent concurrently, whose order
    // of arrival is not theirs to promise.
    const a = answers.length ? answers.shift() : { data: null }
    return typeof a === 'function' ? a(e) : a
  }
  const mb = createClient({ endpoint: 'https://api.example.com', service: 'svc', storage: memoryStorage(), transport: server.transport(), ...client })
  await mb.login({ authCode: 'dev:alice' })
  return { mb, server, events, answers }
}

test('doc(id): get / set (put) / update / remove send the documented event shapes', async () => {
  const { mb, events, answers } = await setup()
  const todos = mb.db.collection('todo_list')
  answers.push({ data: { id: 'a', title: 't' } }, { data: null }, { data: { id: 'a', _version: 2 } }, { data: null }, { data: { id: 'a' } })
  assert.deepEqual(await todos.doc('a').get(), { id: 'a', title: 't' })
  assert.equal(await todos.doc('a').set({ title: 't', id: 'ignored' }), null)
  assert.deepEqual(await todos.doc('a').update({ set: { done: true }, inc: { n: 1 }, unset: ['x'], push: { tags: 'a' }, pull: { tags: 'b' }, ifVersion: 1, junk: 1 }), { id: 'a', _version: 2 })
  assert.equal(await todos.doc('a').remove(), null)
  await todos.doc('a', { owner: 'u_bob' }).get({ fields: ['title'] })
  assert.deepEqual(events, [
    { op: 'get', collection: 'todo_list', id: 'a' },
    { op: 'put', collection: 'todo_list', obj: { title: 't', id: 'a' } },
    { op: 'update', collection: 'todo_list', id: 'a', set: { done: true }, unset: ['x'], inc: { n: 1 }, push: { tags: 'a' }, pull: { tags: 'b' }, ifVersion: 1 },
    { op: 'remove', collection: 'todo_list', id: 'a' },
    { op: 'get', collection: 'todo_list', id: 'a', owner: 'u_bob', fields: ['title'] },
  ])
  assert.throws(() => todos.doc(''), (e) => e.code === 'InvalidArgument')
  assert.throws(() => mb.db.collection(''), (e) => e.code === 'InvalidArgument')
})

test('add → insert; where/orderBy/limit/fields/startAfter → query; count; immutable builders', async () => {
  const { mb, events, answers } = await setup()
  const todos = mb.db.collection('todo_list')
  answers.push({ data: { id: 'gen', title: 'x' } })
  assert.deepEqual(await todos.add({ title: 'x' }), { id: 'gen', title: 'x' })
  const q = todos.where({ done: false }).where({ n: { $gte: 3 } }).orderBy('n', 'desc').orderBy('title').limit(20).fields(['title', 'n'])
  answers.push({ data: [{ id: 'a' }], next: 'CUR1' }, { data: [{ id: 'b' }], next: null }, { data: [], next: null }, { data: 7 })
  assert.deepEqual(await q.get(), { data: [{ id: 'a' }], next: 'CUR1' })
  assert.deepEqual(await q.get({ cursor: 'CUR1' }), { data: [{ id: 'b' }], next: null })
  assert.deepEqual(await q.startAfter('CUR2').get(), { data: [], next: null })
  assert.equal(await q.count(), 7)
  const base = {
    op: 'query',
    collection: 'todo_list',
    where: { $and: [{ done: false }, { n: { $gte: 3 } }] },
    orderBy: [['n', 'desc'], ['title', 'asc']],
    limit: 20,
    fields: ['title', 'n'],
  }
  assert.deepEqual(events, [
    { op: 'insert', collection: 'todo_list', obj: { title: 'x' } },
    base,
    { ...base, cursor: 'CUR1' },
    { ...base, cursor: 'CUR2' },
    { op: 'count', collection: 'todo_list', where: base.where },
  ])
  events.length = 0
  answers.push({ data: [] }, { data: 0 })
  assert.deepEqual(await todos.get(), { data: [], next: null }, 'a bare collection is a query over everything')
  await todos.owner('u_bob').count()
  assert.deepEqual(events, [{ op: 'query', collection: 'todo_list' }, { op: 'count', collection: 'todo_list', owner: 'u_bob' }])
  assert.throws(() => todos.orderBy('n', 'down'), (e) => e.code === 'InvalidArgument')
  assert.equal(typeof todos.where({}).doc, 'undefined', 'where() gives a Query, not a Collection')
})

test('aggregate sends the pipeline, the where as its $match, and the owner', async () => {
  const { mb, events, answers } = await setup()
  const todos = mb.db.collection('todo_list')
  const group = { $group: { _id: '$done', n: { $count: {} } } }
  answers.push({ data: [{ _id: false, n: 2 }] }, { data: [] })
  assert.deepEqual(await todos.where({ n: { $gte: 3 } }).owner('u_bob').aggregate([group, { $limit: 5 }]), [{ _id: false, n: 2 }])
  assert.deepEqual(await todos.aggregate([group]), [])
  assert.deepEqual(events, [
    { op: 'aggregate', collection: 'todo_list', owner: 'u_bob', pipeline: [{ $match: { n: { $gte: 3 } } }, group, { $limit: 5 }] },
    { op: 'aggregate', collection: 'todo_list', pipeline: [group] },
  ])
  await assert.rejects(todos.aggregate({ $group: {} }), (e) => e.code === 'InvalidArgument')
})

test('batch sends {op: batch, ops, collection?} and returns the results array', async () => {
  const { mb, events, answers } = await setup()
  answers.push({ data: [{ id: 'x' }, null] })
  const ops = [{ op: 'insert', collection: 'todo_list', obj: { id: 'x' } }, { op: 'remove', id: 'b' }]
  assert.deepEqual(await mb.db.batch(ops, { collection: 'todo_list' }), [{ id: 'x' }, null])
  assert.deepEqual(events, [{ op: 'batch', ops, collection: 'todo_list' }])
  await assert.rejects(mb.db.batch([]), (e) => e.code === 'InvalidArgument')
})

test('files.upload: uploadUrl, then PUT of the bytes with exactly the returned method and headers', async () => {
  const { mb, server, events, answers } = await setup()
  answers.push({ data: { url: '/files/users/u/a.txt?Expires=1&Signature=s', method: 'PUT', headers: { 'Content-Type': 'text/plain', 'x-extra': '1' }, expiresAt: 'z' } })
  const puts = []
  const t = mb.transport.request
  mb.transport.request = async (req) => {
    if (req.method === 'PUT') {
      puts.push(req)
      return { status: 200, headers: {}, data: '' }
    }
    return t(req)
  }
  const bytes = new TextEncoder().encode('hello')
  assert.deepEqual(await mb.files.upload('a.txt', bytes, { contentType: 'text/plain' }), { path: 'a.txt', size: 5, contentType: 'text/plain' })
  assert.deepEqual(events, [{ op: 'uploadUrl', path: 'a.txt', contentType: 'text/plain', size: 5 }])
  assert.equal(puts.length, 1)
  assert.equal(puts[0].url, 'https://api.example.com/files/users/u/a.txt?Expires=1&Signature=s')
  assert.deepEqual(puts[0].headers, { 'Content-Type': 'text/plain', 'x-extra': '1' })
  assert.equal(puts[0].body, bytes)
  assert.equal(puts[0].headers.authorization, undefined, 'the signed URL is the credential')

  // A Blob: size and type from the Blob; absolute URLs are used as given.
  answers.push({ data: { url: 'https://bucket.example.com/k?sig', method: 'PUT', headers: { 'content-type': 'image/png' } } })
  const blob = new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' })
  assert.deepEqual(await mb.files.upload('p.png', blob), { path: 'p.png', size: 3, contentType: 'image/png' })
  assert.equal(puts[1].url, 'https://bucket.example.com/k?sig')
  assert.equal(puts[1].body, blob)

  // A failed PUT is an error with the body's code.
  answers.push({ data: { url: '/files/x', method: 'PUT', headers: {} } })
  mb.transport.request = async (req) => (req.method === 'PUT' ? { status: 403, headers: {}, data: '{"error":{"code":"PermissionDenied","message":"expired link"}}' } : t(req))
  await assert.rejects(mb.files.upload('x', new Uint8Array(1)), (e) => e.code === 'PermissionDenied' && e.status === 403)
  await assert.rejects(mb.files.upload('x', 'not-a-file-on-the-web'), (e) => e.code === 'InvalidArgument')
  await assert.rejects(mb.files.upload('x', 42), (e) => e.code === 'InvalidArgument')
  assert.ok(server)
})

test('files in a mini-program: a string is a local file path read with getFileSystemManager', async () => {
  const host = fakeHost('wechat', (opts) => {
    if (opts.method === 'PUT') return { statusCode: 200, header: {}, data: '' }
    return null
  })
  const server = fakeServer()
  const events = []
  server.functions.files = (e) => (events.push(e), { data: { url: 'https://oss.example.com/u/pic.jpg?sig', method: 'PUT', headers: { 'Content-Type': 'image/jpeg' } } })
  const fileBytes = new Uint8Array([7, 7, 7, 7]).buffer
  host.files = { 'wxfile://tmp/pic.jpg': fileBytes }
  // Session calls go through the fake server, the PUT through the fake wx.request.
  const wxT = (await import('../../src/index.js')).wechatTransport(host)
  const transport = { name: 'wechat', setsDate: true, request: (req) => (req.method === 'PUT' ? wxT.request(req) : server.handle(req)) }
  const mb = createClient({ endpoint: 'https://api.example.com', service: 'svc', platform: 'wechat', host, transport })
  await mb.login({ authCode: 'dev:alice' })
  assert.deepEqual(await mb.files.upload('pic.jpg', 'wxfile://tmp/pic.jpg', { contentType: 'image/jpeg' }), { path: 'pic.jpg', size: 4, contentType: 'image/jpeg' })
  assert.deepEqual(events, [{ op: 'uploadUrl', path: 'pic.jpg', contentType: 'image/jpeg', size: 4 }])
  const put = host.calls.at(-1)
  assert.equal(put.method, 'PUT')
  assert.equal(put.url, 'https://oss.example.com/u/pic.jpg?sig')
  assert.deepEqual(put.header, { 'Content-Type': 'image/jpeg' })
  assert.equal(put.data, fileBytes)
  await assert.rejects(mb.files.upload('x', { filePath: 'wxfile://missing' }), (e) => e.code === 'InvalidArgument' && /no such file/.test(e.message))
})

test('files.downloadUrl / stat / list / remove event shapes', async () => {
  const { mb, events, answers } = await setup()
  answers.push(
    { data: { url: '/files/users/u/a.txt?Signature=s', expiresAt: 'e' } },
    { data: { path: 'a.txt', size: 5, contentType: 'text/plain', updated: 't' } },
    { data: [{ path: 'a.txt' }], next: 'N' },
    { data: null },
  )
  assert.deepEqual(await mb.files.downloadUrl('a.txt'), { url: 'https://api.example.com/files/users/u/a.txt?Signature=s', expiresAt: 'e' })
  assert.equal((await mb.files.stat('a.txt')).size, 5)
  assert.deepEqual(await mb.files.list({ prefix: 'a', limit: 10, cursor: 'C' }), { data: [{ path: 'a.txt' }], next: 'N' })
  assert.equal(await mb.files.remove('a.txt'), null)
  assert.deepEqual(events, [
    { op: 'downloadUrl', path: 'a.txt' },
    { op: 'stat', path: 'a.txt' },
    { op: 'list', prefix: 'a', limit: 10, cursor: 'C' },
    { op: 'remove', path: 'a.txt' },
  ])
})

test('files.downloadUrls: one call per 100 paths, urls made absolute; resolveFileIds walks documents', async () => {
  const { mb, events, answers } = await setup()
  const paths = Array.from({ length: 150 }, (_, i) => 'p' + i)
  const echo = (chunk) => ({ data: chunk.map((p) => (p === 'p7' ? { path: p, error: { code: 'NotFound', message: 'no' } } : { path: p, fileId: 'mb://users/u/' + p, url: '/files/users/u/' + p + '?S=1', expiresAt: 'e' })) })
  // The two calls go out at once and may arrive in either order: each is answered for its
  // own paths, and the first chunk's answer comes last.
  const answer = async (e) => {
    if (e.paths[0] === 'p0') await new Promise((resolve) => setTimeout(resolve, 30))
    return echo(e.paths)
  }
  answers.push(answer, answer)
  const out = await mb.files.downloadUrls(paths, { thumb: '200x200' })
  assert.deepEqual(out.map((o) => o.path), paths) // in the order asked, whichever answer came first
  assert.equal(out[0].url, 'https://api.example.com/files/users/u/p0?S=1')
  assert.deepEqual(out[7], { path: 'p7', error: { code: 'NotFound', message: 'no' } })
  const calls = events.map((e) => [e.op, e.paths[0], e.paths.length, e.thumb]).sort((a, b) => b[2] - a[2])
  assert.deepEqual(calls, [['downloadUrls', 'p0', 100, '200x200'], ['downloadUrls', 'p100', 50, '200x200']])
  await assert.rejects(mb.files.downloadUrls('p0'), (e) => e.code === 'InvalidArgument')

  events.length = 0
  const docs = [
    { title: 'a', photo: 'mb://public/a.png', more: { list: ['mb://public/b.png', 'plain', 'mb://public/a.png'] } },
    { title: 'b', photo: 'mb://users/u/gone.png' },
  ]
  answers.push({
    data: [
      { path: 'mb://public/a.png', fileId: 'mb://public/a.png', url: 'https://cdn.example.com/public/a.png', expiresAt: null },
      { path: 'mb://public/b.png', fileId: 'mb://public/b.png', url: '/files/public/b.png', expiresAt: null },
      { path: 'mb://users/u/gone.png', error: { code: 'NotFound', message: 'no' } },
    ],
  })
  assert.deepEqual(await mb.files.resolveFileIds(docs), {
    'mb://public/a.png': 'https://cdn.example.com/public/a.png',
    'mb://public/b.png': 'https://api.example.com/files/public/b.png',
  })
  assert.deepEqual(events, [{ op: 'downloadUrls', paths: ['mb://public/a.png', 'mb://public/b.png', 'mb://users/u/gone.png'] }])
  assert.deepEqual(await mb.files.resolveFileIds([{ title: 'none' }]), {})
  assert.equal(events.length, 1) // nothing to resolve: no call
})

test('files in a mini-program: a local file goes as a form upload through the host uploadFile', async () => {
  const host = fakeHost('wechat', () => null)
  host.files = { 'wxfile://tmp/pic.png': new Uint8Array([1, 2, 3]).buffer }
  const base = host.getFileSystemManager
  host.getFileSystemManager = () => Object.assign(base(), { getFileInfo: ({ filePath, success, fail }) => (host.files[filePath] ? success({ size: host.files[filePath].byteLength }) : fail({ errMsg: 'no such file' })) })
  const uploads = []
  host.uploadFile = (opts) => {
    uploads.push(opts)
    setTimeout(() => (host.uploadStatus ? opts.success({ statusCode: host.uploadStatus, data: host.uploadBody }) : opts.success({ statusCode: 200, data: '{"size":3}' })), 0)
  }
  const server = fakeServer()
  const events = []
  const answers = []
  server.functions.files = (e) => (events.push(e), answers.shift())
  const mb = createClient({ endpoint: 'https://api.example.com', service: 'svc', platform: 'wechat', host, transport: server.transport() })
  await mb.login({ authCode: 'dev:alice' })
  answers.push({ data: { url: '/files/users/u/pic.png?Signature=s', name: 'file', formData: { a: 'b' }, expiresAt: 'e', fileId: 'mb://users/u/pic.png' } })
  assert.deepEqual(await mb.files.upload('pic.png', 'wxfile://tmp/pic.png'), { path: 'pic.png', size: 3, contentType: 'image/png', fileId: 'mb://users/u/pic.png' })
  assert.deepEqual(events, [{ op: 'uploadForm', path: 'pic.png', contentType: 'image/png', size: 3 }])
  assert.equal(uploads[0].url, 'https://api.example.com/files/users/u/pic.png?Signature=s')
  assert.equal(uploads[0].filePath, 'wxfile://tmp/pic.png')
  assert.equal(uploads[0].name, 'file')
  assert.deepEqual(uploads[0].formData, { a: 'b' })
  assert.equal(host.calls.length, 0) // no bytes went through wx.request

  // A refusal of the POST is an error with the body's code.
  answers.push({ data: { url: '/files/x', name: 'file', formData: {} } })
  host.uploadStatus = 413
  host.uploadBody = '{"error":{"code":"PayloadTooLarge","message":"too big"}}'
  await assert.rejects(mb.files.upload('x.png', 'wxfile://tmp/pic.png'), (e) => e.code === 'PayloadTooLarge' && e.status === 413)

  // Where the server says a form cannot be bound (S3, owner-write areas): the PUT instead.
  host.uploadStatus = 0
  events.length = 0
  server.functions.files = (e) => {
    events.push(e)
    if (e.op === 'uploadForm') return { status: 400, body: { error: { code: 'InvalidArgument', message: 'use uploadUrl', fallback: 'uploadUrl' } } }
    return { data: { url: 'https://bucket.example.com/k?sig', method: 'PUT', headers: {} } }
  }
  const puts = []
  const t = mb.transport.request
  mb.transport.request = async (req) => (req.method === 'PUT' ? (puts.push(req), { status: 200, headers: {}, data: '' }) : t(req))
  const done = await mb.files.upload('inbox/p.png', { filePath: 'wxfile://tmp/pic.png' })
  assert.deepEqual(events.map((e) => e.op), ['uploadForm', 'uploadUrl'])
  assert.deepEqual(done, { path: 'inbox/p.png', size: 3, contentType: 'image/png' })
  assert.equal(puts.length, 1)
  // { form: false }: straight to the PUT.
  events.length = 0
  await mb.files.upload('p.png', 'wxfile://tmp/pic.png', { form: false })
  assert.deepEqual(events.map((e) => e.op), ['uploadUrl'])
})
