import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { DEV_IDS, type RunningEmulator } from '../../src/emulator'
import { MsalKit, jwtClaims, jwtHeader, startEmulatorWithKit } from '../helpers/msal-clients'

const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`
const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`
const FIXTURES = resolve(__dirname, '..', 'fixtures', 'entra')

let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => { ({ emulator, kit } = await startEmulatorWithKit(t)) })

async function postToken (form: Record<string, string>, headers: Record<string, string> = {}, tenant: string = DEV_IDS.tenantId): Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }> {
  const res = await request(`${emulator.url}/${tenant}/oauth2/v2.0/token`, {
    method: 'POST',
    dispatcher: kit.agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString()
  })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, headers: res.headers }
}

const gatewayCredentials = { client_id: DEV_IDS.gateway.clientId, client_secret: DEV_IDS.gateway.secret }
const obo = (assertion: string, scope = ITEMS_READ): Record<string, string> => ({
  grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  requested_token_use: 'on_behalf_of',
  assertion,
  scope,
  ...gatewayCredentials
})

t.test('password grant through msal-node: access token, id token, client_info', async (t) => {
  const result = await kit.signIn()
  const claims = jwtClaims(result.accessToken)
  t.match(claims, {
    aud: DEV_IDS.gateway.clientId,
    iss: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`,
    tid: DEV_IDS.tenantId,
    oid: DEV_IDS.alice.objectId,
    name: DEV_IDS.alice.name,
    preferred_username: DEV_IDS.alice.username,
    azp: DEV_IDS.devClient.clientId,
    azpacr: '0',
    scp: DEV_IDS.gateway.scope,
    ver: '2.0',
    amr: ['pwd'],
    uti: String
  })
  for (const name of ['iat', 'nbf', 'exp']) t.ok(Number.isInteger(claims[name]), `${name} is an integer`)
  t.equal(claims.exp as number - (claims.iat as number), 3600)
  t.notOk('idtyp' in claims, 'no idtyp on a user token')
  t.notOk('roles' in claims)
  t.type(claims.sub, 'string')
  t.not(claims.sub, claims.oid, 'sub is pairwise, not the oid')

  const header = jwtHeader(result.accessToken)
  t.match(header, { typ: 'JWT', alg: 'RS256', kid: String })
  t.notOk('x5t' in header, 'v2 tokens carry only kid')
  const jwks = await request(`${emulator.url}/${DEV_IDS.tenantId}/discovery/v2.0/keys`, { dispatcher: kit.agent })
  const keys = (await jwks.body.json() as { keys: Array<{ kid: string }> }).keys
  t.equal(header.kid, keys[0]?.kid, 'the first published key signs')

  t.match(result.idTokenClaims, {
    aud: DEV_IDS.devClient.clientId,
    oid: DEV_IDS.alice.objectId,
    tid: DEV_IDS.tenantId,
    preferred_username: DEV_IDS.alice.username,
    name: DEV_IDS.alice.name,
    sub: String
  })
  t.equal(result.account?.homeAccountId, `${DEV_IDS.alice.objectId}.${DEV_IDS.tenantId}`, 'client_info became the home account id')
  t.equal(result.tenantId, DEV_IDS.tenantId)
  t.ok(result.scopes.includes(GATEWAY_SCOPE))
})

t.test('password grant refusals', async (t) => {
  await t.rejects(kit.signIn({ password: 'not-her-password' }), { errorCode: 'invalid_grant', message: /AADSTS50126/ })
  await t.rejects(kit.signIn({ username: 'mallory@contoso.example' }), { errorCode: 'invalid_grant', message: /AADSTS50034/ })
  await t.rejects(kit.signIn({ scopes: [`${DEV_IDS.gateway.identifierUri}/Admin.Everything`] }), { errorCode: 'invalid_scope', message: /AADSTS70011/ })
  // A confidential client must authenticate even for ROPC.
  await t.rejects(kit.signIn({ clientId: DEV_IDS.gateway.clientId }), { errorCode: 'invalid_client', message: /AADSTS7000218/ })
})

t.test('on-behalf-of through msal-node', async (t) => {
  const user = await kit.signIn()
  const before = emulator.records.tokenRequests().length
  const gateway = kit.confidentialClient()
  const result = await gateway.acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [ITEMS_READ] })
  t.ok(result)
  const claims = jwtClaims(result?.accessToken ?? '')
  t.match(claims, {
    aud: DEV_IDS.sampleApi.clientId,
    iss: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`,
    tid: DEV_IDS.tenantId,
    oid: DEV_IDS.alice.objectId,
    name: DEV_IDS.alice.name,
    preferred_username: DEV_IDS.alice.username,
    azp: DEV_IDS.gateway.clientId,
    azpacr: '1',
    scp: 'Items.Read',
    ver: '2.0'
  })
  t.notOk('xms_cc' in claims, 'no xms_cc unless the client declares capabilities')
  t.not(claims.sub, jwtClaims(user.accessToken).sub, 'each resource sees its own pairwise sub')

  const again = await gateway.acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [ITEMS_READ] })
  t.equal(again?.accessToken, result?.accessToken, 'msal served the second call from its cache')
  const obo = emulator.records.tokenRequests().slice(before)
  t.equal(obo.length, 1, 'the emulator saw one token request')
  t.match(obo[0], { grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer', clientId: DEV_IDS.gateway.clientId, tenantId: DEV_IDS.tenantId, at: Number })

  const other = await kit.confidentialClient().acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [`${DEV_IDS.sampleApi.identifierUri}/.default`] })
  const otherClaims = jwtClaims(other?.accessToken ?? '')
  t.equal(otherClaims.sub, claims.sub, 'sub is stable per user and resource')
  t.equal(otherClaims.scp, 'Items.Read Items.Write', '.default means every exposed scope')
})

t.test('on-behalf-of with client capabilities puts xms_cc in the token', async (t) => {
  const user = await kit.signIn()
  const gateway = kit.confidentialClient({ clientCapabilities: ['cp1'] })
  const result = await gateway.acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [ITEMS_READ] })
  t.same(jwtClaims(result?.accessToken ?? '').xms_cc, ['cp1'])
})

t.test('on-behalf-of refusals surface through msal-node with Entra codes', async (t) => {
  const user = await kit.signIn()
  const gateway = kit.confidentialClient()
  const now = Math.floor(Date.now() / 1000)

  const expired = emulator.keys.sign(DEV_IDS.tenantId, { ...jwtClaims(user.accessToken), iat: now - 7200, nbf: now - 7200, exp: now - 60 })
  await t.rejects(gateway.acquireTokenOnBehalfOf({ oboAssertion: expired, scopes: [ITEMS_READ] }),
    { errorCode: 'invalid_grant', message: /AADSTS500133: Assertion is not within its valid time range/ })

  const forSampleApi = await kit.signIn({ scopes: [ITEMS_READ] })
  await t.rejects(gateway.acquireTokenOnBehalfOf({ oboAssertion: forSampleApi.accessToken, scopes: [ITEMS_READ] }),
    { errorCode: 'invalid_grant', message: /AADSTS500131: Assertion audience does not match/ })

  const appOnly = await kit.appToken()
  await t.rejects(gateway.acquireTokenOnBehalfOf({ oboAssertion: appOnly.accessToken, scopes: [ITEMS_READ] }),
    { errorCode: 'unauthorized_client', message: /AADSTS7000114/ })

  const [header, payload, signature = ''] = user.accessToken.split('.')
  const flipped = signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11)
  await t.rejects(gateway.acquireTokenOnBehalfOf({ oboAssertion: `${header}.${payload}.${flipped}`, scopes: [ITEMS_READ] }),
    { errorCode: 'invalid_grant', message: /AADSTS50013: Assertion failed signature validation/ })

  const unknownKey = emulator.keys.sign(DEV_IDS.tenantId, jwtClaims(user.accessToken), { kid: 'not-a-published-key' })
  await t.rejects(gateway.acquireTokenOnBehalfOf({ oboAssertion: unknownKey, scopes: [ITEMS_READ] }),
    { errorCode: 'invalid_grant', message: /AADSTS50013: .*The key was not found/ })

  await t.rejects(kit.confidentialClient({ clientSecret: 'wrong' }).acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [ITEMS_READ] }),
    { errorCode: 'invalid_client', message: /AADSTS7000215/ })
})

t.test('client credentials through msal-node', async (t) => {
  const result = await kit.appToken()
  const claims = jwtClaims(result.accessToken)
  t.match(claims, {
    aud: DEV_IDS.gateway.clientId,
    iss: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`,
    tid: DEV_IDS.tenantId,
    azp: DEV_IDS.daemon.clientId,
    azpacr: '1',
    idtyp: 'app',
    roles: [DEV_IDS.gateway.appRole],
    ver: '2.0'
  })
  t.notOk('scp' in claims)
  t.notOk('name' in claims)
  t.equal(claims.sub, claims.oid, 'app-only: sub and oid are the service principal')
  t.not(claims.oid, DEV_IDS.daemon.clientId, 'the service principal id is not the client id')
  t.equal(jwtClaims((await kit.appToken({ scopes: [`${DEV_IDS.gateway.clientId}/.default`] })).accessToken).oid, claims.oid, 'stable across requests')

  const relay = await kit.appToken({ clientId: DEV_IDS.gateway.clientId, clientSecret: DEV_IDS.gateway.secret, scopes: [`${DEV_IDS.sampleApi.identifierUri}/.default`] })
  t.same(jwtClaims(relay.accessToken).roles, [DEV_IDS.sampleApi.appRole])

  await t.rejects(kit.appToken({ clientSecret: 'not-the-secret' }), { errorCode: 'invalid_client', message: /AADSTS7000215/ })
  await t.rejects(kit.appToken({ scopes: [`${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`] }), { errorCode: 'invalid_scope', message: /AADSTS1002012/ })
})

t.test('error bodies have the exact fields of the Entra fixtures', async (t) => {
  const user = await kit.signIn()
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, Record<string, string>, number]> = [
    ['token-error-invalid-client-secret.json', { grant_type: 'client_credentials', client_id: DEV_IDS.daemon.clientId, client_secret: 'wrong', scope: `${DEV_IDS.gateway.identifierUri}/.default` }, 401],
    ['token-error-invalid-scope.json', { grant_type: 'client_credentials', client_id: DEV_IDS.daemon.clientId, client_secret: DEV_IDS.daemon.secret, scope: 'https://example.contoso.com/.default' }, 400],
    ['token-error-assertion-expired.json', obo(emulator.keys.sign(DEV_IDS.tenantId, { ...jwtClaims(user.accessToken), exp: now - 2 })), 400],
    ['token-error-assertion-wrong-audience.json', obo((await kit.signIn({ scopes: [ITEMS_READ] })).accessToken), 400],
    ['token-error-app-only-assertion.json', obo((await kit.appToken()).accessToken), 400]
  ]
  for (const [file, form, status] of cases) {
    const fixture = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Record<string, unknown>
    const res = await postToken(form)
    t.equal(res.status, status, `${file}: HTTP ${status}`)
    t.same(Object.keys(res.body).sort(), Object.keys(fixture).sort(), `${file}: same fields`)
    t.equal(res.body.error, fixture.error, `${file}: error`)
    t.same(res.body.error_codes, fixture.error_codes, `${file}: error_codes`)
    const description = String(res.body.error_description)
    t.match(description, new RegExp(`^AADSTS${String((fixture.error_codes as number[])[0])}: .+\\r\\nTrace ID: ${String(res.body.trace_id)}\\r\\nCorrelation ID: ${String(res.body.correlation_id)}\\r\\nTimestamp: ${String(res.body.timestamp)}$`), `${file}: description layout`)
    t.match(res.body.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/)
    t.equal(res.body.error_uri, `https://login.microsoftonline.com/error?code=${String((fixture.error_codes as number[])[0])}`)
  }
})

t.test('token endpoint protocol details', async (t) => {
  const correlation = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0'
  const missing = await postToken({ grant_type: 'client_credentials', client_id: DEV_IDS.daemon.clientId }, { 'client-request-id': correlation })
  t.match(missing, { status: 400, body: { error: 'invalid_request', error_codes: [900144], correlation_id: correlation } })
  t.match(missing.body.error_description, /'scope'/)
  t.equal(missing.headers['client-request-id'], correlation)
  t.match(missing.headers['cache-control'], /no-store/)

  t.match(await postToken({ client_id: DEV_IDS.daemon.clientId }), { status: 400, body: { error: 'invalid_request', error_codes: [900144] } })
  t.match(await postToken({ grant_type: 'urn:ietf:params:oauth:grant-type:saml1_1-bearer', client_id: DEV_IDS.daemon.clientId }), { status: 400, body: { error: 'unsupported_grant_type', error_codes: [70003] } })
  t.match(await postToken({ grant_type: 'client_credentials', client_id: '00000000-0000-4000-8000-000000000000', client_secret: 'x', scope: `${DEV_IDS.gateway.identifierUri}/.default` }),
    { status: 400, body: { error: 'unauthorized_client', error_codes: [700016] } })
  t.match(await postToken({ grant_type: 'client_credentials', client_id: DEV_IDS.devClient.clientId, scope: `${DEV_IDS.gateway.identifierUri}/.default` }),
    { status: 401, body: { error: 'invalid_client', error_codes: [7000218] } }, 'a public client cannot use client credentials')
  t.match(await postToken({ grant_type: 'client_credentials', client_id: DEV_IDS.daemon.clientId, client_assertion: 'x.y.z', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', scope: `${DEV_IDS.gateway.identifierUri}/.default` }),
    { status: 401, body: { error: 'invalid_client', error_codes: [700027] } }, 'certificate credentials are not seeded')
  t.match(await postToken({ grant_type: 'password', client_id: DEV_IDS.devClient.clientId, client_secret: 'x', username: DEV_IDS.alice.username, password: DEV_IDS.alice.password, scope: GATEWAY_SCOPE }),
    { status: 401, body: { error: 'invalid_client', error_codes: [700025] } }, 'a public client sends no secret')

  const basic = Buffer.from(`${DEV_IDS.daemon.clientId}:${DEV_IDS.daemon.secret}`).toString('base64')
  const viaBasic = await postToken({ grant_type: 'client_credentials', scope: `${DEV_IDS.gateway.identifierUri}/.default` }, { authorization: `Basic ${basic}` })
  t.equal(viaBasic.status, 200, 'HTTP Basic client authentication')
  t.same(Object.keys(viaBasic.body).sort(), ['access_token', 'expires_in', 'ext_expires_in', 'token_type'], 'the client credentials answer has the fixture fields')

  const user = await kit.signIn()
  const twoResources = await postToken(obo(user.accessToken, `${ITEMS_READ} ${GATEWAY_SCOPE}`))
  t.match(twoResources, { status: 400, body: { error: 'invalid_scope', error_codes: [700022] } })
  t.match(await postToken(obo(user.accessToken, `${DEV_IDS.sampleApi.identifierUri}/.default ${ITEMS_READ}`)), { status: 400, body: { error: 'invalid_scope', error_codes: [70011] } })
  t.match(await postToken(obo(user.accessToken, 'User.Read')), { status: 400, body: { error: 'invalid_scope', error_codes: [70011] } })
  t.match(await postToken(obo(user.accessToken, 'openid profile')), { status: 400, body: { error: 'invalid_scope', error_codes: [70011] } })
  t.match(await postToken(obo('not-a-jwt')), { status: 400, body: { error: 'invalid_grant', error_codes: [50027] } })
  t.match(await postToken({ ...obo(user.accessToken), requested_token_use: 'something_else' }), { status: 400, body: { error: 'invalid_request' } })
  t.match(await postToken({ ...obo(user.accessToken), claims: '{not json' }), { status: 400, body: { error: 'invalid_request', error_codes: [90100] } })

  const plain = await postToken(obo(user.accessToken, `${DEV_IDS.sampleApi.clientId}/Items.Write`))
  t.match(plain, { status: 200, body: { token_type: 'Bearer', scope: `${DEV_IDS.sampleApi.clientId}/Items.Write`, expires_in: 3600, ext_expires_in: 3600 } })
  t.notOk('id_token' in plain.body, 'no id_token without openid')
  t.notOk('refresh_token' in plain.body, 'no refresh_token without offline_access')
  const full = await postToken({ ...obo(user.accessToken, `openid profile offline_access ${ITEMS_READ}`), client_info: '1' })
  t.match(full.body, { id_token: String, refresh_token: String, client_info: String })
  t.same(JSON.parse(Buffer.from(String(full.body.client_info), 'base64url').toString()), { uid: DEV_IDS.alice.objectId, utid: DEV_IDS.tenantId })
  t.equal(jwtClaims(String(full.body.id_token)).aud, DEV_IDS.gateway.clientId, 'the id_token is for the calling client')

  t.match(await postToken({ grant_type: 'client_credentials' }), { status: 400, body: { error_codes: [900144] } }, 'no client at all')
  t.match(await postToken({ grant_type: 'client_credentials', scope: 'x/.default', client_id: DEV_IDS.daemon.clientId, client_secret: 'x' }, {}, 'fabrikam'),
    { status: 400, body: { error: 'invalid_tenant', error_codes: [90002] } })
})

t.test('multi-tenant token endpoints find the tenant like Entra', async (t) => {
  const user = await kit.signIn()
  const byAssertion = await postToken(obo(user.accessToken), {}, 'organizations')
  t.equal(byAssertion.status, 200, 'OBO over /organizations uses the assertion tid')
  t.equal(jwtClaims(String(byAssertion.body.access_token)).tid, DEV_IDS.tenantId)
  const byUser = await postToken({ grant_type: 'password', client_id: DEV_IDS.devClient.clientId, username: DEV_IDS.bob.username, password: DEV_IDS.bob.password, scope: GATEWAY_SCOPE }, {}, 'organizations')
  t.equal(jwtClaims(String(byUser.body.access_token)).oid, DEV_IDS.bob.objectId, 'ROPC over /organizations finds the user')
  t.match(await postToken({ grant_type: 'password', client_id: DEV_IDS.devClient.clientId, username: 'nobody@nowhere.example', password: 'x', scope: GATEWAY_SCOPE }, {}, 'common'),
    { status: 400, body: { error_codes: [50034] } })
  t.match(await postToken({ grant_type: 'client_credentials', client_id: DEV_IDS.daemon.clientId, client_secret: DEV_IDS.daemon.secret, scope: `${DEV_IDS.gateway.identifierUri}/.default` }, {}, 'common'),
    { status: 400, body: { error: 'invalid_request' } }, 'client credentials need a tenant')
  t.match(await postToken(obo('garbage'), {}, 'organizations'), { status: 400, body: { error_codes: [50027] } })
  t.match(await postToken(obo(emulator.keys.sign(DEV_IDS.tenantId, { tid: '11111111-2222-4333-8444-555555555555' })), {}, 'organizations'),
    { status: 400, body: { error: 'invalid_tenant' } })
})
