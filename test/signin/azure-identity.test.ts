import t from 'tap'
import { AuthorizationCodeCredential, ClientCertificateCredential, DeviceCodeCredential } from '@azure/identity'
import { DEV_IDS, createClientCertificate, defaultSeed, startEmulator, type EmulatorSeed, type RunningEmulator } from '../../src/emulator'
import { identityHttpClient } from '../helpers/identity-http-client'
import { MsalKit, jwtClaims } from '../helpers/msal-clients'
import { SignInDriver } from '../helpers/sign-in-driver'

const GATEWAY_SCOPE = `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`
const WEB_APP = { clientId: '3eb00000-0000-4000-8000-0000000003eb', secret: 'web-app-secret', redirectUri: 'https://app.contoso.example/auth/callback' }
const CERT_APP = '3eb00000-0000-4000-8000-0000000003ec'

let emulator: RunningEmulator
let kit: MsalKit
let certificate: Awaited<ReturnType<typeof createClientCertificate>>

t.before(async () => {
  certificate = await createClientCertificate()
  const home = defaultSeed.tenants[0]!
  const seed: EmulatorSeed = {
    ...defaultSeed,
    tenants: [{
      ...home,
      applications: [...home.applications,
        { clientId: WEB_APP.clientId, displayName: 'web-app', secrets: [WEB_APP.secret], accessTokenAcceptedVersion: 2, redirectUris: { web: [WEB_APP.redirectUri] } },
        { clientId: CERT_APP, displayName: 'cert-daemon', certificates: [certificate.certificatePem], accessTokenAcceptedVersion: 2 }],
      appRoleAssignments: [...(home.appRoleAssignments ?? []), { clientId: CERT_APP, resource: DEV_IDS.gateway.clientId, role: DEV_IDS.gateway.appRole }]
    }]
  }
  emulator = await startEmulator({ seed })
  kit = new MsalKit(emulator)
})
t.teardown(async () => {
  await kit.close()
  await emulator.close()
})

const options = (): { authorityHost: string, disableInstanceDiscovery: true, httpClient: ReturnType<typeof identityHttpClient> } =>
  ({ authorityHost: emulator.url, disableInstanceDiscovery: true, httpClient: identityHttpClient(kit.agent) })

t.test('@azure/identity AuthorizationCodeCredential (web app with a secret)', async (t) => {
  const query = new URLSearchParams({ client_id: WEB_APP.clientId, response_type: 'code', redirect_uri: WEB_APP.redirectUri, scope: `${GATEWAY_SCOPE} openid offline_access` })
  const answer = await new SignInDriver(kit.agent, emulator.url).signIn(`${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize?${query.toString()}`, { username: DEV_IDS.alice.username, password: DEV_IDS.alice.password })
  const code = new URL(answer.location ?? '').searchParams.get('code') ?? ''
  const credential = new AuthorizationCodeCredential(DEV_IDS.tenantId, WEB_APP.clientId, WEB_APP.secret, code, WEB_APP.redirectUri, options())
  const token = await credential.getToken(GATEWAY_SCOPE)
  t.match(jwtClaims(token.token), { oid: DEV_IDS.alice.objectId, azp: WEB_APP.clientId, azpacr: '1', aud: DEV_IDS.gateway.clientId })
})

t.test('@azure/identity DeviceCodeCredential with the code entered on the device page', async (t) => {
  let entered: Promise<unknown> | undefined
  const credential = new DeviceCodeCredential({
    ...options(),
    tenantId: DEV_IDS.tenantId,
    clientId: DEV_IDS.devClient.clientId,
    userPromptCallback: (info) => {
      const driver = new SignInDriver(kit.agent, emulator.url)
      entered = driver.get(info.verificationUri)
        .then(async (page) => await driver.submit(page, { otc: info.userCode }, 'idSIButton9'))
        .then(async (page) => await driver.continue(page, { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }))
    }
  })
  const token = await credential.getToken(GATEWAY_SCOPE)
  await entered
  t.match(jwtClaims(token.token), { oid: DEV_IDS.bob.objectId, azp: DEV_IDS.devClient.clientId })
})

t.test('@azure/identity ClientCertificateCredential', async (t) => {
  const credential = new ClientCertificateCredential(DEV_IDS.tenantId, CERT_APP, { certificate: `${certificate.certificatePem}\n${certificate.privateKeyPem}` }, options())
  const token = await credential.getToken(`${DEV_IDS.gateway.identifierUri}/.default`)
  t.match(jwtClaims(token.token), { idtyp: 'app', azp: CERT_APP, roles: [DEV_IDS.gateway.appRole] })
})
