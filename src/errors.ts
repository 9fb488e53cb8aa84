/**
 * Every failure a client or operator can see is one of these values. Each carries a stable `code`
 * and only what its row in src/http/error-table.ts needs; none ever holds a token.
 *
 * A new error is a class here, its name in {@link KnownGatewayError} and its row in the table:
 * `tsc` refuses a class whose code is not in the union, and a union member without a row.
 */
export abstract class GatewayError extends Error {
  abstract readonly code: ErrorCode
  readonly #detail: string | undefined

  constructor (message: string, detail?: string) {
    super(message)
    this.name = new.target.name
    this.#detail = detail
  }

  /**
   * The message with what only the operator may see (addresses, file paths): for the log, never
   * for a body. The message itself is the client's. An accessor, so a logged error holds it once.
   */
  get detail (): string {
    return this.#detail ?? this.message
  }
}

/** No credentials at all: RFC 6750 §3.1 says the challenge then carries no error code. */
export class NoTokenError extends GatewayError {
  readonly code = 'OBO_NO_TOKEN'
  constructor (message = 'No access token was sent; send Authorization: Bearer <token>') { super(message) }
}

/** Why a token was refused, as a bounded set (a metrics label; the message has the detail). */
export type InvalidTokenReason =
  | 'malformed' | 'algorithm' | 'issuer' | 'tenant' | 'unknown_key' | 'key_issuer' | 'signature'
  | 'expired' | 'not_yet_valid' | 'claims' | 'no_permissions' | 'rejected_by_entra' | 'invalid'

export class InvalidTokenError extends GatewayError {
  readonly code = 'OBO_INVALID_TOKEN'
  constructor (message: string, readonly reason: InvalidTokenReason = 'invalid') { super(message) }
}

export class InsufficientScopeError extends GatewayError {
  readonly code = 'OBO_INSUFFICIENT_SCOPE'
  constructor (message: string, readonly scopes: readonly string[]) { super(message) }
}

/** Entra (or a downstream API) wants more claims in the caller's token: MFA, CA policy, CAE. */
export class InsufficientClaimsError extends GatewayError {
  readonly code = 'OBO_INSUFFICIENT_CLAIMS'
  constructor (
    message: string,
    readonly claims: string,
    readonly ccType?: string,
    /** Who asked: Entra during token acquisition, a downstream API, or the route's own step-up rule. */
    readonly origin: 'entra' | 'downstream' | 'route' = 'entra'
  ) { super(message) }
}

/** The route needs a step-up the client could do, but it has not declared that it handles claims challenges (cp1). */
export class ClientCapabilityRequiredError extends GatewayError {
  readonly code = 'OBO_CLIENT_CAPABILITY_REQUIRED'
}

/**
 * A downstream API sent a claims challenge (CAE revocation, step-up) that the gateway could not
 * satisfy itself, and the caller did not declare cp1, so passing the raw challenge on would only
 * confuse it: it must sign the user in again.
 */
export class DownstreamChallengeUnsupportedError extends GatewayError {
  readonly code = 'OBO_DOWNSTREAM_CHALLENGE_UNSUPPORTED'
}

export class ConsentRequiredError extends GatewayError {
  readonly code = 'OBO_CONSENT_REQUIRED'
  constructor (message: string, readonly scopes: readonly string[]) { super(message) }
}

/** Entra could not be asked (unreachable, too slow, 5xx, throttled): the client may retry later. */
export class IdentityUnavailableError extends GatewayError {
  readonly code = 'OBO_IDENTITY_UNAVAILABLE'
  constructor (message: string, readonly retryAfterSeconds: number, detail?: string) { super(message, detail) }
}

/** Entra refused the gateway itself (credential, scope configuration): an operator must act. */
export class TokenAcquisitionError extends GatewayError {
  readonly code = 'OBO_TOKEN_ACQUISITION_FAILED'
  constructor (message: string, readonly entraError?: string) { super(message) }
}

/**
 * The gateway cannot prove its own identity: the configured credential is unusable (unreadable or
 * mismatched certificate, missing token file, managed identity endpoint failing) or Entra refused it
 * (AADSTS7000215, 700027, 700024, 7002xx). Clients get 503: nothing they do fixes it, an operator must.
 */
export class GatewayCredentialError extends GatewayError {
  readonly code = 'OBO_GATEWAY_CREDENTIAL'
  constructor (message: string, readonly entraError?: string, detail?: string) { super(message, detail) }
}

/** The gateway itself is saturated (event loop, memory): shed load rather than answer slowly. */
export class OverloadedError extends GatewayError {
  readonly code = 'OBO_OVERLOADED'
  constructor (readonly retryAfterSeconds: number, message = 'The gateway is overloaded; retry later') { super(message) }
}

export class UpstreamUnreachableError extends GatewayError {
  readonly code = 'OBO_UPSTREAM_UNREACHABLE'
}

export class UpstreamTimeoutError extends GatewayError {
  readonly code = 'OBO_UPSTREAM_TIMEOUT'
}

/**
 * The upstream answered 401 without a claims challenge, to a token it had not refused before or,
 * when the request could be sent again, to a new one from Entra too: something between the
 * gateway's configuration and the API's, not the caller's token. The upstream's answer is not
 * passed on: its challenge would make the client blame its own token, its body may quote ours.
 */
export class UpstreamRefusedTokenError extends GatewayError {
  readonly code = 'OBO_UPSTREAM_REFUSED_TOKEN'
  constructor (detail: string, message = 'The upstream refused the token the gateway obtained for it; the gateway\'s log has the details under this correlation id') { super(message, detail) }
}

/** The client hung up before its answer was complete; the upstream request was cancelled. Nobody sees the answer. */
export class ClientClosedRequestError extends GatewayError {
  readonly code = 'OBO_CLIENT_CLOSED_REQUEST'
  constructor (message = 'The client closed the connection before the answer was complete') { super(message) }
}

/** The request's header block is larger (count or bytes) than the gateway accepts. */
export class HeadersTooLargeError extends GatewayError {
  readonly code = 'OBO_HEADERS_TOO_LARGE'
}

/**
 * The request carries more than one Authorization header. Servers disagree on which one wins, so a
 * proxy in front and the gateway could each act on a different caller: refused (RFC 6750 §3.1).
 */
export class AmbiguousAuthorizationError extends GatewayError {
  readonly code = 'OBO_AMBIGUOUS_AUTHORIZATION'
  constructor (message = 'The request carries more than one Authorization header; send exactly one') { super(message) }
}

/**
 * Two Host headers, or one that is not host[:port]. Servers disagree on which of two wins, and the
 * value goes on to the upstream as X-Forwarded-Host, which upstreams put into the URLs they build.
 */
export class BadHostError extends GatewayError {
  readonly code = 'OBO_BAD_HOST'
}

/** The URL's query carries `access_token`: never a credential here, and never to be forwarded. */
export class TokenInQueryError extends GatewayError {
  readonly code = 'OBO_TOKEN_IN_QUERY'
  constructor (message = 'The query carries an access_token parameter; the gateway takes a token only from the Authorization header and does not forward one in the URL: remove it from the URL and send Authorization: Bearer <token>') { super(message) }
}

/** The client did not send its whole request within server.timeouts. */
export class RequestTimeoutError extends GatewayError {
  readonly code = 'OBO_REQUEST_TIMEOUT'
  constructor (message = 'The request was not received in time') { super(message) }
}

export class BadRequestPathError extends GatewayError {
  readonly code = 'OBO_BAD_PATH'
}

export class RouteNotFoundError extends GatewayError {
  readonly code = 'OBO_NOT_FOUND'
}

/** A request to an MCP route with per-tool rules whose call cannot be told (batch, unreadable body, headers that lie). */
export class McpRequestRefusedError extends GatewayError {
  readonly code = 'OBO_MCP_REQUEST_REFUSED'
  constructor (message: string, readonly reason: 'batch' | 'not_inspectable' | 'not_json_rpc' | 'header_mismatch') { super(message) }
}

/** A malformed or disallowed request to an MCP route's authorization-server facade, in OAuth's own error names. */
export class OAuthRequestError extends GatewayError {
  readonly code = 'OBO_OAUTH_REQUEST_REFUSED'
  constructor (message: string, readonly oauthError: 'invalid_request' | 'invalid_client' | 'invalid_scope' | 'invalid_redirect_uri' | 'invalid_client_metadata') { super(message) }
}

/** Over `server.rateLimit` (@fastify/rate-limit's error, which has set Retry-After already). */
export class RateLimitedError extends GatewayError {
  readonly code = 'OBO_RATE_LIMITED'
}

/** Fastify's own refusals of a malformed request (body too large, bad content type...), with their status. */
export class BadRequestError extends GatewayError {
  readonly code = 'OBO_BAD_REQUEST'
  constructor (message: string, readonly status: number) { super(message) }
}

/** Anything unexpected. The client gets this message only; the log has the cause. */
export class InternalError extends GatewayError {
  readonly code = 'OBO_INTERNAL'
  constructor (message = 'The gateway failed unexpectedly; its log has the details under this correlation id') { super(message) }
}

export type KnownGatewayError =
  | NoTokenError | InvalidTokenError | InsufficientScopeError | InsufficientClaimsError | ClientCapabilityRequiredError
  | DownstreamChallengeUnsupportedError | ConsentRequiredError | IdentityUnavailableError | TokenAcquisitionError
  | GatewayCredentialError | OverloadedError | UpstreamUnreachableError | UpstreamTimeoutError | UpstreamRefusedTokenError | ClientClosedRequestError
  | BadRequestPathError | RouteNotFoundError | RateLimitedError | BadRequestError | InternalError
  | HeadersTooLargeError | AmbiguousAuthorizationError | BadHostError | TokenInQueryError | RequestTimeoutError | McpRequestRefusedError | OAuthRequestError

export type ErrorCode = KnownGatewayError['code']

/** The error class behind a code. */
export type ErrorOf<C extends ErrorCode> = Extract<KnownGatewayError, { code: C }>
