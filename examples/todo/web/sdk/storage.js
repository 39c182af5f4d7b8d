// Key-value storage adapters: { get(key) → string|null, set(key, string), remove(key) }.
// Values are JSON strings on every host, so a session saved by one adapter reads the same
// way everywhere. Methods may also return Promises (custom async storage works).

/** Alipay: `my.getStorageSync({key})` → `{data}`, `my.setStorageSync({key, data})`. */
export function alipayStorage(api) {
  return {
    name: 'alipay',
    get(key) {
      const r = api.getStorageSync({ key })
      const v = r && r.data
      return v === undefined || v === null || v === '' ? null : v
    },
    set(key, value) {
      api.setStorageSync({ key, data: value })
    },
    remove(key) {
      api.removeStorageSync({ key })
    },
  }
}

function wxStyleStorage(name, api) {
  return {
    name,
    get(key) {
      const v = api.getStorageSync(key) // '' when absent
      return v === undefined || v === null || v === '' ? null : v
    },
    set(key, value) {
      api.setStorageSync(key, value)
    },
    remove(key) {
      api.removeStorageSync(key)
    },
  }
}

/** WeChat: `wx.getStorageSync(key)`, `wx.setStorageSync(key, data)`, `wx.removeStorageSync(key)`. */
export function wechatStorage(api) {
  return wxStyleStorage('wechat', api)
}

/** Douyin: `tt.getStorageSync(key)` etc., as WeChat. */
export function douyinStorage(api) {
  return wxStyleStorage('douyin', api)
}

/** A Web Storage object (`localStorage`). */
export function webStorage(ls) {
  return {
    name: 'web',
    get(key) {
      return ls.getItem(key)
    },
    set(key, value) {
      ls.setItem(key, value)
    },
    remove(key) {
      ls.removeItem(key)
    },
  }
}

/** In-memory storage (the fallback; lost when the process ends). */
export function memoryStorage(initial) {
  const m = new Map(initial ? Object.entries(initial) : [])
  return {
    name: 'memory',
    get(key) {
      return m.has(key) ? m.get(key) : null
    },
    set(key, value) {
      m.set(key, value)
    },
    remove(key) {
      m.delete(key)
    },
  }
}

function usableLocalStorage() {
  try {
    const ls = typeof localStorage !== 'undefined' ? localStorage : null
    if (!ls) return null
    const probe = '__minibase_probe__'
    ls.setItem(probe, '1')
    ls.removeItem(probe)
    return ls
  } catch (e) {
    return null // private mode, sandboxed iframes, Node without --localstorage-file
  }
}

/** The default storage for a platform and its host API object. */
export function storageFor(platform, api) {
  if (platform === 'alipay' && api && api.getStorageSync) return alipayStorage(api)
  if (platform === 'wechat' && api && api.getStorageSync) return wechatStorage(api)
  if (platform === 'douyin' && api && api.getStorageSync) return douyinStorage(api)
  const ls = usableLocalStorage()
  return ls ? webStorage(ls) : memoryStorage()
}
