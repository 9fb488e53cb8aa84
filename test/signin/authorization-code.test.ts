import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { ConfidentialClientApplication, PublicClientApplication } from '@azure/msal-node'
import { DEV_IDS, defaultSeed, type EmulatorSeed, type RunningEmulator } from '../../src/emulator'
import { MsalKit, jwtClaims, startEmulatorWithKit } from '../helpers/msal-clients'
import { SignInDriver } from '../helpers/sign-in-driver'

const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`
const WEB_APP = { clientId: '3eb00000-0000-4000-8000-0000000003eb', secret: 'web-app-secret', redirectUri: 'https://app.contoso.example/auth/callback' }

function seed (): EmulatorSeed {
  const home = defaultSeed.tenants[0]!
  return {
    ...defaultSeed,
    tenants: [{
      ...home,
      applications: [...home.applications, {
        clientId: WEB_APP.clientId,
        displayName: 'web-app',
        secrets: [WEB_APP.secret],
        accessTokenAcceptedVersion: 2,
        redirectUris: { web: [WEB_APP.redirectUri] }
      }]
    }]
  }
}

let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => { ({ emulator, kit } = await startEmulatorWithKit(t, { seed: seed() })) })

function pkce (): { verifier: string, challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

t.test('msal-node public client: getAuthCodeUrl, the pages, acquireTokenByCode', async (t) => {
  const pca = new PublicClientApplication(kit.config(DEV_IDS.devClient.clientId))
  const { verifier, challenge } = pkce()
  const redirectUri = 'http://localhost:53123'
  const url = await pca.getAuthCodeUrl({
    scopes: [GATEWAY_SCOPE],
    redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
    state: 'state-123',
    nonce: 'nonce-456'
  })
  const driver = new SignInDriver(kit.agent, emulator.url)
  const answer = await driver.signIn(url, { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password })
  t.equal(answer.status, 302)
  const back = new URL(answer.location ?? '')
  t.equal(`${back.origin}${back.pathname}`, 'http://localhost:53123/', 'a loopback redirect URI on any port')
  t.equal(back.searchParams.get('state'), 'state-123')
  const code = back.searchParams.get('code') ?? ''
  t.ok(code.length > 20)
  t.ok(back.searchParams.get('client_info'), 'client_info=1 was asked by msal')
  const cookie = [answer.headers['set-cookie']].flat().join('\n')
  t.match(cookie, /ESTSAUTH=[^;]+; Path=\/; Secure; HttpOnly; SameSite=None/)

  // msal checks the answer against the request's nonce and the returned state.
  const result = await pca.acquireTokenByCode({ code, scopes: [GATEWAY_SCOPE], redirectUri, codeVerifier: verifier, state: 'state-123', nonce: 'nonce-456' }, { code, state: 'state-123' })
  t.match(jwtClaims(result.accessToken), { aud: DEV_IDS.gateway.clientId, oid: DEV_IDS.alice.objectId, azp: DEV_IDS.devClient.clientId, azpacr: '0', scp: DEV_IDS.gateway.scope, amr: ['pwd'] })
  const id = result.idTokenClaims as Record<string, unknown>
  t.match(id, { nonce: 'nonce-456', oid: DEV_IDS.alice.objectId, tid: DEV_IDS.tenantId, preferred_username: DEV_IDS.alice.username, name: DEV_IDS.alice.name, aud: DEV_IDS.devClient.clientId })
  t.type(id.auth_time, 'number')
  t.not(id.sub, DEV_IDS.alice.objectId, 'pairwise sub')
  t.equal(result.account?.homeAccountId, `${DEV_IDS.alice.objectId}.${DEV_IDS.tenantId}`, 'client_info made the home account id')

  await t.rejects(pca.acquireTokenByCode({ code, scopes: [GATEWAY_SCOPE], redirectUri, codeVerifier: verifier }), { name: 'ServerError', errorCode: 'invalid_grant', errorNo: 54005 })
})

t.test('msal-node confidential client web app: auth code with a secret, form_post', async (t) => {
  const cca = new ConfidentialClientApplication(kit.config(WEB_APP.clientId, { clientSecret: WEB_APP.secret }))
  const url = await cca.getAuthCodeUrl({ scopes: [GATEWAY_SCOPE], redirectUri: WEB_APP.redirectUri, responseMode: 'form_post', state: 'web-state' })
  const driver = new SignInDriver(kit.agent, emulator.url)
  const answer = await driver.signIn(url, { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password, staySignedIn: false })
  t.equal(answer.status, 200)
  t.match(answer.body, `action="${WEB_APP.redirectUri}"`)
  t.notMatch([answer.headers['set-cookie']].flat().join(''), /Max-Age/, '"Stay signed in?" no: a session cookie')
  const code = /name="code" value="([^"]+)"/.exec(answer.body)?.[1] ?? ''
  t.match(answer.body, 'name="state" value="web-state"')
  const result = await cca.acquireTokenByCode({ code, scopes: [GATEWAY_SCOPE], redirectUri: WEB_APP.redirectUri })
  t.match(jwtClaims(result.accessToken), { oid: DEV_IDS.bob.objectId, azp: WEB_APP.clientId, azpacr: '1' })
  t.ok(result.account)

  const again = await cca.getAuthCodeUrl({ scopes: [GATEWAY_SCOPE], redirectUri: WEB_APP.redirectUri, responseMode: 'form_post' })
  const noSecret = new PublicClientApplication(kit.config(WEB_APP.clientId))
  const second = await driver.signIn(again)
  const secondCode = /name="code" value="([^"]+)"/.exec(second.body)?.[1] ?? ''
  t.ok(secondCode, 'the session signs bob in again without pages')
  await t.rejects(noSecret.acquireTokenByCode({ code: secondCode, scopes: [GATEWAY_SCOPE], redirectUri: WEB_APP.redirectUri }), { name: 'ServerError', errorCode: 'invalid_client', errorNo: 7000218 })
})
