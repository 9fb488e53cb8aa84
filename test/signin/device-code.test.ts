import t from 'tap'
import { PublicClientApplication } from '@azure/msal-node'
import { request } from 'undici'
import { DEV_IDS, startEmulator, type RunningEmulator } from '../../src/emulator'
import { MsalKit, jwtClaims } from '../helpers/msal-clients'
import { SignInDriver, parseForm } from '../helpers/sign-in-driver'

const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`

let now = Date.now()
let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => {
  emulator = await startEmulator({ clock: () => now })
  kit = new MsalKit(emulator)
})
t.teardown(async () => {
  await kit.close()
  await emulator.close()
})

async function post (path: string, form: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/${path}`, {
    method: 'POST',
    dispatcher: kit.agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString()
  })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

/** The user's side: open verification_uri, enter the user code, then the usual sign-in steps. */
async function enterCode (verificationUri: string, userCode: string, credentials: Parameters<SignInDriver['continue']>[1]): Promise<string> {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const page = await driver.get(verificationUri)
  t.ok(parseForm(page.body)?.fields.otc !== undefined, 'the device page has input[name=otc]')
  const next = await driver.submit(page, { otc: userCode }, 'idSIButton9')
  return (await driver.continue(next, credentials)).body
}

t.test('msal-node acquireTokenByDeviceCode with the code entered on the device page', async (t) => {
  const pca = new PublicClientApplication(kit.config(DEV_IDS.devClient.clientId))
  let response: { verificationUri: string, userCode: string, message: string, expiresIn: number, interval: number } | undefined
  let signedIn: Promise<string> | undefined
  const result = await pca.acquireTokenByDeviceCode({
    scopes: [GATEWAY_SCOPE],
    deviceCodeCallback: (r) => {
      response = r
      signedIn = enterCode(r.verificationUri, r.userCode, { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password })
    }
  })
  t.ok(result)
  t.match(jwtClaims(result!.accessToken), { oid: DEV_IDS.alice.objectId, aud: DEV_IDS.gateway.clientId, azp: DEV_IDS.devClient.clientId })
  t.match(response, { verificationUri: `${emulator.url}/common/oauth2/deviceauth`, expiresIn: 900, interval: 5, userCode: /^[A-Z0-9]{9}$/ })
  t.match(response?.message, response?.userCode ?? '')
  t.match(await signedIn, 'You have signed in')
  const polls = emulator.records.tokenRequests().filter((r) => r.grantType === 'device_code')
  t.same(polls.map((p) => p.status), [400, 200], 'authorization_pending, then the tokens')
})

t.test('polling answers: pending, slow_down, declined, expired, a wrong user code', async (t) => {
  const start = await post('devicecode', { client_id: DEV_IDS.devClient.clientId, scope: `${GATEWAY_SCOPE} offline_access` })
  t.equal(start.status, 200)
  const poll = { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: DEV_IDS.devClient.clientId, device_code: start.body.device_code as string }
  t.match(await post('token', poll), { status: 400, body: { error: 'authorization_pending', error_codes: [70016] } }, 'the RFC 8628 grant type spelling works too')
  t.match(await post('token', poll), { status: 400, body: { error: 'slow_down', error_codes: [70016], error_description: /^AADSTS70016: / } }, 'polled sooner than the interval')

  const driver = new SignInDriver(kit.agent, emulator.url)
  const page = await driver.get(start.body.verification_uri as string)
  const wrong = await driver.submit(page, { otc: 'NOTACODE1' }, 'idSIButton9')
  t.match(wrong.body, 'AADSTS70018', 'a wrong user code stays on the page')
  const account = await driver.submit(wrong, { otc: start.body.user_code as string }, 'idSIButton9')
  const declined = await driver.submit(account, {}, 'idBtn_Back')
  t.match(declined.body, 'Sign-in cancelled')
  now += 6000
  t.match(await post('token', poll), { status: 400, body: { error: 'authorization_declined', error_codes: [65004], error_description: /^AADSTS65004: / } })

  const late = await post('devicecode', { client_id: DEV_IDS.devClient.clientId, scope: GATEWAY_SCOPE })
  now += 901 * 1000
  t.match(await post('token', { ...poll, device_code: late.body.device_code as string }), { status: 400, body: { error: 'expired_token', error_codes: [70019] } })
  now = Date.now()
})

t.test('device code requests need a client and scopes the tenant knows', async (t) => {
  t.match(await post('devicecode', { scope: GATEWAY_SCOPE }), { status: 400, body: { error: 'invalid_request', error_codes: [900144] } })
  t.match(await post('devicecode', { client_id: '00000000-0000-4000-8000-000000000000', scope: GATEWAY_SCOPE }), { status: 400, body: { error: 'unauthorized_client', error_codes: [700016] } })
  t.match(await post('devicecode', { client_id: DEV_IDS.devClient.clientId, scope: 'api://nope/x' }), { status: 400, body: { error: 'invalid_scope', error_codes: [70011] } })
})

t.test('device code over /organizations: the polled code names the tenant', async (t) => {
  const start = await request(`${emulator.url}/organizations/oauth2/v2.0/devicecode`, { method: 'POST', dispatcher: kit.agent, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: DEV_IDS.devClient.clientId, scope: GATEWAY_SCOPE }).toString() })
  const body = await start.body.json() as Record<string, string>
  const poll = await request(`${emulator.url}/organizations/oauth2/v2.0/token`, { method: 'POST', dispatcher: kit.agent, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'device_code', client_id: DEV_IDS.devClient.clientId, device_code: body.device_code ?? '' }).toString() })
  t.match(await poll.body.json(), { error: 'authorization_pending' })
})
