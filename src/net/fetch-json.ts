import { request, type Dispatcher } from 'undici'

/**
 * GET a JSON document; non-2xx is an error. With `timeoutMs` the whole call, connect to last byte,
 * has that deadline; without it only the dispatcher's own timeouts bound it.
 */
export async function fetchJson<T> (url: string, dispatcher: Dispatcher, timeoutMs?: number): Promise<T> {
  const signal = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)
  const res = await request(url, { method: 'GET', dispatcher, headers: { accept: 'application/json' }, ...(signal !== undefined ? { signal } : {}) })
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump()
    throw new Error(`GET ${url} answered HTTP ${res.statusCode}`)
  }
  return await res.body.json() as T
}
