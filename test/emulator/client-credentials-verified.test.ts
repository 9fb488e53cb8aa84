import { randomUUID, sign as signWith, createPrivateKey, constants as cryptoConstants } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { ConfidentialClientApplication } from '@azure/msal-node'
import { DEV_IDS, createClientCertificate, defaultSeed, startEmulator, type ClientCertificate, type EmulatorSeed, type RunningEmulator, type ServiceAccountTokenRequest } from '../../src/emulator'
import { MsalKit, jwtClaims } from '../helpers/msal-clients'

const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`
const SAMPLE_DEFAULT = `${DEV_IDS.sampleApi.identifierUri}/.default`
const SA_SUBJECT = 'system:serviceaccount:gateway:obo-gateway'
const MI = { clientId: '3a7e0000-0000-4000-8000-0000000000a1', objectId: '3a7e0000-0000-4000-8000-0000000000b1' }
const UNTRUSTED_MI = { clientId: '3a7e0000-0000-4000-8000-0000000000a2', objectId: '3a7e0000-0000-4000-8000-0000000000b2' }
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

let emulator: RunningEmulator
let kit: MsalKit
let cert: ClientCertificate
let unregistered: ClientCertificate

/** The gateway app with a certificate and three federated credentials: Kubernetes, a managed identity, an unreachable issuer. */
function seedWith (certificatePem: string): EmulatorSeed {
  const seed = structuredClone(defaultSeed)
  const tenant = seed.tenants[0]!
  const gateway = tenant.applications.find((a) => a.clientId === DEV_IDS.gateway.clientId)!
  gateway.certificates = [certificatePem]
  gateway.federatedCredentials = [
    { issuer: '{emulator}/k8s/cluster-a', subject: SA_SUBJECT, audiences: ['api://AzureADTokenExchange'] },
    { issuer: `{emulator}/${DEV_IDS.tenantId}/v2.0`, subject: MI.objectId, audiences: ['api://AzureADTokenExchange'] },
    { issuer: 'https://127.0.0.1:1/nobody-listens', subject: 'x', audiences: ['api://AzureADTokenExchange'] }
  ]
  tenant.managedIdentities = [
    { clientId: MI.clientId, objectId: MI.objectId, displayName: 'gateway-identity' },
    { clientId: UNTRUSTED_MI.clientId, objectId: UNTRUSTED_MI.objectId, displayName: 'other-identity', systemAssigned: true }
  ]
  seed.workloadIssuers = ['cluster-a', 'cluster-b']
  return seed
}

t.before(async () => {
  [cert, unregistered] = await Promise.all([createClientCertificate(), createClientCertificate()])
  emulator = await startEmulator({ seed: seedWith(cert.certificatePem) })
  kit = new MsalKit(emulator)
})
t.teardown(async () => {
  await kit.close()
  await emulator.close()
})

const tokenEndpoint = (): string => `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`

async function postToken (form: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(tokenEndpoint(), {
    method: 'POST',
    dispatcher: kit.agent,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString()
  })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

const withAssertion = (assertion: string, extra: Record<string, string> = {}): Record<string, string> => ({
  grant_type: 'client_credentials',
  client_id: DEV_IDS.gateway.clientId,
  client_assertion_type: ASSERTION_TYPE,
  client_assertion: assertion,
  scope: SAMPLE_DEFAULT,
  ...extra
})

/** A client assertion signed by hand, so each field can be wrong on purpose. */
function handMade (key: string, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${b64({ typ: 'JWT', ...header })}.${b64(claims)}`
  const pss = header.alg === 'PS256'
  const signature = signWith('sha256', Buffer.from(input), pss
    ? { key: createPrivateKey(key), padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
    : createPrivateKey(key))
  return `${input}.${signature.toString('base64url')}`
}

function certClaims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { aud: tokenEndpoint(), iss: DEV_IDS.gateway.clientId, sub: DEV_IDS.gateway.clientId, jti: randomUUID(), nbf: now, exp: now + 600, ...overrides }
}

function certificateClient (options: { sha1?: boolean, certificate?: ClientCertificate } = {}): ConfidentialClientApplication {
  const c = options.certificate ?? cert
  const thumbprintHex = (b64url: string): string => Buffer.from(b64url, 'base64url').toString('hex')
  const config = kit.config(DEV_IDS.gateway.clientId)
  config.auth.clientCertificate = options.sha1 === true
    ? { thumbprint: thumbprintHex(c.x5t), privateKey: c.privateKeyPem }
    : { thumbprintSha256: thumbprintHex(c.x5tS256), privateKey: c.privateKeyPem, x5c: c.certificatePem }
  return new ConfidentialClientApplication(config)
}

t.test('certificate credential: msal-node assertions (PS256 + x5t#S256 and RS256 + x5t) get OBO and app tokens', async (t) => {
  const user = await kit.signIn()
  for (const sha1 of [false, true]) {
    const client = certificateClient({ sha1 })
    const obo = await client.acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [ITEMS_READ], skipCache: true })
    t.match(jwtClaims(obo?.accessToken ?? ''), { aud: DEV_IDS.sampleApi.clientId, oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId, azpacr: '1' }, sha1 ? 'RS256' : 'PS256')
    const app = await client.acquireTokenByClientCredential({ scopes: [SAMPLE_DEFAULT], skipCache: true })
    t.match(jwtClaims(app?.accessToken ?? ''), { idtyp: 'app', roles: [DEV_IDS.sampleApi.appRole] })
  }
  await t.rejects(certificateClient({ certificate: unregistered }).acquireTokenByClientCredential({ scopes: [SAMPLE_DEFAULT] }),
    { errorCode: 'invalid_client', message: /AADSTS700027: The certificate with identifier used to sign the client assertion is not registered/ })
})

t.test('certificate credential refusals, each with Entra\'s code', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const pss = { alg: 'PS256', 'x5t#S256': cert.x5tS256 }
  const expired = await postToken(withAssertion(handMade(cert.privateKeyPem, pss, certClaims({ nbf: now - 1200, exp: now - 600 }))))
  t.match(expired, { status: 401, body: { error: 'invalid_client', error_codes: [700024] } })
  t.match(expired.body.error_description, /^AADSTS700024: Client assertion is not within its valid time range\. Current time: .+, assertion valid from .+, expiry time of assertion .+\. Review the documentation at https:\/\/learn\.microsoft\.com\/entra\/identity-platform\/certificate-credentials \./)
  t.same(Object.keys(expired.body).sort(), ['correlation_id', 'error', 'error_codes', 'error_description', 'error_uri', 'timestamp', 'trace_id'], 'the fields of token-error-client-assertion-expired.json')

  const cases: Array<[string, string, number]> = [
    ['audience of another endpoint', handMade(cert.privateKeyPem, pss, certClaims({ aud: 'https://login.microsoftonline.com/x/oauth2/v2.0/token' })), 50027],
    ['signed by another key', handMade(unregistered.privateKeyPem, pss, certClaims()), 700027],
    ['sub differs from iss', handMade(cert.privateKeyPem, pss, certClaims({ sub: DEV_IDS.daemon.clientId })), 50048],
    ['RS256 without x5t', handMade(cert.privateKeyPem, { alg: 'RS256' }, certClaims()), 700027],
    ['not yet valid', handMade(cert.privateKeyPem, pss, certClaims({ nbf: now + 600, exp: now + 1200 })), 700024]
  ]
  for (const [name, assertion, code] of cases) {
    t.match(await postToken(withAssertion(assertion)), { status: 401, body: { error: 'invalid_client', error_codes: [code] } }, name)
  }
  t.match(await postToken(withAssertion(handMade(cert.privateKeyPem, { alg: 'RS256', x5t: cert.x5t }, certClaims()))), { status: 200 }, 'a hand-made RS256 assertion with x5t is fine')
  t.match(await postToken(withAssertion('not.a.jwt')), { status: 401, body: { error_codes: [50027] } })
  t.match(await postToken({ ...withAssertion(handMade(cert.privateKeyPem, pss, certClaims())), client_assertion_type: 'urn:other' }), { status: 400, body: { error: 'invalid_request' } })
})

t.test('federated credential from the hosted Kubernetes issuer: discovery, JWKS and matching', async (t) => {
  const issuer = emulator.workloads.issuerUrl('cluster-a')
  t.equal(issuer, `${emulator.url}/k8s/cluster-a`)
  const discovery = await request(`${issuer}/.well-known/openid-configuration`, { dispatcher: kit.agent })
  t.match(await discovery.body.json(), { issuer, jwks_uri: `${issuer}/openid/v1/jwks` })

  let reads = 0
  const config = kit.config(DEV_IDS.gateway.clientId)
  config.auth.clientAssertion = async () => { reads++; return emulator.workloads.serviceAccountToken({ subject: SA_SUBJECT }) }
  const client = new ConfidentialClientApplication(config)
  const app = await client.acquireTokenByClientCredential({ scopes: [SAMPLE_DEFAULT], skipCache: true })
  t.match(jwtClaims(app?.accessToken ?? ''), { azp: DEV_IDS.gateway.clientId, roles: [DEV_IDS.sampleApi.appRole] })
  const user = await kit.signIn()
  const obo = await client.acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [ITEMS_READ], skipCache: true })
  t.equal(jwtClaims(obo?.accessToken ?? '').oid, DEV_IDS.alice.objectId)
  t.equal(reads, 2, 'msal-node asks for an assertion for every token request')

  const token = (r: ServiceAccountTokenRequest): string => emulator.workloads.serviceAccountToken(r)
  const cases: Array<[string, string, number]> = [
    ['another subject', token({ subject: 'system:serviceaccount:gateway:someone-else' }), 700213],
    ['another issuer', token({ subject: SA_SUBJECT, issuer: 'cluster-b' }), 700211],
    ['another audience', token({ subject: SA_SUBJECT, audience: 'api://something-else' }), 700212],
    ['forged signature', token({ subject: SA_SUBJECT, foreignKey: true }), 700027],
    ['expired', token({ subject: SA_SUBJECT, offsetSeconds: -7200 }), 700024]
  ]
  for (const [name, assertion, code] of cases) {
    t.match(await postToken(withAssertion(assertion)), { status: 401, body: { error: 'invalid_client', error_codes: [code] } }, name)
  }
  const daemon = await postToken({ ...withAssertion(token({ subject: SA_SUBJECT })), client_id: DEV_IDS.daemon.clientId })
  t.match(daemon, { status: 401, body: { error_codes: [700027] } }, 'an app with no certificate or federated credential')

  const unreachable = handMade(unregistered.privateKeyPem, { alg: 'RS256', kid: 'k1' }, { iss: 'https://127.0.0.1:1/nobody-listens', sub: 'x', aud: 'api://AzureADTokenExchange', exp: Math.floor(Date.now() / 1000) + 600 })
  t.match(await postToken(withAssertion(unreachable)), { status: 401, body: { error_codes: [50166] } }, 'the issuer\'s discovery cannot be fetched')
})

t.test('managed identity endpoint (App Service style) and its token as a federated credential', async (t) => {
  const { endpoint, header } = emulator.managedIdentity
  const get = async (query: Record<string, string>, headers: Record<string, string> = { 'x-identity-header': header }): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await request(`${endpoint}?${new URLSearchParams({ 'api-version': '2019-08-01', ...query }).toString()}`, { dispatcher: kit.agent, headers })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }
  const ok = await get({ resource: 'api://AzureADTokenExchange', client_id: MI.clientId })
  t.match(ok, { status: 200, body: { token_type: 'Bearer', resource: 'api://AzureADTokenExchange', client_id: MI.clientId, expires_on: Number } })
  const claims = jwtClaims(String(ok.body.access_token))
  t.match(claims, { iss: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`, sub: MI.objectId, oid: MI.objectId, aud: 'api://AzureADTokenExchange', idtyp: 'app', azp: MI.clientId, tid: DEV_IDS.tenantId })

  t.match(await postToken(withAssertion(String(ok.body.access_token))), { status: 200 }, 'the trusted identity\'s token is a client assertion')
  const other = await get({ resource: 'api://AzureADTokenExchange' })
  t.equal(jwtClaims(String(other.body.access_token)).sub, UNTRUSTED_MI.objectId, 'no client_id: the system-assigned identity')
  t.match(await postToken(withAssertion(String(other.body.access_token))), { status: 401, body: { error_codes: [700213] } }, 'an identity with no federated credential on the app')
  const now = Math.floor(Date.now() / 1000)
  const userToken = emulator.keys.sign(DEV_IDS.tenantId, { iss: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`, sub: MI.objectId, aud: 'api://AzureADTokenExchange', oid: MI.objectId, scp: 'x', exp: now + 600, nbf: now })
  t.match(await postToken(withAssertion(userToken)), { status: 401, body: { error_codes: [700229] } }, 'only app-only tokens from an Entra issuer')

  t.match(await get({ resource: 'api://AzureADTokenExchange' }, {}), { status: 401 }, 'no X-IDENTITY-HEADER')
  t.match(await get({ resource: 'api://AzureADTokenExchange', client_id: randomUUID() }), { status: 400, body: { message: /Unable to load the proper Managed Identity/ } })
  t.match(await get({ resource: 'api://nothing-here' }), { status: 400, body: { error: 'invalid_resource' } })
  t.match(await get({ resource: DEV_IDS.sampleApi.identifierUri, client_id: MI.clientId }), { status: 200 }, 'tokens for seeded resources too')
  t.ok(emulator.records.managedIdentityRequests().length >= 6, 'the endpoint records its requests')
})
