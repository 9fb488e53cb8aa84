import { formatBearerChallenge, type ChallengeParams } from '../challenges/www-authenticate'
import { encodeClaims } from '../challenges/claims'
import {
  BadRequestPathError, ClientCapabilityRequiredError, ConsentRequiredError, DownstreamChallengeUnsupportedError, GatewayCredentialError, GatewayError, IdentityUnavailableError, InsufficientClaimsError,
  InsufficientScopeError, InvalidTokenError, NoTokenError, RouteNotFoundError, TokenAcquisitionError,
  OverloadedError, UpstreamTimeoutError, UpstreamUnreachableError, ClientClosedRequestError
} from '../errors'

/** Who the client must go to for a new token: put in every challenge. */
export interface ChallengeContext {
  instance: string
  tenantId: string
  clientId: string
}

export interface ErrorBody {
  error: string
  error_description: string
  correlation_id: string
}

export interface ErrorResponse {
  status: number
  headers: Record<string, string>
  body: ErrorBody
}

/** The single place where an error becomes a status, headers and a JSON body (DESIGN.md, "What the client sees"). */
export function errorResponse (err: unknown, ctx: ChallengeContext, correlationId: string): ErrorResponse {
  const base: ChallengeParams = [
    ['realm', ''],
    ['authorization_uri', `${ctx.instance}/${ctx.tenantId}/oauth2/v2.0/authorize`],
    ['client_id', ctx.clientId]
  ]
  const challenge = (status: number, error: string, message: string, extra: ChallengeParams = []): ErrorResponse => ({
    status,
    headers: { 'www-authenticate': formatBearerChallenge([...base, ...extra]) },
    body: { error, error_description: message, correlation_id: correlationId }
  })
  const plain = (status: number, error: string, message: string, headers: Record<string, string> = {}): ErrorResponse => ({
    status,
    headers,
    body: { error, error_description: message, correlation_id: correlationId }
  })

  if (err instanceof GatewayError) {
    if (err instanceof NoTokenError) return challenge(401, 'missing_token', err.message)
    if (err instanceof InvalidTokenError) return challenge(401, 'invalid_token', err.message, [['error', 'invalid_token']])
    if (err instanceof InsufficientScopeError) {
      return challenge(403, 'insufficient_scope', err.message, [
        ['error', 'insufficient_scope'],
        ...(err.scopes.length > 0 ? [['scope', err.scopes.join(' ')] as const] : [])
      ])
    }
    if (err instanceof InsufficientClaimsError) {
      return challenge(401, 'insufficient_claims', err.message, [
        ['error', 'insufficient_claims'],
        ['claims', encodeClaims(err.claims)],
        ...(err.ccType !== undefined ? [['cc_type', err.ccType] as const] : [])
      ])
    }
    if (err instanceof ClientCapabilityRequiredError) return plain(403, 'client_capability_required', err.message)
    if (err instanceof DownstreamChallengeUnsupportedError) return challenge(401, 'claims_challenge_unsupported', err.message, [['error', 'invalid_token']])
    if (err instanceof ConsentRequiredError) {
      const scope = ['offline_access', ...err.scopes].join(' ')
      const consentUri = `${ctx.instance}/${ctx.tenantId}/oauth2/v2.0/authorize?client_id=${encodeURIComponent(ctx.clientId)}` +
        `&response_type=code&response_mode=query&scope=${encodeURIComponent(scope)}`
      return challenge(403, 'consent_required', err.message, [
        ['error', 'insufficient_scope'],
        ['scope', err.scopes.join(' ')],
        ['proposedAction', 'consent'],
        ['consentUri', consentUri]
      ])
    }
    if (err instanceof IdentityUnavailableError) {
      return plain(503, 'identity_unavailable', err.message, { 'retry-after': String(err.retryAfterSeconds) })
    }
    if (err instanceof GatewayCredentialError) return plain(503, 'gateway_credential_invalid', err.message)
    if (err instanceof TokenAcquisitionError) return plain(502, 'token_acquisition_failed', err.message)
    if (err instanceof OverloadedError) return plain(503, 'overloaded', err.message)
    if (err instanceof UpstreamUnreachableError) return plain(502, 'upstream_unreachable', err.message)
    if (err instanceof UpstreamTimeoutError) return plain(504, 'upstream_timeout', err.message)
    // nginx's 499: in logs and metrics, the client's doing rather than a gateway failure.
    if (err instanceof ClientClosedRequestError) return plain(499, 'client_closed_request', err.message)
    if (err instanceof BadRequestPathError) return plain(400, 'bad_path', err.message)
    if (err instanceof RouteNotFoundError) return plain(404, 'not_found', err.message)
  }
  // Fastify's own client errors (body too large, bad content type, malformed JSON) keep their status.
  const status = (err as { statusCode?: unknown }).statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return plain(status, status === 429 ? 'rate_limited' : 'bad_request', (err as Error).message)
  }
  return plain(500, 'internal_error', 'The gateway failed unexpectedly; its log has the details under this correlation id')
}
