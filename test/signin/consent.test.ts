import t from 'tap'
import { OnBehalfOfCredential } from '@azure/identity'
import { PublicClientApplication } from '@azure/msal-node'
import { request } from 'undici'
import { DEV_IDS, defaultSeed, parseSeed, type EmulatorSeed, type RunningEmulator } from '../../src/emulator'
import { identityHttpClient } from '../helpers/identity-http-client'
import { interactiveSignIn, pkce, rejection } from '../helpers/interactive'
import { MsalKit, jwtClaims, startEmulatorWithKit } from '../helpers/msal-clients'
import { SignInDriver } from '../helpers/sign-in-driver'

const GATEWAY = DEV_IDS.gateway
const SAMPLE = DEV_IDS.sampleApi
const GATEWAY_DEFAULT = `${GATEWAY.identifierUri}/.default`
const ITEMS_READ = `${SAMPLE.identifierUri}/Items.Read`
const ITEMS_WRITE = `${SAMPLE.identifierUri}/Items.Write`
const ITEMS_PURGE = `${SAMPLE.identifierUri}/Items.Purge`
const ALICE = { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password }
const BOB = { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }
const REDIRECT = 'http://localhost:53127'

/**
 * The dev seed with consent enforced: the dev client's static permission is the gateway's
 * access_as_user, the gateway's is the sample API's Items.Read and it names the dev client as a
 * known client (combined consent); the sample API exposes an Admin scope; bob alone has an admin's
 * grant of Items.Write to the gateway.
 */
function seed (): EmulatorSeed {
  const home = defaultSeed.tenants[0]!
  const applications = home.applications.map((app) => {
    switch (app.clientId) {
      case GATEWAY.clientId:
        return { ...app, knownClientApplications: [DEV_IDS.devClient.clientId], requiredResourceAccess: [{ resourceAppId: SAMPLE.identifierUri, scopes: ['Items.Read'] }] }
      case DEV_IDS.devClient.clientId:
        return { ...app, requiredResourceAccess: [{ resourceAppId: GATEWAY.clientId, scopes: [GATEWAY.scope] }] }
      case SAMPLE.clientId:
        return { ...app, oauth2PermissionScopes: [{ value: 'Items.Purge', type: 'Admin' as const }] }
      default:
        return app
    }
  })
  return {
    ...defaultSeed,
    mfaPolicies: [],
    tenants: [{ ...home, applications, enforceConsent: true, consents: [{ clientId: GATEWAY.clientId, resource: SAMPLE.clientId, scopes: ['Items.Write'], userObjectId: DEV_IDS.bob.objectId }] }]
  }
}

let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => { ({ emulator, kit } = await startEmulatorWithKit(t, { seed: seed() })) })

interface Answer { status: number, body: any }

async function control (method: 'POST' | 'DELETE', path: string, body?: object): Promise<Answer> {
  const res = await request(`${emulator.url}/_emulator${path}`, {
    method,
    dispatcher: kit.agent,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text) }
}

const obo = async (assertion: string, scope: string): Promise<unknown> =>
  await kit.confidentialClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [scope], skipCache: true })

function authorizeUrl (scope: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({ client_id: DEV_IDS.devClient.clientId, response_type: 'code', redirect_uri: REDIRECT, scope: `${scope} openid offline_access`, code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 's1', ...extra })
  return `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize?${query.toString()}`
}

const redirected = (location: string | undefined): Record<string, string> => Object.fromEntries(new URL(location ?? 'https://missing.invalid/').searchParams)

t.test('combined consent: consenting to the client consents the middle tier too, so its OBO is not refused', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const { result } = await interactiveSignIn(kit, { scopes: [GATEWAY_DEFAULT], credentials: ALICE, driver, redirectUri: REDIRECT })
  const consentPage = driver.visited.find((p) => p.body.includes('Permissions requested'))?.body ?? ''
  t.match(consentPage, `${GATEWAY.identifierUri}/${GATEWAY.scope}`, 'the client\'s own static permission is asked')
  t.match(consentPage, ITEMS_READ, 'and the middle tier\'s, on the same page')
  t.notMatch(consentPage, 'Tools.Admin', '.default asks for the configured permissions only')
  t.equal(jwtClaims(result.accessToken).scp, GATEWAY.scope, '.default: the scp is requiredResourceAccess, not every exposed scope')

  t.match(jwtClaims(((await obo(result.accessToken, ITEMS_READ)) as { accessToken: string }).accessToken), { scp: 'Items.Read', oid: DEV_IDS.alice.objectId })
  t.match(await rejection(obo(result.accessToken, ITEMS_WRITE)), { errorNo: 65001, subError: 'consent_required' }, 'a scope outside the combined consent is still refused')
  // disableInstanceDiscovery is honoured though the OBO options' type does not declare it.
  const emulatorOptions = { authorityHost: emulator.url, disableInstanceDiscovery: true, httpClient: identityHttpClient(kit.agent) }
  const identity = new OnBehalfOfCredential({ tenantId: DEV_IDS.tenantId, clientId: GATEWAY.clientId, clientSecret: GATEWAY.secret, userAssertionToken: result.accessToken, ...emulatorOptions })
  t.match(jwtClaims((await identity.getToken(ITEMS_READ)).token), { scp: 'Items.Read' }, '@azure/identity OnBehalfOfCredential alike')
  await t.rejects(identity.getToken(ITEMS_WRITE), /AADSTS65001/)

  // The MCP client is no known client of the gateway: consenting to it grants the gateway nothing.
  const mcp = new PublicClientApplication(kit.config(DEV_IDS.mcpClient.clientId))
  const other = await interactiveSignIn(kit, { pca: mcp, scopes: [`${GATEWAY.identifierUri}/${GATEWAY.scope}`], credentials: ALICE, redirectUri: 'http://127.0.0.1:53128/callback' })
  const bobSignIn = await interactiveSignIn(kit, { pca: mcp, scopes: [`${GATEWAY.identifierUri}/${GATEWAY.scope}`], credentials: BOB, redirectUri: 'http://127.0.0.1:53128/callback' })
  t.ok(other.result.accessToken)
  t.match(await rejection(obo(bobSignIn.result.accessToken, ITEMS_READ)), { errorNo: 65001, errorCode: 'invalid_grant', subError: 'consent_required' }, 'AADSTS65001 from the model, no failure rule')
})

t.test('.default for a resource the client configures no permission on: AADSTS650057', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  const answer = await driver.get(authorizeUrl(`${SAMPLE.identifierUri}/.default`))
  t.equal(answer.status, 302)
  t.match(redirected(answer.location), { error: 'invalid_client', error_description: /^AADSTS650057: Invalid resource\. .*Client app ID: c0ffee00/, state: 's1' })
})

t.test('Admin scopes: "Need admin approval" instead of consent, until an admin grant from the control API', async (t) => {
  const driver = new SignInDriver(kit.agent, emulator.url)
  t.ok(redirected((await driver.signIn(authorizeUrl(`${GATEWAY.identifierUri}/${GATEWAY.scope}`), ALICE)).location).code, 'signed in: a session')
  const page = await driver.signIn(authorizeUrl(ITEMS_PURGE))
  t.equal(page.status, 200)
  t.match(page.body, '<h1>Need admin approval</h1>')
  t.match(page.body, /AADSTS90094: /)
  t.match(page.body, ITEMS_PURGE)
  t.notMatch(page.body, 'id="idSIButton9"', 'no way to accept')
  const back = await driver.submit(page, {}, 'idBtn_Back')
  t.match(redirected(back.location), { error: 'access_denied', error_description: /^AADSTS90094: /, state: 's1' })
  t.match(redirected((await driver.get(authorizeUrl(ITEMS_PURGE, { prompt: 'none' }))).location), { error: 'consent_required', error_description: /^AADSTS65001: / }, 'prompt=none: consent_required')

  const granted = await control('POST', '/consents', { clientId: DEV_IDS.devClient.clientId, resource: SAMPLE.identifierUri, scopes: ['Items.Purge'] })
  t.equal(granted.status, 201)
  t.type(granted.body.id, 'string')
  const signInDriver = new SignInDriver(kit.agent, emulator.url)
  const { pca, result } = await interactiveSignIn(kit, { scopes: [ITEMS_PURGE], credentials: ALICE, driver: signInDriver, redirectUri: REDIRECT })
  t.equal(jwtClaims(result.accessToken).scp, 'Items.Purge')
  t.notOk(signInDriver.visited.some((p) => /Need admin approval|Permissions requested/.test(p.body)), 'the admin grant covers every user: no page')

  t.equal((await control('DELETE', `/consents/${granted.body.id as string}`)).status, 204)
  t.match(await rejection(pca.acquireTokenSilent({ account: result.account!, scopes: [ITEMS_PURGE], forceRefresh: true })), { errorNo: 65001, subError: 'consent_required' }, 'the refresh grant is refused once the grant is withdrawn')
  t.match(await control('DELETE', `/consents/${granted.body.id as string}`), { status: 404, body: { error: 'not_found' } })
})

t.test('control API: consent bodies are checked; DELETE /consents withdraws the seed\'s grants too', async (t) => {
  t.match(await control('POST', '/consents', { clientId: DEV_IDS.devClient.clientId, resource: SAMPLE.clientId }), { status: 400, body: { error: 'invalid_request', error_description: /scopes/ } })
  t.match(await control('POST', '/consents', { clientId: DEV_IDS.devClient.clientId, resource: 'api://nowhere', scopes: ['x'] }), { status: 404, body: { error: 'not_found' } })
  t.match(await control('POST', '/consents', { clientId: DEV_IDS.devClient.clientId, resource: SAMPLE.clientId, scopes: ['Items.Nope'] }), { status: 400, body: { error_description: /Items\.Nope/ } })
  t.match(await control('POST', '/consents', { tenantId: 'nowhere', clientId: DEV_IDS.devClient.clientId, resource: SAMPLE.clientId, scopes: ['Items.Read'] }), { status: 404 })

  const bob = await kit.signIn({ username: BOB.username, password: BOB.password })
  t.ok(await obo(bob.accessToken, ITEMS_WRITE), 'the seed\'s grant to bob')
  t.equal((await control('DELETE', '/consents')).status, 204)
  t.match(await rejection(obo(bob.accessToken, ITEMS_WRITE)), { errorNo: 65001 })
})

t.test('seed: requiredResourceAccess must name an application and its scopes', async (t) => {
  const app = { ...defaultSeed.tenants[0]!.applications[2]! }
  const withAccess = (access: unknown): unknown => ({ ...defaultSeed, tenants: [{ ...defaultSeed.tenants[0]!, applications: [...defaultSeed.tenants[0]!.applications.slice(0, 2), { ...app, requiredResourceAccess: access }] }] })
  t.throws(() => parseSeed(withAccess([{ resourceAppId: 'api://nowhere', scopes: [] }])), /requiredResourceAccess\[0\]\.resourceAppId: no application 'api:\/\/nowhere'/)
  t.throws(() => parseSeed(withAccess([{ resourceAppId: SAMPLE.clientId, scopes: ['Items.Nope'] }])), /requiredResourceAccess\[0\]\.scopes: 'Items\.Nope' is not a scope of sample-api/)
  t.throws(() => parseSeed({ ...defaultSeed, tenants: [{ ...defaultSeed.tenants[0]!, applications: [{ ...app, oauth2PermissionScopes: [{ value: 'X', type: 'Owner' }] }] }] }), /oauth2PermissionScopes\[0\]\.type/)
})
