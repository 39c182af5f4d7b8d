'use strict'
// Generated from src/db.js by scripts/build.mjs: do not edit.
// The `db` function's events (docs/http-api.md) behind a small query builder. Every event names
// its collection.
const { MinibaseError } = require('./errors.js')

function page(answer) {
  return { data: answer && Array.isArray(answer.data) ? answer.data : [], next: answer && answer.next != null ? answer.next : null }
}

function checkId(id) {
  if (typeof id !== 'string' || !id) throw new MinibaseError('InvalidArgument', 'a document id must be a non-empty string', 400)
  return id
}

/** One document: `get`, `set` (op put), `update`, `remove`. */
class DocumentRef {
  constructor(client, collection, id, options) {
    this._client = client
    this.collection = collection
    this.id = checkId(id)
    this.owner = (options && options.owner) || null
  }

  _event(op, extra) {
    const e = { op, collection: this.collection, id: this.id }
    if (this.owner) e.owner = this.owner
    return Object.assign(e, extra)
  }

  /** The document, or null if it does not exist (or is not readable). */
  async get(options) {
    const extra = options && options.fields ? { fields: options.fields } : {}
    return (await this._client.invoke('db', this._event('get', extra))).data
  }

  /** Create or replace the document (op `put`); the id is this ref's. */
  async set(obj) {
    if (this.owner) throw new MinibaseError('InvalidArgument', 'documents are always written for the caller: set() takes no owner', 400)
    const o = Object.assign({}, obj, { id: this.id })
    await this._client.invoke('db', { op: 'put', collection: this.collection, obj: o })
    return null
  }

  /** Atomic update: `{set, unset, inc, push, pull, ifVersion}` → the updated document. */
  async update(patch) {
    const p = patch || {}
    const extra = {}
    for (const k of ['set', 'unset', 'inc', 'push', 'pull', 'ifVersion']) if (p[k] !== undefined) extra[k] = p[k]
    return (await this._client.invoke('db', this._event('update', extra))).data
  }

  /** Delete the document (no error when it does not exist). */
  async remove() {
    await this._client.invoke('db', this._event('remove', {}))
    return null
  }
}

/** An immutable query: each method returns a new Query. */
class Query {
  constructor(client, collection, state) {
    this._client = client
    this.collection = collection
    this._state = state || {}
  }

  _with(change) {
    return new Query(this._client, this.collection, Object.assign({}, this._state, change))
  }

  /** Mongo-style filter; calling `where` again ANDs the filters. */
  where(filter) {
    const w = this._state.where
    return this._with({ where: w ? { $and: [w, filter] } : filter })
  }

  /** Sort by `field` (dotted paths allowed), `'asc'` or `'desc'`; call again for ties. */
  orderBy(field, direction) {
    const dir = direction === undefined ? 'asc' : direction
    if (dir !== 'asc' && dir !== 'desc') throw new MinibaseError('InvalidArgument', "orderBy direction must be 'asc' or 'desc'", 400)
    return this._with({ orderBy: (this._state.orderBy || []).concat([[field, dir]]) })
  }

  /** At most `n` documents per page (server default 100, maximum 1000). */
  limit(n) {
    return this._with({ limit: n })
  }

  /** Only these fields (plus `id`) in the results. */
  fields(list) {
    return this._with({ fields: list })
  }

  /** Continue after a page: pass the `next` cursor of the previous page. */
  startAfter(cursor) {
    return this._with({ cursor })
  }

  /** Documents of another user (where the collection's rules allow reading them). */
  owner(uid) {
    return this._with({ owner: uid })
  }

  _event(op) {
    const s = this._state
    const e = { op, collection: this.collection }
    if (s.where !== undefined) e.where = s.where
    if (s.owner) e.owner = s.owner
    if (op === 'query') {
      if (s.orderBy) e.orderBy = s.orderBy
      if (s.limit !== undefined) e.limit = s.limit
      if (s.fields !== undefined) e.fields = s.fields
      if (s.cursor != null) e.cursor = s.cursor
    }
    return e
  }

  /** One page: `{data, next}`; `next` is null on the last page. `{cursor}` picks the page. */
  async get(options) {
    const e = this._event('query')
    if (options && options.cursor != null) e.cursor = options.cursor
    return page(await this._client.invoke('db', e))
  }

  /**
   * Keep the result current: `onChange(snapshot)` gets `{type, docs, docChanges}` first with
   * the whole result (`type: 'init'`), then after every change; `onError(err)` when the watch
   * ends (a bad query, a limit, the session ended). Returns `{close()}`. docs/realtime.md.
   */
  watch(handlers) {
    const h = handlers || {}
    if (typeof h.onChange !== 'function') throw new MinibaseError('InvalidArgument', 'watch needs { onChange(snapshot) }', 400)
    if (h.onError !== undefined && typeof h.onError !== 'function') throw new MinibaseError('InvalidArgument', 'watch: onError must be a function', 400)
    const s = this._state
    if (s.fields !== undefined) throw new MinibaseError('InvalidArgument', 'a watch returns whole documents: drop fields()', 400)
    if (s.cursor != null) throw new MinibaseError('InvalidArgument', 'a watch has no pages: drop startAfter()', 400)
    const e = { collection: this.collection }
    if (s.where !== undefined) e.where = s.where
    if (s.orderBy) e.orderBy = s.orderBy
    if (s.limit !== undefined) e.limit = s.limit
    if (s.owner) e.owner = s.owner
    return this._client._watch(e, h)
  }

  /** How many documents match (`where` only; order, limit and cursor are ignored). */
  async count() {
    return (await this._client.invoke('db', this._event('count'))).data
  }

  /**
   * Groups of the matching documents: `pipeline` is `[{$group}, {$sort}?, {$limit}?]`
   * (and `{$match}` first if this query has no `where`, which becomes the `$match`).
   */
  async aggregate(pipeline) {
    if (!Array.isArray(pipeline)) throw new MinibaseError('InvalidArgument', 'aggregate needs a pipeline: an array of stages', 400)
    const e = this._event('aggregate')
    e.pipeline = e.where === undefined ? pipeline : [{ $match: e.where }].concat(pipeline)
    delete e.where
    return (await this._client.invoke('db', e)).data
  }
}

/** A collection: a Query over all its (readable) documents, plus `doc` and `add`. */
class Collection extends Query {
  constructor(client, name) {
    if (typeof name !== 'string' || !name) throw new MinibaseError('InvalidArgument', 'a collection name is required', 400)
    super(client, name, {})
  }

  doc(id, options) {
    return new DocumentRef(this._client, this.collection, id, options)
  }

  /** Insert a new document (id generated unless `obj.id`; Conflict if it exists) → the document. */
  async add(obj) {
    return (await this._client.invoke('db', { op: 'insert', collection: this.collection, obj })).data
  }
}

class Database {
  constructor(client) {
    this._client = client
  }

  collection(name) {
    return new Collection(this._client, name)
  }

  /**
   * All-or-nothing writes (and reads): `ops` are db events such as
   * `{op: 'insert', collection, obj}`, `{op: 'update', collection, id, set}`,
   * `{op: 'remove', collection, id}`, `{op: 'put', …}`, `{op: 'get', …}`. Ops without a
   * collection use `options.collection` (else the server's default collection).
   * Resolves to the array of results.
   */
  async batch(ops, options) {
    if (!Array.isArray(ops) || ops.length === 0) throw new MinibaseError('InvalidArgument', 'batch needs a non-empty array of ops', 400)
    const e = { op: 'batch', ops }
    if (options && options.collection) e.collection = options.collection
    return (await this._client.invoke('db', e)).data
  }
}

module.exports = {
  DocumentRef: DocumentRef,
  Query: Query,
  Collection: Collection,
  Database: Database,
}
