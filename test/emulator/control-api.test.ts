import t from 'tap'
import { request } from 'undici'
import { DEV_IDS, startEmulator, type RunningEmulator } from '../../src/emulator'
import { jwtClaims, jwtHeader, MsalKit, startEmulatorWithKit } from '../helpers/msal-clients'

const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`

let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => { ({ emulator, kit } = await startEmulatorWithKit(t)) })

interface Answer { status: number, body: any, headers: Record<string, unknown> }

async function call (method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS', path: string, options: { body?: string | object, headers?: Record<string, string>, on?: RunningEmulator, kit?: MsalKit } = {}): Promise<Answer> {
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
  const res = await request(`${(options.on ?? emulator).url}${path}`, {
    method,
    dispatcher: (options.kit ?? kit).agent,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    ...(body === undefined ? {} : { body })
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

const obo = async (assertion: string): Promise<unknown> =>
  await kit.confidentialClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [ITEMS_READ], skipCache: true })

t.test('GET /_emulator/ lists every call', async (t) => {
  const { status, body } = await call('GET', '/_emulator/')
  t.equal(status, 200)
  const calls = (body.calls as Array<{ method: string, path: string, description: string }>).map((c) => `${c.method} ${c.path}`)
  t.same(calls, [
    'GET /_emulator/',
    'GET /_emulator/token-requests',
    'POST /_emulator/tenants/{tenantId}/users/{objectId}/revoke-sessions',
    'POST /_emulator/mfa-policies',
    'DELETE /_emulator/mfa-policies',
    'DELETE /_emulator/mfa-policies/{id}',
    'POST /_emulator/failures',
    'DELETE /_emulator/failures',
    'DELETE /_emulator/failures/{id}',
    'POST /_emulator/consents',
    'DELETE /_emulator/consents',
    'DELETE /_emulator/consents/{id}',
    'POST /_emulator/tenants/{tenantId}/keys',
    'DELETE /_emulator/tenants/{tenantId}/keys/{kid}'
  ])
  t.ok((body.calls as Array<{ description: string }>).every((c) => c.description.length > 0), 'each call says what it does')
  t.equal((await call('GET', '/_emulator')).status, 200, 'without the trailing slash too')
})

t.test('GET /_emulator/token-requests counts by grant, client and user', async (t) => {
  const before = (await call('GET', '/_emulator/token-requests')).body
  await obo((await kit.signIn()).accessToken)
  await kit.appToken()
  const { status, body } = await call('GET', '/_emulator/token-requests')
  t.equal(status, 200)
  const grew = (now: Record<string, number>, then: Record<string, number>, key: string): number => (now[key] ?? 0) - (then[key] ?? 0)
  t.equal(body.total - before.total, 3)
  t.equal(grew(body.byGrant, before.byGrant, 'password'), 1)
  t.equal(grew(body.byGrant, before.byGrant, 'urn:ietf:params:oauth:grant-type:jwt-bearer'), 1)
  t.equal(grew(body.byGrant, before.byGrant, 'client_credentials'), 1)
  t.equal(grew(body.byClient, before.byClient, DEV_IDS.gateway.clientId), 1)
  t.equal(grew(body.byClient, before.byClient, DEV_IDS.devClient.clientId), 1)
  t.equal(grew(body.byUser, before.byUser, DEV_IDS.alice.objectId), 2, 'the sign-in and the OBO were about alice')
})

t.test('failures: one added over HTTP makes msal-node\'s OBO fail with its AADSTS code, until deleted', async (t) => {
  const assertion = (await kit.signIn()).accessToken
  const added = await call('POST', '/_emulator/failures', { body: { grant: 'obo', kind: 'consent_required' } })
  t.equal(added.status, 201)
  t.match(added.body, { id: /^[0-9a-f-]{36}$/ })
  await t.rejects(obo(assertion), { message: /AADSTS65001/, errorNo: 65001, subError: 'consent_required' }, 'AADSTS65001 from the rule')
  await t.rejects(obo(assertion), { message: /AADSTS65001/, errorNo: 65001 }, 'until removed')
  t.equal((await call('DELETE', `/_emulator/failures/${String(added.body.id)}`)).status, 204)
  t.match(jwtClaims(((await obo(assertion)) as { accessToken: string }).accessToken), { scp: 'Items.Read' }, 'OBO works again')
  t.match(await call('DELETE', `/_emulator/failures/${String(added.body.id)}`), { status: 404, body: { error: 'not_found' } }, 'already gone')

  // `times` and DELETE of every rule
  t.equal((await call('POST', '/_emulator/failures', { body: { grant: 'obo', kind: 'mfa_basic_action' } })).status, 201)
  await t.rejects(obo(assertion), { message: /AADSTS50076/, errorNo: 50076 })
  t.equal((await call('DELETE', '/_emulator/failures')).status, 204)
  await obo(assertion)
  emulator.failures.inject({ grant: 'obo', kind: 'invalid_scope', times: 1 })
  await t.rejects(obo(assertion), { message: /AADSTS70011/, errorNo: 70011 }, 'the handle and HTTP act on the same rules')
})

t.test('revoke-sessions: older tokens fail OBO with AADSTS50173; a new sign-in works', async (t) => {
  const old = (await kit.signIn()).accessToken
  const revoked = await call('POST', `/_emulator/tenants/${DEV_IDS.tenantName}/users/${DEV_IDS.alice.objectId}/revoke-sessions`)
  t.equal(revoked.status, 200)
  t.equal(revoked.body.revocationTime, emulator.sessions.revocationTime(DEV_IDS.tenantId, DEV_IDS.alice.objectId))
  await t.rejects(obo(old), { name: 'InteractionRequiredAuthError', errorNo: 50173 })
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, revoked.body.revocationTime * 1000 - Date.now())))
  await obo((await kit.signIn()).accessToken)
  t.match(await call('POST', `/_emulator/tenants/${DEV_IDS.tenantId}/users/00000000-0000-4000-8000-000000000000/revoke-sessions`), { status: 404, body: { error: 'not_found', error_description: /no user/ } })
  t.match(await call('POST', `/_emulator/tenants/fabrikam/users/${DEV_IDS.alice.objectId}/revoke-sessions`), { status: 404, body: { error_description: /no tenant 'fabrikam'/ } })
})

t.test('mfa-policies: a policy added over HTTP demands MFA of OBO, until deleted', async (t) => {
  const assertion = (await kit.signIn()).accessToken
  const added = await call('POST', '/_emulator/mfa-policies', { body: { resource: DEV_IDS.sampleApi.identifierUri, shape: 'interaction_required' } })
  t.equal(added.status, 201)
  t.match(added.body, { id: /^[0-9a-f-]{36}$/, policyId: /^[0-9a-f-]{36}$/, claims: /polids/ })
  await t.rejects(obo(assertion), { name: 'InteractionRequiredAuthError', errorNo: 50079, claims: added.body.claims })
  t.equal((await call('DELETE', `/_emulator/mfa-policies/${String(added.body.id)}`)).status, 204)
  await obo(assertion)
  t.match(await call('POST', '/_emulator/mfa-policies', { body: { resource: 'api://nothing' } }), { status: 400, body: { error: 'invalid_request', error_description: /no application 'api:\/\/nothing'/ } })
  t.equal((await call('POST', '/_emulator/mfa-policies', { body: { resource: DEV_IDS.sampleApi.clientId } })).status, 201)
  t.equal((await call('DELETE', '/_emulator/mfa-policies')).status, 204)
  await obo(assertion)
  t.equal((await call('DELETE', '/_emulator/mfa-policies/nope')).status, 404)
})

t.test('keys: a published key appears in the JWKS and signs new tokens; a retired one leaves', async (t) => {
  const jwks = async (): Promise<string[]> => ((await call('GET', `/${DEV_IDS.tenantId}/discovery/v2.0/keys`)).body.keys as Array<{ kid: string }>).map((k) => k.kid)
  const before = await jwks()
  const published = await call('POST', `/_emulator/tenants/${DEV_IDS.tenantName}/keys`)
  t.equal(published.status, 201)
  const kid = String(published.body.kid)
  t.same(await jwks(), [kid, ...before], 'published first, the old keys stay (announced rollover)')
  const user = await kit.signIn()
  t.equal(jwtHeader(user.accessToken).kid, kid, 'new tokens carry its kid')
  t.equal(jwtHeader(((await obo(user.accessToken)) as { accessToken: string }).accessToken).kid, kid, 'OBO tokens too')

  const old = before[0] ?? ''
  t.equal((await call('DELETE', `/_emulator/tenants/${DEV_IDS.tenantId}/keys/${old}`)).status, 204)
  t.notOk((await jwks()).includes(old), 'the retired key left the JWKS')
  t.match(await call('DELETE', `/_emulator/tenants/${DEV_IDS.tenantId}/keys/${old}`), { status: 404, body: { error: 'not_found' } })
  for (const other of (await jwks()).filter((k) => k !== kid)) t.equal((await call('DELETE', `/_emulator/tenants/${DEV_IDS.tenantId}/keys/${other}`)).status, 204)
  t.match(await call('DELETE', `/_emulator/tenants/${DEV_IDS.tenantId}/keys/${kid}`), { status: 409, body: { error: 'conflict', error_description: /only key/ } }, 'a tenant keeps one key')
  t.equal((await call('POST', '/_emulator/tenants/fabrikam/keys')).status, 404)
})

t.test('bad bodies are 400 with a JSON reason, never a 500', async (t) => {
  const cases: Array<[string, string | object | undefined, RegExp]> = [
    ['/_emulator/failures', '{"kind":', /the body is not JSON/],
    ['/_emulator/failures', undefined, /the body must be a failure rule/],
    ['/_emulator/failures', { kind: 'nope' }, /not a failure rule: kind: expected/],
    ['/_emulator/failures', { kind: 'slow', delayMs: -1 }, /delayMs/],
    ['/_emulator/failures', [1, 2], /not a failure rule/],
    ['/_emulator/mfa-policies', { resource: DEV_IDS.sampleApi.clientId, colour: 'blue' }, /colour: unknown key/],
    ['/_emulator/mfa-policies', 'null', /not an MFA policy/]
  ]
  for (const [path, body, reason] of cases) {
    const res = await call('POST', path, body === undefined ? {} : { body })
    t.equal(res.status, 400, `${path} ${JSON.stringify(body)}`)
    t.match(res.body, { error: 'invalid_request', error_description: reason })
  }
  const form = await call('POST', '/_emulator/failures', { body: '{"grant":"obo","kind":"throttled","times":1}', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(form.status, 201, 'curl -d without a JSON content type is read as JSON too')
  t.equal((await call('DELETE', `/_emulator/failures/${String(form.body.id)}`)).status, 204)
  t.match(await call('GET', '/_emulator/nothing-here'), { status: 404, body: { error: 'not_found' } })
})

t.test('controlApi: false (--no-control-api) answers 404 under /_emulator/', async (t) => {
  const closed = await startEmulator({ controlApi: false })
  t.teardown(() => closed.close())
  const its = new MsalKit(closed)
  t.teardown(() => its.close())
  t.equal(closed.controlApi, false)
  t.match(await call('GET', '/_emulator/', { on: closed, kit: its }), { status: 404, body: { error: 'not_found' } })
  t.equal((await call('POST', '/_emulator/failures', { body: { kind: 'throttled' }, on: closed, kit: its })).status, 404)
  t.equal((await call('GET', `/${DEV_IDS.tenantId}/v2.0/.well-known/openid-configuration`, { on: closed, kit: its })).status, 200, 'the rest works')
})

t.test('CORS on metadata, JWKS and token endpoint, as Entra answers browsers', async (t) => {
  const origin = { origin: 'http://localhost:3000' }
  for (const path of [`/${DEV_IDS.tenantId}/v2.0/.well-known/openid-configuration`, `/${DEV_IDS.tenantId}/.well-known/openid-configuration`, `/${DEV_IDS.tenantId}/discovery/v2.0/keys`, '/common/discovery/keys']) {
    const res = await call('GET', path, { headers: origin })
    t.equal(res.status, 200, path)
    t.equal(res.headers['access-control-allow-origin'], '*', `${path}: any origin may read it`)
    t.equal((await call('GET', path)).headers['access-control-allow-origin'], undefined, `${path}: nothing without an Origin`)
  }
  const token = `/${DEV_IDS.tenantId}/oauth2/v2.0/token`
  const preflight = await call('OPTIONS', token, { headers: { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,client-request-id,x-client-sku' } })
  t.equal(preflight.status, 204, 'preflight answered')
  t.match(preflight.headers, {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'content-type,client-request-id,x-client-sku'
  })
  const answer = await request(`${emulator.url}${token}`, {
    method: 'POST',
    dispatcher: kit.agent,
    headers: { ...origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: DEV_IDS.daemon.clientId, client_secret: DEV_IDS.daemon.secret, scope: `${DEV_IDS.gateway.identifierUri}/.default` }).toString()
  })
  t.equal(answer.statusCode, 200)
  t.equal(answer.headers['access-control-allow-origin'], '*', 'the token answer is readable cross-origin')
  await answer.body.dump()
  const refused = await call('POST', token, { headers: { ...origin, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password' })
  t.equal(refused.status, 400)
  t.equal(refused.headers['access-control-allow-origin'], '*', 'errors too, so the browser can read the AADSTS code')
  t.equal((await call('OPTIONS', `/${DEV_IDS.tenantId}/discovery/v2.0/keys`, { headers: origin })).headers['access-control-allow-methods'], 'GET, OPTIONS')
})
