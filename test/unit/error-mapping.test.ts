import t from 'tap'
import { mapEntraError } from '../../src/acquisition/entra-error-map'
import {
  BadRequestPathError, ConsentRequiredError, IdentityUnavailableError, InsufficientClaimsError, InsufficientScopeError,
  InvalidTokenError, NoTokenError, RouteNotFoundError, TokenAcquisitionError, UpstreamTimeoutError, UpstreamUnreachableError, ClientClosedRequestError
} from '../../src/errors'
import { errorResponse } from '../../src/http/error-response'

const ctx = { instance: 'https://login.example', tenantId: 'contoso-tid', clientId: 'gw-client' }
const BASE = 'Bearer realm="", authorization_uri="https://login.example/contoso-tid/oauth2/v2.0/authorize", client_id="gw-client"'

t.test('each gateway error becomes DESIGN.md\'s status, challenge and body', async (t) => {
  const rows: Array<[Error, number, string, string | undefined]> = [
    [new NoTokenError(), 401, 'missing_token', BASE],
    [new InvalidTokenError('expired'), 401, 'invalid_token', `${BASE}, error="invalid_token"`],
    [new InsufficientScopeError('need', ['a', 'b']), 403, 'insufficient_scope', `${BASE}, error="insufficient_scope", scope="a b"`],
    [new InsufficientScopeError('no apps', []), 403, 'insufficient_scope', `${BASE}, error="insufficient_scope"`],
    [new InsufficientClaimsError('mfa', '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}', 'authcontext'), 401, 'insufficient_claims',
      `${BASE}, error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19", cc_type="authcontext"`],
    [new ConsentRequiredError('consent', ['api://x/Read']), 403, 'consent_required',
      `${BASE}, error="insufficient_scope", scope="api://x/Read", proposedAction="consent", consentUri="https://login.example/contoso-tid/oauth2/v2.0/authorize?client_id=gw-client&response_type=code&response_mode=query&scope=offline_access%20api%3A%2F%2Fx%2FRead"`],
    [new IdentityUnavailableError('down', 30), 503, 'identity_unavailable', undefined],
    [new TokenAcquisitionError('bad secret'), 502, 'token_acquisition_failed', undefined],
    [new UpstreamUnreachableError('refused'), 502, 'upstream_unreachable', undefined],
    [new UpstreamTimeoutError('slow'), 504, 'upstream_timeout', undefined],
    [new ClientClosedRequestError(), 499, 'client_closed_request', undefined],
    [new BadRequestPathError('..'), 400, 'bad_path', undefined],
    [new RouteNotFoundError('nope'), 404, 'not_found', undefined],
    [Object.assign(new Error('Body is too large'), { statusCode: 413 }), 413, 'bad_request', undefined],
    [new Error('secret internals'), 500, 'internal_error', undefined]
  ]
  for (const [err, status, error, challenge] of rows) {
    const res = errorResponse(err, ctx, 'corr')
    t.equal(res.status, status, `${err.constructor.name} status`)
    t.equal(res.body.error, error)
    t.equal(res.body.correlation_id, 'corr')
    t.equal(res.headers['www-authenticate'], challenge, `${err.constructor.name} challenge`)
  }
  t.equal(errorResponse(new IdentityUnavailableError('down', 30), ctx, 'c').headers['retry-after'], '30')
  t.notMatch(errorResponse(new Error('secret internals'), ctx, 'c').body.error_description, /secret/)
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
