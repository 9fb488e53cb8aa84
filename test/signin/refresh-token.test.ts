import t from 'tap'
import { request } from 'undici'
import { DEV_IDS, startEmulator, type RunningEmulator } from '../../src/emulator'
import { interactiveSignIn, pkce, rejection } from '../helpers/interactive'
import { MsalKit, jwtClaims } from '../helpers/msal-clients'
import { SignInDriver } from '../helpers/sign-in-driver'

const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`
const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`
const ALICE = { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password }
const SPA_ORIGIN = 'http://localhost:8080'

let now = Date.now()
let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => {
  // 60-second tokens: msal-node renews anything expiring within 5 minutes, so every silent call refreshes.
  emulator = await startEmulator({ tokenLifetimeSeconds: 60, clock: () => now })
  kit = new MsalKit(emulator)
})
t.teardown(async () => {
  await kit.close()
  await emulator.close()
})

async function token (form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    dispatcher: kit.agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString()
  })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

t.test('msal-node acquireTokenSilent after the access token expired: refresh grant, any consented resource, rotation', async (t) => {
  const { pca, result } = await interactiveSignIn(kit, { scopes: [GATEWAY_SCOPE], credentials: ALICE })
  const account = result.account!
  const before = emulator.records.tokenRequests().length
  const silent = await pca.acquireTokenSilent({ account, scopes: [GATEWAY_SCOPE] })
  t.not(silent.accessToken, result.accessToken, 'a new access token')
  t.match(jwtClaims(silent.accessToken), { aud: DEV_IDS.gateway.clientId, oid: DEV_IDS.alice.objectId, scp: DEV_IDS.gateway.scope })
  const other = await pca.acquireTokenSilent({ account, scopes: [ITEMS_READ] })
  t.match(jwtClaims(other.accessToken), { aud: DEV_IDS.sampleApi.clientId, scp: 'Items.Read', oid: DEV_IDS.alice.objectId }, 'the same refresh token serves another resource')
  const refreshes = emulator.records.tokenRequests().slice(before)
  t.same(refreshes.map((r) => [r.grantType, r.status, r.userObjectId]), [['refresh_token', 200, DEV_IDS.alice.objectId], ['refresh_token', 200, DEV_IDS.alice.objectId]])

  const cache = JSON.parse(pca.getTokenCache().serialize()) as { RefreshToken: Record<string, { secret: string }> }
  const stored = Object.values(cache.RefreshToken)[0]!.secret
  const rotated = await token({ grant_type: 'refresh_token', client_id: DEV_IDS.devClient.clientId, refresh_token: stored, scope: `${GATEWAY_SCOPE} offline_access` })
  t.equal(rotated.status, 200)
  t.type(rotated.body.refresh_token, 'string')
  t.not(rotated.body.refresh_token, stored, 'every redemption hands out a new refresh token')

  const stranger = await token({ grant_type: 'refresh_token', client_id: DEV_IDS.gateway.clientId, client_secret: DEV_IDS.gateway.secret, refresh_token: stored, scope: GATEWAY_SCOPE })
  t.match(stranger, { status: 400, body: { error: 'invalid_grant', error_codes: [70000] } }, 'another client cannot redeem it')

  emulator.sessions.revoke(DEV_IDS.tenantId, DEV_IDS.alice.objectId)
  const refused = await rejection(pca.acquireTokenSilent({ account, scopes: [GATEWAY_SCOPE], forceRefresh: true }))
  t.match(refused, { errorCode: 'invalid_grant', errorNo: 50173 }, 'refused after a session revocation')
})

t.test('the claims parameter: xms_cc and a CAE nbf go into the refreshed token', async (t) => {
  const refresh = (await signInRaw(DEV_IDS.devClient.clientId)).refresh_token as string
  const nbf = Math.floor(Date.now() / 1000) + 5
  const answer = await token({
    grant_type: 'refresh_token',
    client_id: DEV_IDS.devClient.clientId,
    refresh_token: refresh,
    scope: GATEWAY_SCOPE,
    claims: `{"access_token":{"nbf":{"essential":true,"value":"${nbf}"},"xms_cc":{"values":["cp1"]}}}`
  })
  t.equal(answer.status, 200)
  t.match(jwtClaims(answer.body.access_token as string), { xms_cc: ['cp1'], iat: nbf })

  const stepUp = await token({ grant_type: 'refresh_token', client_id: DEV_IDS.devClient.clientId, refresh_token: refresh, scope: GATEWAY_SCOPE, claims: '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}' })
  t.match(stepUp, { status: 400, body: { error: 'invalid_grant', error_codes: [50076], suberror: 'basic_action' } }, 'a step-up the refresh token cannot satisfy needs a sign-in')
})

t.test('spa refresh tokens: cross-origin only, 24 hours from sign-in however often used', async (t) => {
  const body = await signInRaw(DEV_IDS.devSpa.clientId, `${SPA_ORIGIN}/`)
  t.type(body.refresh_token_expires_in, 'number')
  const first = body.refresh_token as string
  const form = { grant_type: 'refresh_token', client_id: DEV_IDS.devSpa.clientId, refresh_token: first, scope: `${GATEWAY_SCOPE} offline_access` }
  t.match(await token(form), { status: 400, body: { error: 'invalid_request', error_codes: [9002327] } }, 'no Origin: refused')
  now += 23 * 3600 * 1000
  const renewed = await token(form, { origin: SPA_ORIGIN })
  t.equal(renewed.status, 200)
  now += 2 * 3600 * 1000
  const late = await token({ ...form, refresh_token: renewed.body.refresh_token as string }, { origin: SPA_ORIGIN })
  t.match(late, { status: 400, body: { error: 'invalid_grant', error_codes: [700084] } }, 'the successor ends when the first one does')
  now = Date.now()
})

t.test('a disabled user\'s refresh token is refused', async (t) => {
  const body = await signInRaw(DEV_IDS.devClient.clientId, undefined, { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password })
  emulator.users.disable(DEV_IDS.tenantId, DEV_IDS.bob.objectId)
  t.teardown(() => { emulator.users.enable(DEV_IDS.tenantId, DEV_IDS.bob.objectId) })
  const refused = await token({ grant_type: 'refresh_token', client_id: DEV_IDS.devClient.clientId, refresh_token: body.refresh_token as string, scope: GATEWAY_SCOPE })
  t.match(refused, { status: 400, body: { error: 'invalid_grant', error_codes: [50057] } })
})

/** A code flow without msal: the token endpoint's raw answer (spa codes need the Origin header). */
async function signInRaw (clientId: string, redirectUri = 'http://localhost:53124', user: { username: string, password: string } = ALICE): Promise<Record<string, unknown>> {
  const { verifier, challenge } = pkce()
  const query = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope: `${GATEWAY_SCOPE} openid offline_access`, code_challenge: challenge, code_challenge_method: 'S256' })
  const driver = new SignInDriver(kit.agent, emulator.url)
  const answer = await driver.signIn(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize?${query.toString()}`, user)
  const code = new URL(answer.location ?? '').searchParams.get('code') ?? ''
  const spa = clientId === DEV_IDS.devSpa.clientId
  const redeemed = await token({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: redirectUri, code_verifier: verifier, scope: `${GATEWAY_SCOPE} openid offline_access` }, spa ? { origin: SPA_ORIGIN } : {})
  if (redeemed.status !== 200) throw new Error(`redemption failed: ${JSON.stringify(redeemed.body)}`)
  return redeemed.body
}
