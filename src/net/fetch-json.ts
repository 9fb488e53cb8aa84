import { request, type Dispatcher } from 'undici'

/** A non-2xx answer to {@link fetchJson}. */
export class HttpStatusError extends Error {
  constructor (url: string, readonly status: number) {
    super(`GET ${url} answered HTTP ${status}`)
  }
}

/**
 * GET a JSON document; non-2xx is an error. With `timeoutMs` the whole call, connect to last byte,
 * has that deadline; without it only the dispatcher's own timeouts bound it.
 */
export async function fetchJson<T> (url: string, dispatcher: Dispatcher, timeoutMs?: number): Promise<T> {
  const signal = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)
  const res = await request(url, { method: 'GET', dispatcher, headers: { accept: 'application/json' }, ...(signal !== undefined ? { signal } : {}) })
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump()
    throw new HttpStatusError(url, res.statusCode)
  }
  return await res.body.json() as T
}

/**
 * Why a {@link fetchJson} call failed, in words that name no URL, host or address (a message such
 * as `connect ECONNREFUSED 10.0.0.5:443` does): the error code, `timeout`, or the HTTP status.
 */
export function fetchFailure (err: unknown): string {
  if (err instanceof HttpStatusError) return `HTTP ${err.status}`
  const { code, name } = (err ?? {}) as { code?: unknown, name?: unknown }
  // AbortSignal.timeout's DOMException has a numeric code of its own.
  if (name === 'TimeoutError') return 'timeout'
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) return code
  return 'invalid answer'
}
