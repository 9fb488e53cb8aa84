import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node'
import { request, type Dispatcher } from 'undici'

/**
 * msal-node's own client uses global fetch with no timeout and only the process-wide trust store.
 * This one sends every identity call through a dispatcher we own: bounded in time, trusting the
 * configured CA, pooled.
 */
export function createMsalNetworkClient (dispatcher: Dispatcher): INetworkModule {
  async function send<T> (method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    const res = await request(url, {
      method,
      dispatcher,
      headers: options?.headers ?? {},
      ...(method === 'POST' ? { body: options?.body ?? '' } : {})
    })
    const text = await res.body.text()
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = { error: 'invalid_response', error_description: `non-JSON answer with HTTP ${res.statusCode}` }
    }
    return { status: res.statusCode, headers, body: body as T }
  }
  return {
    sendGetRequestAsync: (url, options) => send('GET', url, options),
    sendPostRequestAsync: (url, options) => send('POST', url, options)
  }
}
