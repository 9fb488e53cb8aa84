import { request, type Dispatcher } from 'undici'

/** GET a JSON document through a dispatcher whose timeouts bound the call; non-2xx is an error. */
export async function fetchJson<T> (url: string, dispatcher: Dispatcher): Promise<T> {
  const res = await request(url, { method: 'GET', dispatcher, headers: { accept: 'application/json' } })
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump()
    throw new Error(`GET ${url} answered HTTP ${res.statusCode}`)
  }
  return await res.body.json() as T
}
