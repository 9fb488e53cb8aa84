import { randomUUID } from 'node:crypto'

export type EntraErrorName =
  | 'invalid_request'
  | 'invalid_tenant'
  | 'invalid_client'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'interaction_required'
  | 'temporarily_unavailable'
  | 'server_error'
  // Interactive sign-in (/authorize redirects) and the device code flow.
  | 'access_denied'
  | 'login_required'
  | 'consent_required'
  | 'unsupported_response_type'
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  | 'authorization_declined'

/** What some refusals carry beyond the common fields: MFA's claims, consent's suberror, throttling's Retry-After. */
export interface EntraErrorExtras {
  suberror?: string
  /** A claims request (JSON text), as Entra sends it with interaction_required / basic_action. */
  claims?: string
  headers?: Record<string, string>
}

/** A token endpoint refusal as Entra words it: an OAuth error name, an AADSTS number and a sentence. */
export class EntraError extends Error {
  override name = 'EntraError'
  constructor (
    readonly error: EntraErrorName,
    readonly code: number,
    readonly description: string,
    readonly status = error === 'invalid_client' ? 401 : 400,
    readonly extras: EntraErrorExtras = {}
  ) {
    super(`AADSTS${code}: ${description}`)
  }
}

export interface EntraErrorBody {
  error: string
  error_description: string
  error_codes: number[]
  timestamp: string
  trace_id: string
  correlation_id: string
  error_uri: string
  suberror?: string
  claims?: string
}

/** Entra's body, field for field as in test/fixtures/entra/token-error-*.json. */
export function entraErrorBody (err: EntraError, correlationId: string, now = new Date()): EntraErrorBody {
  const traceId = randomUUID()
  const timestamp = now.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  return {
    error: err.error,
    error_description: `AADSTS${err.code}: ${err.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [err.code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${err.code}`,
    // Field order as in the fixtures: suberror, then claims, after error_uri.
    ...(err.extras.suberror === undefined ? {} : { suberror: err.extras.suberror }),
    ...(err.extras.claims === undefined ? {} : { claims: err.extras.claims })
  }
}

/** Entra's seven-digit fraction, e.g. 2026-11-25T19:44:18.0381024Z, used inside AADSTS500133. */
export function entraInstant (epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z')
}

export const missingParameter = (name: string): EntraError =>
  new EntraError('invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`)

export const invalidScope = (scope: string, reason = ''): EntraError =>
  new EntraError('invalid_scope', 70011, `The provided value for the input parameter 'scope' isn't valid. The scope ${scope} isn't valid.${reason === '' ? '' : ` ${reason}`}`)

export const tenantNotFound = (segment: string): EntraError =>
  new EntraError('invalid_tenant', 90002, `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`)
