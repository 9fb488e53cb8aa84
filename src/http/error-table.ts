import { encodeClaims } from '../challenges/claims'
import type { ChallengeParams } from '../challenges/www-authenticate'
import { BadRequestError, GatewayError, InternalError, RateLimitedError, type ErrorCode, type ErrorOf, type InvalidTokenReason, type KnownGatewayError } from '../errors'

/** Who the client must go to for a new token: put in every challenge. */
export interface ChallengeContext {
  instance: string
  tenantId: string
  clientId: string
}

/** A refusal the metrics count: `obo_gateway_token_validation_failures_total{reason}` or `obo_gateway_claims_challenges_total{kind}`. */
export type RefusalMetric =
  | { counter: 'validationFailures', reason: InvalidTokenReason | 'missing' | 'insufficient_scope' | 'client_not_capable' }
  | { counter: 'claimsChallenges', kind: 'entra' | 'authcontext' | 'downstream' | 'consent' | 'downstream_unsupported' }

/** What a client sees for one error code, and what the metrics count. */
export interface ErrorRow<E> {
  status: number | ((err: E) => number)
  /** The body's `error`. */
  error: string | ((err: E) => string)
  /**
   * Present: the answer carries `WWW-Authenticate: Bearer realm="", authorization_uri=..., client_id=...`
   * followed by these parameters. Absent: no challenge.
   */
  challenge?: (err: E, ctx: ChallengeContext) => ChallengeParams
  headers?: (err: E) => Record<string, string>
  metric?: RefusalMetric | ((err: E) => RefusalMetric)
}

type ErrorTable = { readonly [C in ErrorCode]: ErrorRow<ErrorOf<C>> }

const NONE: ChallengeParams = []

/** One row per error code (README, "What clients see"); a code without a row does not compile. */
export const ERROR_TABLE = {
  OBO_NO_TOKEN: {
    status: 401,
    error: 'missing_token',
    // RFC 6750 §3.1: no credentials, so no error code in the challenge.
    challenge: () => NONE,
    metric: { counter: 'validationFailures', reason: 'missing' }
  },
  OBO_INVALID_TOKEN: {
    status: 401,
    error: 'invalid_token',
    challenge: () => [['error', 'invalid_token']],
    metric: (err) => ({ counter: 'validationFailures', reason: err.reason })
  },
  OBO_INSUFFICIENT_SCOPE: {
    status: 403,
    error: 'insufficient_scope',
    challenge: (err) => [['error', 'insufficient_scope'], ...(err.scopes.length > 0 ? [['scope', err.scopes.join(' ')] as const] : [])],
    metric: { counter: 'validationFailures', reason: 'insufficient_scope' }
  },
  OBO_INSUFFICIENT_CLAIMS: {
    status: 401,
    error: 'insufficient_claims',
    challenge: (err) => [
      ['error', 'insufficient_claims'],
      ['claims', encodeClaims(err.claims)],
      ...(err.ccType !== undefined ? [['cc_type', err.ccType] as const] : [])
    ],
    metric: (err) => ({ counter: 'claimsChallenges', kind: err.origin === 'route' ? 'authcontext' : err.origin })
  },
  OBO_CLIENT_CAPABILITY_REQUIRED: {
    status: 403,
    error: 'client_capability_required',
    metric: { counter: 'validationFailures', reason: 'client_not_capable' }
  },
  OBO_DOWNSTREAM_CHALLENGE_UNSUPPORTED: {
    status: 401,
    error: 'claims_challenge_unsupported',
    challenge: () => [['error', 'invalid_token']],
    metric: { counter: 'claimsChallenges', kind: 'downstream_unsupported' }
  },
  OBO_CONSENT_REQUIRED: {
    status: 403,
    error: 'consent_required',
    challenge: (err, ctx) => {
      const scope = ['offline_access', ...err.scopes].join(' ')
      const consentUri = `${ctx.instance}/${ctx.tenantId}/oauth2/v2.0/authorize?client_id=${encodeURIComponent(ctx.clientId)}` +
        `&response_type=code&response_mode=query&scope=${encodeURIComponent(scope)}`
      return [['error', 'insufficient_scope'], ['scope', err.scopes.join(' ')], ['proposedAction', 'consent'], ['consentUri', consentUri]]
    },
    metric: { counter: 'claimsChallenges', kind: 'consent' }
  },
  OBO_IDENTITY_UNAVAILABLE: {
    status: 503,
    error: 'identity_unavailable',
    headers: (err) => ({ 'retry-after': String(err.retryAfterSeconds) })
  },
  OBO_GATEWAY_CREDENTIAL: { status: 503, error: 'gateway_credential_invalid' },
  OBO_TOKEN_ACQUISITION_FAILED: { status: 502, error: 'token_acquisition_failed' },
  OBO_OVERLOADED: {
    status: 503,
    error: 'overloaded',
    headers: (err) => ({ 'retry-after': String(err.retryAfterSeconds) })
  },
  OBO_UPSTREAM_UNREACHABLE: { status: 502, error: 'upstream_unreachable' },
  OBO_UPSTREAM_TIMEOUT: { status: 504, error: 'upstream_timeout' },
  // No challenge: the caller's token is fine, and a 401 would make MSAL.js sign the user in for nothing.
  OBO_UPSTREAM_REFUSED_TOKEN: { status: 502, error: 'upstream_refused_token' },
  // nginx's 499: in logs and metrics, the client's doing rather than a gateway failure.
  OBO_CLIENT_CLOSED_REQUEST: { status: 499, error: 'client_closed_request' },
  OBO_BAD_PATH: { status: 400, error: 'bad_path' },
  OBO_HEADERS_TOO_LARGE: { status: 431, error: 'headers_too_large' },
  OBO_AMBIGUOUS_AUTHORIZATION: {
    status: 400,
    error: 'invalid_request',
    challenge: () => [['error', 'invalid_request']]
  },
  OBO_BAD_HOST: { status: 400, error: 'bad_request' },
  // RFC 6750 §3.1: a request that uses an unsupported way of sending the token.
  OBO_TOKEN_IN_QUERY: {
    status: 400,
    error: 'invalid_request',
    challenge: () => [['error', 'invalid_request']]
  },
  OBO_REQUEST_TIMEOUT: { status: 408, error: 'request_timeout', headers: () => ({ connection: 'close' }) },
  OBO_MCP_REQUEST_REFUSED: { status: 400, error: 'invalid_mcp_request' },
  // OAuth's own error names: MCP clients read them as an authorization server's (RFC 6749 §5.2, RFC 7591 §3.2.2).
  OBO_OAUTH_REQUEST_REFUSED: { status: 400, error: (err) => err.oauthError },
  OBO_NOT_FOUND: { status: 404, error: 'not_found' },
  OBO_RATE_LIMITED: { status: 429, error: 'rate_limited' },
  OBO_BAD_REQUEST: { status: (err) => err.status, error: 'bad_request' },
  OBO_INTERNAL: { status: 500, error: 'internal_error' }
} satisfies ErrorTable

/**
 * Any thrown value as one of the gateway's errors. Fastify's own client errors (body too large,
 * bad content type, malformed JSON) and @fastify/rate-limit's 429 keep their status and message;
 * anything else is an internal error whose message stays in the log.
 */
export function knownError (err: unknown): KnownGatewayError {
  // Every subclass's code is an ErrorCode (tsc), so every GatewayError is one of the union.
  if (err instanceof GatewayError) return err as KnownGatewayError
  const status = (err as { statusCode?: unknown } | null)?.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = (err as Error).message
    return status === 429 ? new RateLimitedError(message) : new BadRequestError(message, status)
  }
  return new InternalError()
}

/** The row of an error. Sound because the table's type ties each code to its own class. */
export function errorRow (err: KnownGatewayError): ErrorRow<KnownGatewayError> {
  return (ERROR_TABLE as ErrorTable)[err.code] as ErrorRow<KnownGatewayError>
}

/** What the metrics count for a thrown value, if anything. */
export function refusalMetric (err: unknown): RefusalMetric | undefined {
  const known = knownError(err)
  const metric = errorRow(known).metric
  return typeof metric === 'function' ? metric(known) : metric
}
