import { request, type Dispatcher } from 'undici'

/**
 * An HTTP client for @azure/identity (its `httpClient` option) over an undici dispatcher that trusts
 * the emulator's CA: the Azure SDK otherwise trusts only what the process started with
 * (NODE_EXTRA_CA_CERTS). Typed structurally so the test needs no extra dependency.
 */
interface Headers extends Iterable<[string, string]> {
  get: (name: string) => string | undefined
  has: (name: string) => boolean
  set: (name: string, value: string | number | boolean) => void
  delete: (name: string) => void
  toJSON: () => Record<string, string>
}

function headers (entries: Record<string, string> = {}): Headers {
  const map = new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]))
  return {
    get: (name) => map.get(name.toLowerCase()),
    has: (name) => map.has(name.toLowerCase()),
    set: (name, value) => { map.set(name.toLowerCase(), String(value)) },
    delete: (name) => { map.delete(name.toLowerCase()) },
    toJSON: () => Object.fromEntries(map),
    [Symbol.iterator]: () => map.entries()
  }
}

interface PipelineRequestLike { url: string, method: string, headers: Headers, body?: unknown }

export function identityHttpClient (dispatcher: Dispatcher): { sendRequest: <R extends PipelineRequestLike>(req: R) => Promise<{ request: R, status: number, headers: Headers, bodyAsText: string }> } {
  return {
    sendRequest: async <R extends PipelineRequestLike>(req: R) => {
      const res = await request(req.url, {
        method: req.method as Dispatcher.HttpMethod,
        dispatcher,
        headers: req.headers.toJSON(),
        ...(typeof req.body === 'string' ? { body: req.body } : {})
      })
      const flat: Record<string, string> = {}
      for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) flat[name] = [value].flat().join(', ')
      return { request: req, status: res.statusCode, headers: headers(flat), bodyAsText: await res.body.text() }
    }
  }
}
