import t from 'tap'
import { mapEntraError } from '../../src/acquisition/entra-error-map'
import {
  BadRequestError, BadRequestPathError, ClientCapabilityRequiredError, ClientClosedRequestError, ConsentRequiredError, DownstreamChallengeUnsupportedError,
  GatewayCredentialError, IdentityUnavailableError, InsufficientClaimsError, InsufficientScopeError, InternalError, InvalidTokenError, McpRequestRefusedError, NoTokenError, OAuthRequestError,
  OverloadedError, RateLimitedError, RouteNotFoundError, HeadersTooLargeError, AmbiguousAuthorizationError, BadHostError, RequestTimeoutError, TokenInQueryError, TokenAcquisitionError, UpstreamRefusedTokenError, UpstreamTimeoutError, UpstreamUnreachableError,
  type ErrorCode, type ErrorOf
} from '../../src/errors'
import { errorResponse } from '../../src/http/error-response'
import { ERROR_TABLE, refusalMetric, type RefusalMetric } from '../../src/http/error-table'

const ctx = { instance: 'https://login.example', tenantId: 'contoso-tid', clientId: 'gw-client' }
const BASE = 'Bearer realm="", authorization_uri="https://login.example/contoso-tid/oauth2/v2.0/authorize", client_id="gw-client"'

type Expected = [status: number, error: string, challenge: string | undefined, metric: RefusalMetric | undefined, headers?: Record<string, string>]

/** One example and what the client sees for every code: a new code does not compile until it is here too. */
const EVERY_CODE: { [C in ErrorCode]: [ErrorOf<C>, Expected] } = {
  OBO_NO_TOKEN: [new NoTokenError(), [401, 'missing_token', BASE, { counter: 'validationFailures', reason: 'missing' }]],
  OBO_INVALID_TOKEN: [new InvalidTokenError('expired', 'expired'), [401, 'invalid_token', `${BASE}, error="invalid_token"`, { counter: 'validationFailures', reason: 'expired' }]],
  OBO_INSUFFICIENT_SCOPE: [new InsufficientScopeError('need', ['a', 'b']), [403, 'insufficient_scope', `${BASE}, error="insufficient_scope", scope="a b"`, { counter: 'validationFailures', reason: 'insufficient_scope' }]],
  OBO_INSUFFICIENT_CLAIMS: [new InsufficientClaimsError('mfa', '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}', 'authcontext', 'route'), [401, 'insufficient_claims',
    `${BASE}, error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19", cc_type="authcontext"`, { counter: 'claimsChallenges', kind: 'authcontext' }]],
  OBO_CLIENT_CAPABILITY_REQUIRED: [new ClientCapabilityRequiredError('cp1'), [403, 'client_capability_required', undefined, { counter: 'validationFailures', reason: 'client_not_capable' }]],
  OBO_DOWNSTREAM_CHALLENGE_UNSUPPORTED: [new DownstreamChallengeUnsupportedError('sign in'), [401, 'claims_challenge_unsupported', `${BASE}, error="invalid_token"`, { counter: 'claimsChallenges', kind: 'downstream_unsupported' }]],
  OBO_CONSENT_REQUIRED: [new ConsentRequiredError('consent', ['api://x/Read']), [403, 'consent_required',
    `${BASE}, error="insufficient_scope", scope="api://x/Read", proposedAction="consent", consentUri="https://login.example/contoso-tid/oauth2/v2.0/authorize?client_id=gw-client&response_type=code&response_mode=query&scope=offline_access%20api%3A%2F%2Fx%2FRead"`,
    { counter: 'claimsChallenges', kind: 'consent' }]],
  OBO_IDENTITY_UNAVAILABLE: [new IdentityUnavailableError('down', 30), [503, 'identity_unavailable', undefined, undefined, { 'retry-after': '30' }]],
  OBO_GATEWAY_CREDENTIAL: [new GatewayCredentialError('refused'), [503, 'gateway_credential_invalid', undefined, undefined]],
  OBO_TOKEN_ACQUISITION_FAILED: [new TokenAcquisitionError('bad scope'), [502, 'token_acquisition_failed', undefined, undefined]],
  OBO_OVERLOADED: [new OverloadedError(10), [503, 'overloaded', undefined, undefined, { 'retry-after': '10' }]],
  OBO_UPSTREAM_UNREACHABLE: [new UpstreamUnreachableError('refused'), [502, 'upstream_unreachable', undefined, undefined]],
  OBO_UPSTREAM_TIMEOUT: [new UpstreamTimeoutError('slow'), [504, 'upstream_timeout', undefined, undefined]],
  OBO_UPSTREAM_REFUSED_TOKEN: [new UpstreamRefusedTokenError('401 error="invalid_token" twice'), [502, 'upstream_refused_token', undefined, undefined]],
  OBO_CLIENT_CLOSED_REQUEST: [new ClientClosedRequestError(), [499, 'client_closed_request', undefined, undefined]],
  OBO_BAD_PATH: [new BadRequestPathError('..'), [400, 'bad_path', undefined, undefined]],
  OBO_MCP_REQUEST_REFUSED: [new McpRequestRefusedError('batch', 'batch'), [400, 'invalid_mcp_request', undefined, undefined]],
  OBO_OAUTH_REQUEST_REFUSED: [new OAuthRequestError('off the list', 'invalid_redirect_uri'), [400, 'invalid_redirect_uri', undefined, undefined]],
  OBO_NOT_FOUND: [new RouteNotFoundError('nope'), [404, 'not_found', undefined, undefined]],
  OBO_RATE_LIMITED: [new RateLimitedError('slow down'), [429, 'rate_limited', undefined, undefined]],
  OBO_BAD_REQUEST: [new BadRequestError('Body is too large', 413), [413, 'bad_request', undefined, undefined]],
  OBO_INTERNAL: [new InternalError(), [500, 'internal_error', undefined, undefined]],
  OBO_HEADERS_TOO_LARGE: [new HeadersTooLargeError('101 fields'), [431, 'headers_too_large', undefined, undefined]],
  OBO_AMBIGUOUS_AUTHORIZATION: [new AmbiguousAuthorizationError(), [400, 'invalid_request', `${BASE}, error="invalid_request"`, undefined]],
  OBO_BAD_HOST: [new BadHostError('two Host headers'), [400, 'bad_request', undefined, undefined]],
  OBO_TOKEN_IN_QUERY: [new TokenInQueryError(), [400, 'invalid_request', `${BASE}, error="invalid_request"`, undefined]],
  OBO_REQUEST_TIMEOUT: [new RequestTimeoutError(), [408, 'request_timeout', undefined, undefined, { connection: 'close' }]]
}

t.test('every error code has its status, body, challenge and metric', async (t) => {
  t.same(Object.keys(EVERY_CODE).sort(), Object.keys(ERROR_TABLE).sort(), 'the test covers every row')
  for (const [code, [err, [status, error, challenge, metric, headers = {}]]] of Object.entries(EVERY_CODE)) {
    t.equal(err.code, code)
    const res = errorResponse(err, ctx, 'corr')
    t.equal(res.status, status, `${code} status`)
    t.same(res.body, { error, error_description: err.message, correlation_id: 'corr' }, `${code} body`)
    t.equal(res.headers['www-authenticate'], challenge, `${code} challenge`)
    t.same(Object.fromEntries(Object.entries(res.headers).filter(([name]) => name !== 'www-authenticate')), headers, `${code} other headers`)
    t.same(refusalMetric(err), metric, `${code} metric`)
  }
})

t.test('errors that are not the gateway\'s own: Fastify\'s client errors, the rate limiter, anything else', async (t) => {
  const tooLarge = errorResponse(Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }), ctx, 'c')
  t.same([tooLarge.status, tooLarge.body.error, tooLarge.body.error_description], [413, 'bad_request', 'Request body is too large'])
  const limited = errorResponse(Object.assign(new Error('Rate limit exceeded, retry in 1 minute'), { statusCode: 429 }), ctx, 'c')
  t.same([limited.status, limited.body.error], [429, 'rate_limited'])
  for (const odd of [new Error('secret internals'), Object.assign(new Error('secret upstream'), { statusCode: 502 }), 'a string', null]) {
    const res = errorResponse(odd, ctx, 'c')
    t.same([res.status, res.body.error, res.headers], [500, 'internal_error', {}])
    t.notMatch(res.body.error_description, /secret/)
    t.equal(refusalMetric(odd), undefined)
  }
  t.same(refusalMetric(new InsufficientClaimsError('mfa', '{}')), { counter: 'claimsChallenges', kind: 'entra' }, 'claims Entra asked for')
  t.same(refusalMetric(new InsufficientClaimsError('cae', '{}', undefined, 'downstream')), { counter: 'claimsChallenges', kind: 'downstream' })
  t.same(refusalMetric(new InvalidTokenError('bad')), { counter: 'validationFailures', reason: 'invalid' })
  t.equal(errorResponse(new InsufficientScopeError('no apps', []), ctx, 'c').headers['www-authenticate'], `${BASE}, error="insufficient_scope"`, 'no scope parameter without scopes')
})

t.test('challenge values are quoted safely', async (t) => {
  const res = errorResponse(new InsufficientScopeError('x', ['a"b\\c']), ctx, 'c')
  t.match(res.headers['www-authenticate'], /scope="a\\"b\\\\c"$/)
})

t.test('Entra failures (as msal-node reports them) map to what the client must do', async (t) => {
  const scopes = ['api://x/Read']
  const rows: Array<[Record<string, unknown>, string]> = [
    [{ errorCode: 'invalid_grant', subError: 'consent_required', errorMessage: 'AADSTS65001: The user or administrator has not consented' }, 'ConsentRequiredError'],
    [{ errorCode: 'invalid_grant', subError: 'basic_action', errorMessage: 'AADSTS50076: MFA', claims: '{"access_token":{}}' }, 'InsufficientClaimsError'],
    [{ errorCode: 'interaction_required', errorMessage: 'AADSTS50079: enroll', claims: '{"access_token":{}}' }, 'InsufficientClaimsError'],
    [{ errorCode: 'interaction_required', errorMessage: 'AADSTS50058: no session' }, 'InvalidTokenError'],
    [{ errorCode: 'invalid_grant', errorMessage: 'AADSTS50173: The provided grant has expired due to it being revoked' }, 'InvalidTokenError'],
    [{ errorCode: 'invalid_grant', errorMessage: 'AADSTS500133: Assertion is not within its valid time range.' }, 'InvalidTokenError'],
    [{ errorCode: 'invalid_grant', errorNo: '500131', errorMessage: 'audience' }, 'InvalidTokenError'],
    [{ errorCode: 'unauthorized_client', errorMessage: 'AADSTS7000114: not allowed' }, 'InvalidTokenError'],
    // The gateway's own credential refused: 503 gateway_credential_invalid (issue #4), no longer 502.
    [{ errorCode: 'invalid_client', errorMessage: 'AADSTS7000215: Invalid client secret provided.' }, 'GatewayCredentialError'],
    [{ errorCode: 'invalid_scope', errorMessage: 'AADSTS70011: bad scope' }, 'TokenAcquisitionError'],
    [{ errorCode: 'invalid_client', errorMessage: 'AADSTS9999999: new code' }, 'GatewayCredentialError'],
    [{ errorCode: 'temporarily_unavailable', errorMessage: 'AADSTS50196: loop' }, 'IdentityUnavailableError'],
    [{ errorCode: 'server_error', status: 503 }, 'IdentityUnavailableError'],
    [{ errorCode: 'network_error', errorMessage: 'socket hang up' }, 'IdentityUnavailableError'],
    [{ errorCode: 'something_else', errorMessage: 'odd\nsecond line' }, 'TokenAcquisitionError']
  ]
  for (const [shape, expected] of rows) {
    t.equal(mapEntraError(shape, scopes).constructor.name, expected, JSON.stringify(shape).slice(0, 80))
  }
  const consent = mapEntraError(rows[0]![0], scopes) as ConsentRequiredError
  t.same(consent.scopes, scopes)
  const mfa = mapEntraError(rows[1]![0], scopes) as InsufficientClaimsError
  t.equal(mfa.claims, '{"access_token":{}}')
  t.equal(mapEntraError(rows.at(-1)![0], scopes).message, 'Token acquisition failed: odd')
  const already = new InvalidTokenError('x')
  t.equal(mapEntraError(already, scopes), already)
})
