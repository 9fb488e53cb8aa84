import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { DEV_IDS, defaultSeed, parseSeed, startEmulator, type RunningEmulator } from '../../src/emulator'
import { mapEntraError } from '../../src/acquisition/entra-error-map'
import { MsalKit } from '../helpers/msal-clients'

const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const FIXTURES = resolve(__dirname, '..', 'fixtures', 'entra')

let emulator: RunningEmulator
let kit: MsalKit
let aliceToken: string
let bobToken: string

t.before(async () => {
  emulator = await startEmulator()
  kit = new MsalKit(emulator)
  aliceToken = (await kit.signIn()).accessToken
  bobToken = (await kit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password })).accessToken
})
t.teardown(async () => {
  await kit.close()
  await emulator.close()
})
t.afterEach(() => { emulator.failures.clear() })

const obo = async (assertion: string, scopes = [ITEMS_READ]): Promise<unknown> =>
  await kit.confidentialClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes, skipCache: true })

async function rawObo (assertion: string): Promise<{ status: number, headers: Record<string, unknown>, body: Record<string, unknown> }> {
  const res = await request(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    dispatcher: kit.agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: JWT_BEARER, requested_token_use: 'on_behalf_of', assertion, scope: ITEMS_READ, client_id: DEV_IDS.gateway.clientId, client_secret: DEV_IDS.gateway.secret }).toString()
  })
  return { status: res.statusCode, headers: res.headers, body: await res.body.json() as Record<string, unknown> }
}

t.test('each failure kind reaches msal-node in Entra\'s shape', async (t) => {
  emulator.failures.inject({ grant: 'obo', kind: 'mfa_interaction_required', times: 1 })
  await t.rejects(obo(aliceToken), { name: 'InteractionRequiredAuthError', errorCode: 'interaction_required', errorNo: 50079, claims: '{"access_token":{"polids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}' })
  emulator.failures.inject({ grant: 'obo', kind: 'mfa_basic_action', times: 1, claims: '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}' })
  await t.rejects(obo(aliceToken), { name: 'InteractionRequiredAuthError', errorCode: 'invalid_grant', subError: 'basic_action', errorNo: 50076, claims: '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}' })
  emulator.failures.inject({ grant: 'obo', kind: 'consent_required', times: 1 })
  await t.rejects(obo(aliceToken), { name: 'InteractionRequiredAuthError', errorCode: 'invalid_grant', subError: 'consent_required', errorNo: 65001 })
  emulator.failures.inject({ grant: 'obo', kind: 'invalid_scope', times: 1 })
  await t.rejects(obo(aliceToken), { name: 'ServerError', errorCode: 'invalid_scope', errorNo: 70011 })
  emulator.failures.inject({ grant: 'obo', kind: 'invalid_client_secret', times: 1 })
  await t.rejects(obo(aliceToken), { name: 'ServerError', errorCode: 'invalid_client', errorNo: 7000215 })
  t.equal(await obo(aliceToken).then(() => 'ok'), 'ok', 'times: 1 each, so the next request succeeds')

  emulator.failures.inject({ grant: 'obo', kind: 'throttled', retryAfterSeconds: 9, times: 1 })
  const throttled = await rawObo(aliceToken)
  t.equal(throttled.status, 429)
  t.equal(throttled.headers['retry-after'], '9')
  t.match(throttled.body, { error: 'temporarily_unavailable', error_codes: [50196], error_description: /^AADSTS50196: The server terminated an operation because it encountered a client request loop/ })
  emulator.failures.inject({ grant: 'obo', kind: 'throttled', times: 1 })
  await t.rejects(obo(aliceToken), { name: 'EntraUnavailableError', reason: 'throttled', status: 429, retryAfterSeconds: 7, errorNo: 50196 }, 'through the project network client: a 429 never reaches msal\'s throttling')

  emulator.failures.inject({ grant: 'obo', kind: 'server_error', times: 1 })
  t.match(await rawObo(aliceToken), { status: 500, body: { error: 'server_error' } })
  emulator.failures.inject({ grant: 'obo', kind: 'server_error', status: 503, retryAfterSeconds: 3, times: 1 })
  t.match(await rawObo(aliceToken), { status: 503, headers: { 'retry-after': '3' }, body: { error: 'temporarily_unavailable' } })

  const slow = emulator.failures.inject({ grant: 'obo', kind: 'slow', delayMs: 50, times: 1 })
  t.match(await rawObo(aliceToken), { status: 200 }, 'slow answers normally, late')
  t.equal(slow.hits(), 1)
  t.match(emulator.records.tokenRequests().at(-1), { failure: 'slow', status: 200 })
})

t.test('rules match by user, client, scope and grant; handles remove them', async (t) => {
  const bobOnly = emulator.failures.inject({ userObjectId: DEV_IDS.bob.objectId, kind: 'mfa_basic_action' })
  await t.rejects(obo(bobToken), { name: 'InteractionRequiredAuthError', subError: 'basic_action' })
  t.ok(await obo(aliceToken), 'alice is not affected')
  t.equal(bobOnly.hits(), 1)
  bobOnly.remove()
  t.ok(await obo(bobToken), 'removed')

  emulator.failures.inject({ username: DEV_IDS.alice.username, grant: 'password', kind: 'invalid_client_secret' })
  await t.rejects(kit.signIn(), { name: 'ServerError', errorNo: 7000215 }, 'password grant, by username')
  t.ok(await kit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }))
  emulator.failures.clear()

  emulator.failures.inject({ scope: `${DEV_IDS.sampleApi.identifierUri}/Items.Write`, kind: 'consent_required' })
  t.ok(await obo(aliceToken), 'another scope')
  await t.rejects(obo(aliceToken, [`${DEV_IDS.sampleApi.identifierUri}/Items.Write`]), { name: 'InteractionRequiredAuthError', errorNo: 65001 })
  emulator.failures.clear()

  emulator.failures.inject({ clientId: DEV_IDS.daemon.clientId, grant: 'client_credentials', kind: 'server_error', status: 503 })
  await t.rejects(kit.appToken(), { name: 'EntraUnavailableError', reason: 'server_error', status: 503 })
  t.ok(await kit.appToken({ clientId: DEV_IDS.gateway.clientId, clientSecret: DEV_IDS.gateway.secret, scopes: [`${DEV_IDS.sampleApi.identifierUri}/.default`] }), 'another client')
})

t.test('token requests are counted by grant, client and user', async (t) => {
  const before = emulator.records.tokenRequests().length
  await obo(aliceToken)
  await obo(bobToken)
  await kit.appToken()
  emulator.failures.inject({ userObjectId: DEV_IDS.bob.objectId, kind: 'throttled', times: 1 })
  await t.rejects(obo(bobToken))
  const seen = emulator.records.tokenRequests().slice(before)
  t.match(seen, [
    { grantType: JWT_BEARER, clientId: DEV_IDS.gateway.clientId, userObjectId: DEV_IDS.alice.objectId, status: 200 },
    { grantType: JWT_BEARER, clientId: DEV_IDS.gateway.clientId, userObjectId: DEV_IDS.bob.objectId, status: 200 },
    { grantType: 'client_credentials', clientId: DEV_IDS.daemon.clientId, status: 200 },
    { grantType: JWT_BEARER, userObjectId: DEV_IDS.bob.objectId, status: 429, failure: 'throttled' }
  ])
  t.notOk('userObjectId' in seen[2]!, 'app-only requests have no user')
})

t.test('failures from the seed are active from the start', async (t) => {
  const seeded = await startEmulator({ seed: { ...structuredClone(defaultSeed), failures: [{ grant: 'password', username: DEV_IDS.bob.username, kind: 'mfa_interaction_required' }] } })
  t.teardown(() => seeded.close())
  const seededKit = new MsalKit(seeded)
  t.teardown(() => seededKit.close())
  await t.rejects(seededKit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }), { name: 'InteractionRequiredAuthError', errorCode: 'interaction_required', claims: /polids/ })
  t.ok(await seededKit.signIn())
  seeded.failures.clear()
  t.ok(await seededKit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }))
  t.throws(() => startEmulatorSync({ failures: [{ kind: 'nonsense' }] }), /failures\[0\]\.kind/)
})

function startEmulatorSync (extra: Record<string, unknown>): void {
  // parseSeed is what startEmulator runs first; a bad rule never starts a server.
  parseSeed({ ...structuredClone(defaultSeed), ...extra })
}

// What each captured Entra body becomes: in msal-node (does it keep `claims`?) and in the gateway.
const FIXTURE_EXPECTATIONS: Record<string, { status: number, msal: string, claims: boolean, gateway: string }> = {
  'token-error-app-only-assertion.json': { status: 400, msal: 'ServerError', claims: false, gateway: 'InvalidTokenError' },
  'token-error-assertion-expired.json': { status: 400, msal: 'ServerError', claims: false, gateway: 'InvalidTokenError' },
  'token-error-assertion-wrong-audience.json': { status: 400, msal: 'ServerError', claims: false, gateway: 'InvalidTokenError' },
  'token-error-client-assertion-expired.json': { status: 401, msal: 'ServerError', claims: false, gateway: 'GatewayCredentialError' },
  'token-error-consent-required.json': { status: 400, msal: 'InteractionRequiredAuthError', claims: false, gateway: 'ConsentRequiredError' },
  'token-error-invalid-client-secret.json': { status: 401, msal: 'ServerError', claims: false, gateway: 'GatewayCredentialError' },
  'token-error-invalid-scope.json': { status: 400, msal: 'ServerError', claims: false, gateway: 'TokenAcquisitionError' },
  'token-error-mfa-interaction-required.json': { status: 400, msal: 'InteractionRequiredAuthError', claims: true, gateway: 'InsufficientClaimsError' },
  'token-error-mfa-invalid-grant-basic-action.json': { status: 400, msal: 'InteractionRequiredAuthError', claims: true, gateway: 'InsufficientClaimsError' },
  'token-error-request-loop-throttled.json': { status: 429, msal: 'EntraUnavailableError', claims: false, gateway: 'IdentityUnavailableError' }
}

t.test('every token-error fixture, served by the emulator, through msal-node and the gateway\'s mapping', async (t) => {
  const files = readdirSync(FIXTURES).filter((f) => /^token-error-.*\.json$/.test(f)).sort()
  t.ok(files.length >= 10)
  for (const file of files) {
    const expected = FIXTURE_EXPECTATIONS[file]
    if (expected === undefined) {
      t.fail(`${file}: new fixture, add what msal-node and the gateway should make of it to FIXTURE_EXPECTATIONS`)
      continue
    }
    const body = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Record<string, unknown>
    emulator.failures.inject({ grant: 'obo', kind: 'response', status: expected.status, body, headers: expected.status === 429 ? { 'retry-after': '7' } : {}, times: 1 })
    const err = await obo(aliceToken).then(() => undefined, (e: unknown) => e as Record<string, unknown>)
    t.ok(err, `${file}: refused`)
    t.equal(err?.name, expected.msal, `${file}: msal-node raises ${expected.msal}`)
    if (expected.claims) t.equal(err?.claims, body.claims, `${file}: claims surface unchanged`)
    else t.notOk(err?.claims, `${file}: no claims`)
    const mapped = mapEntraError(err, [ITEMS_READ])
    t.equal(mapped.constructor.name, expected.gateway, `${file}: the gateway answers with ${expected.gateway}`)
    t.notMatch(JSON.stringify({ message: mapped.message }), /eyJ/, `${file}: no token in the message`)
  }
})
