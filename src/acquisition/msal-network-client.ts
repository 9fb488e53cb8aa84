import { EventEmitter } from 'node:events'
import { AuthError, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node'
import { request, type Dispatcher } from 'undici'
import { DEFAULTS } from '../config/defaults'

/** Retry-After values above this are treated as this: a client should not be told to wait an hour. */
const MAX_RETRY_AFTER_SECONDS = 300

export type UnavailableReason = 'throttled' | 'server_error' | 'timeout' | 'unreachable'

/**
 * Entra could not serve the request now: 429, 5xx, no answer within the deadline, or no connection.
 *
 * It is thrown from inside the network client on purpose. msal-node's ThrottlingUtils records every
 * 429/5xx (and any non-2xx with Retry-After) under a key of client id + authority + scopes — not the
 * user — and then refuses *every* user's identical request locally until it expires (measured: one
 * user's 429 blocked all users). msal passes an AuthError thrown by the network client through
 * unchanged and skips its throttling bookkeeping, so the gateway sees the real status and Retry-After
 * and decides per request. It must extend msal-node's own AuthError class: msal checks `instanceof`.
 */
export class EntraUnavailableError extends AuthError {
  constructor (
    readonly reason: UnavailableReason,
    message: string,
    readonly status?: number,
    /** From Entra's Retry-After header, in seconds, when it sent one. */
    readonly retryAfterSeconds?: number,
    /** AADSTS number of the body, e.g. 50196 for Entra's request-loop throttling. */
    readonly errorNo?: number
  ) {
    super(`entra_${reason}`, '', message)
    // AuthError pins its own prototype in its constructor; restore ours so instanceof works.
    Object.setPrototypeOf(this, EntraUnavailableError.prototype)
    this.name = 'EntraUnavailableError'
  }
}

/** One call to the identity provider, as metrics see it. */
export interface IdentityCall {
  /** The token endpoint, or anything else (metadata, discovery). */
  endpoint: 'token' | 'other'
  outcome: number | 'timeout' | 'unreachable'
  durationMs: number
  /** AADSTS number of an error answer. */
  aadsts?: number
}

export interface MsalNetworkClientOptions {
  /** Deadline for one identity call (connect, headers and body); default `identity.timeoutMs`'s. */
  timeoutMs?: number
  onCall?: (call: IdentityCall) => void
}

/**
 * msal-node's own client uses global fetch with no timeout and only the process-wide trust store.
 * This one sends every identity call through a dispatcher we own: bounded in time, trusting the
 * configured CA, pooled — and keeps Entra's "come back later" answers away from msal's throttling.
 */
export class MsalNetworkClient implements INetworkModule {
  readonly timeoutMs: number
  private readonly onCall: ((call: IdentityCall) => void) | undefined

  constructor (private readonly dispatcher: Dispatcher, options: MsalNetworkClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.identity.timeoutMs
    this.onCall = options.onCall
  }

  /** The same pool and observer with another deadline (the configured `identity.timeoutMs`). */
  withTimeout (timeoutMs: number): MsalNetworkClient {
    return new MsalNetworkClient(this.dispatcher, { timeoutMs, ...(this.onCall ? { onCall: this.onCall } : {}) })
  }

  async sendGetRequestAsync<T> (url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return await this.send<T>('GET', url, options)
  }

  async sendPostRequestAsync<T> (url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return await this.send<T>('POST', url, options)
  }

  private async send<T> (method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    const { origin, pathname } = new URL(url)
    const where = `${method} ${origin}${pathname}`
    const endpoint = /\/oauth2\/(v2\.0\/)?token$/.test(pathname) ? 'token' : 'other'
    const started = performance.now()
    const report = (outcome: IdentityCall['outcome'], aadsts?: number): void => {
      this.onCall?.({ endpoint, outcome, durationMs: performance.now() - started, ...(aadsts !== undefined ? { aadsts } : {}) })
    }
    const deadline = new Deadline(this.timeoutMs)
    let status: number
    let rawHeaders: Record<string, string | string[] | undefined>
    let text: string
    try {
      const res = await request(url, {
        method,
        dispatcher: this.dispatcher,
        headers: options?.headers ?? {},
        signal: deadline,
        ...(method === 'POST' ? { body: options?.body ?? '' } : {})
      })
      status = res.statusCode
      rawHeaders = res.headers
      text = await res.body.text()
    } catch (err) {
      // Only the URL's origin and path: query strings can carry client-request-ids, never log more.
      report(deadline.aborted ? 'timeout' : 'unreachable')
      if (deadline.aborted) throw new EntraUnavailableError('timeout', `${where} did not answer within ${this.timeoutMs} ms`)
      throw new EntraUnavailableError('unreachable', `${where} failed: ${(err as Error).message}`)
    } finally {
      deadline.clear()
    }

    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(rawHeaders)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = { error: 'invalid_response', error_description: `non-JSON answer with HTTP ${status}` }
    }

    const errorNo = Number((body as { error_codes?: unknown[] } | null)?.error_codes?.[0])
    report(status, status >= 400 && Number.isInteger(errorNo) ? errorNo : undefined)
    if (status === 429 || status >= 500) {
      throw new EntraUnavailableError(status === 429 ? 'throttled' : 'server_error', `${where} answered HTTP ${status}`,
        status, parseRetryAfter(headers['retry-after']), Number.isInteger(errorNo) ? errorNo : undefined)
    }
    // Any other refusal still reaches msal (it parses Entra's error body), but without Retry-After,
    // which msal would otherwise turn into a cross-user throttle too.
    if (status < 200 || status >= 300) delete headers['retry-after']
    return { status, headers, body: body as T }
  }
}

/**
 * The deadline of one identity call, as the signal undici takes (an EventEmitter with `aborted`
 * and an 'abort' event). AbortSignal.timeout cost ~11 µs per call with undici's listener on it
 * (EventTarget) and left a timer pending for the whole timeout after every answered call; this
 * is one timer, cleared when the call ends.
 */
class Deadline extends EventEmitter {
  aborted = false
  private readonly timer: NodeJS.Timeout

  constructor (ms: number) {
    super()
    this.timer = setTimeout(() => {
      this.aborted = true
      this.emit('abort')
    }, ms)
  }

  clear (): void {
    clearTimeout(this.timer)
  }
}

/** Back-compatible factory: the client msal-node gets for every identity call. */
export function createMsalNetworkClient (dispatcher: Dispatcher, options: MsalNetworkClientOptions = {}): MsalNetworkClient {
  return new MsalNetworkClient(dispatcher, options)
}

/** RFC 9110 Retry-After: delay-seconds or an HTTP-date; capped, never negative. */
export function parseRetryAfter (value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const trimmed = value.trim()
  let seconds: number
  if (/^\d+$/.test(trimmed)) {
    seconds = Number(trimmed)
  } else {
    const at = Date.parse(trimmed)
    if (Number.isNaN(at)) return undefined
    seconds = Math.ceil((at - Date.now()) / 1000)
  }
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_SECONDS)
}
