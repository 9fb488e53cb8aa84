import { createPrivateKey } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { DEV_IDS, createClientCertificate, defaultSeed, type EmulatorSeed } from '../../src/emulator'
import { jwtClaims } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const SA_SUBJECT = 'system:serviceaccount:gateway:obo-gateway'
const MI = { clientId: '3a7e0000-0000-4000-8000-0000000000a1', objectId: '3a7e0000-0000-4000-8000-0000000000b1' }
const DAY_MS = 86_400_000

t.test('the gateway\'s own credential, each kind, end to end against the emulator', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-credentials-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const [cert, unregistered, expired] = await Promise.all([
    createClientCertificate(),
    createClientCertificate(),
    createClientCertificate({ notBefore: new Date(Date.now() - 30 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) })
  ])
  const seed: EmulatorSeed = structuredClone(defaultSeed)
  const tenant = seed.tenants[0]!
  const gatewayApp = tenant.applications.find((a) => a.clientId === DEV_IDS.gateway.clientId)!
  gatewayApp.certificates = [cert.certificatePem, expired.certificatePem]
  gatewayApp.federatedCredentials = [
    { issuer: '{emulator}/k8s/aks', subject: SA_SUBJECT, audiences: ['api://AzureADTokenExchange'] },
    { issuer: `{emulator}/${DEV_IDS.tenantId}/v2.0`, subject: MI.objectId, audiences: ['api://AzureADTokenExchange'] }
  ]
  tenant.managedIdentities = [{ clientId: MI.clientId, objectId: MI.objectId, displayName: 'gateway-identity' }]
  seed.workloadIssuers = ['aks']

  const { emulator, kit, recorder } = await startTestbed(t, { seed })
  // msal-node's managed identity client reads the App Service variables once per process, at its first call.
  process.env.IDENTITY_ENDPOINT = emulator.managedIdentity.endpoint
  process.env.IDENTITY_HEADER = emulator.managedIdentity.header

  const file = (name: string, content: string): string => {
    const path = join(dir, name)
    writeFileSync(path, content)
    return path
  }
  const certFile = file('cert.pem', cert.certificatePem)
  // PKCS#1 on purpose ("BEGIN RSA PRIVATE KEY", what openssl often writes): the gateway converts it.
  const keyFile = file('key.pem', createPrivateKey(cert.privateKeyPem).export({ format: 'pem', type: 'pkcs1' }).toString())
  const tokenFile = file('azure-identity-token', emulator.workloads.serviceAccountToken({ subject: SA_SUBJECT }))

  interface Started { url: string, logs: Array<Record<string, unknown>>, errors: () => string[] }
  async function startGateway (credential: Record<string, unknown> | undefined, env: Record<string, string> = {}): Promise<Started> {
    const logs: Array<Record<string, unknown>> = []
    const stream = new Writable({ write (chunk: Buffer, _enc, done) { logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
    const config = resolveConfig({
      server: { host: '127.0.0.1', port: 0 },
      identity: {
        instance: emulator.url,
        tenantId: DEV_IDS.tenantId,
        clientId: DEV_IDS.gateway.clientId,
        ...(credential === undefined ? {} : { credential }),
        tls: { caFile: emulator.caFile }
      },
      routes: [{
        prefix: '/rec',
        upstream: recorder.url,
        user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] },
        app: { requireRoles: ['Gateway.Relay'], scopes: [`${SAMPLE}/.default`] }
      }]
    }, { source: 'test', env })
    const gateway = await buildGateway(config, { logger: { level: 'info', stream } })
    t.teardown(() => gateway.close())
    const url = await gateway.listen({ host: '127.0.0.1', port: 0 })
    return { url, logs, errors: () => logs.filter((l) => l.level === 50).map((l) => String(l.msg)) }
  }
  const call = async (gatewayUrl: string, token: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await request(`${gatewayUrl}/rec/x`, { headers: { authorization: `Bearer ${token}` } })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }
  const userToken = async (): Promise<string> => (await kit.signIn()).accessToken
  const appToken = async (): Promise<string> => (await kit.appToken()).accessToken

  /** OBO and client credentials both succeed, and the upstream got a token the gateway obtained. */
  async function worksEndToEnd (t: Test, gateway: Started, label: string): Promise<void> {
    const before = emulator.records.tokenRequests().length
    const user = await call(gateway.url, await userToken())
    t.equal(user.status, 200, `${label}: OBO`)
    t.match(jwtClaims(String(recorder.requests.at(-1)?.headers.authorization).slice(7)), { oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId, azpacr: '1' })
    const app = await call(gateway.url, await appToken())
    t.equal(app.status, 200, `${label}: client credentials`)
    t.match(jwtClaims(String(recorder.requests.at(-1)?.headers.authorization).slice(7)), { idtyp: 'app', azp: DEV_IDS.gateway.clientId, roles: [DEV_IDS.sampleApi.appRole] })
    const gatewayCalls = emulator.records.tokenRequests().slice(before).filter((r) => r.clientId === DEV_IDS.gateway.clientId)
    t.match(gatewayCalls, [{ status: 200 }, { status: 200 }], `${label}: the gateway authenticated to the emulator twice`)
    t.same(gateway.errors(), [], `${label}: no error logged`)
  }

  /** A 503 with a clear body, an error log line naming the problem (and the file), and nothing secret anywhere. */
  async function refusedClearly (t: Test, gateway: Started, label: string, problem: RegExp, logged: RegExp = problem): Promise<void> {
    const res = await call(gateway.url, await userToken())
    t.equal(res.status, 503, `${label}: 503`)
    t.match(res.body, { error: 'gateway_credential_invalid', error_description: problem }, `${label}: body`)
    t.notOk(JSON.stringify(res.body).includes(dir), `${label}: no server file path in the body`)
    t.ok(gateway.errors().some((m) => logged.test(m)), `${label}: an error-level log line says ${String(logged)}`)
    const everything = JSON.stringify(gateway.logs) + JSON.stringify(res.body)
    t.notMatch(everything, /-----BEGIN [A-Z ]*PRIVATE KEY/, `${label}: no key material logged`)
    t.notMatch(everything, /eyJ[\w-]+\.eyJ/, `${label}: no token logged`)
  }

  await t.test('certificate (PEM certificate + PKCS#1 key): msal-node signs PS256 assertions', async (t) => {
    await worksEndToEnd(t, await startGateway({ certificate: { certificateFile: certFile, privateKeyFile: keyFile } }), 'certificate')
  })

  await t.test('Kubernetes workload identity: federatedTokenFile, also from AZURE_* variables, re-read for every assertion', async (t) => {
    await worksEndToEnd(t, await startGateway({ federatedTokenFile: tokenFile }), 'federatedTokenFile')
    const fromEnv = await startGateway(undefined, { AZURE_FEDERATED_TOKEN_FILE: tokenFile })
    await worksEndToEnd(t, fromEnv, 'AZURE_FEDERATED_TOKEN_FILE')

    // The kubelet rotates the file; a token for another service account must be used at once.
    writeFileSync(tokenFile, emulator.workloads.serviceAccountToken({ subject: 'system:serviceaccount:gateway:another' }))
    await refusedClearly(t, fromEnv, 'rotated to a token Entra does not trust', /AADSTS700213/)
    writeFileSync(tokenFile, emulator.workloads.serviceAccountToken({ subject: SA_SUBJECT }))
    t.equal((await call(fromEnv.url, await userToken())).status, 200, 'rotated back: read again, accepted')
  })

  await t.test('managed identity as a federated credential (App Service style endpoint)', async (t) => {
    const before = emulator.records.managedIdentityRequests().length
    await worksEndToEnd(t, await startGateway({ managedIdentity: { clientId: MI.clientId } }), 'managedIdentity')
    t.match(emulator.records.managedIdentityRequests().slice(before), [{ clientId: MI.clientId, resource: 'api://AzureADTokenExchange', status: 200 }], 'one managed identity token, reused by msal for both exchanges')
  })

  await t.test('bad credentials: 503 and an error log line naming the problem', async (t) => {
    await refusedClearly(t, await startGateway({ clientSecret: 'not-the-secret' }), 'wrong secret', /client secret.*AADSTS7000215/)
    const otherKey = file('other-key.pem', unregistered.privateKeyPem)
    await refusedClearly(t, await startGateway({ certificate: { certificateFile: certFile, privateKeyFile: otherKey } }), 'key of another certificate', /does not belong to the certificate/)
    const expiredCert = file('expired.pem', expired.certificatePem)
    const expiredKey = file('expired-key.pem', expired.privateKeyPem)
    await refusedClearly(t, await startGateway({ certificate: { certificateFile: expiredCert, privateKeyFile: expiredKey } }), 'expired certificate', /expired on/)
    const unregisteredCert = file('unregistered.pem', unregistered.certificatePem)
    await refusedClearly(t, await startGateway({ certificate: { certificateFile: unregisteredCert, privateKeyFile: otherKey } }), 'certificate not registered on the app', /AADSTS700027/)
    await refusedClearly(t, await startGateway({ certificate: { certificateFile: join(dir, 'missing.pem'), privateKeyFile: keyFile } }), 'missing certificate file', /Cannot read the certificate file .*ENOENT/, /Cannot read the certificate file \/.*missing\.pem \(ENOENT\)/)
    await refusedClearly(t, await startGateway({ federatedTokenFile: join(dir, 'no-token') }), 'missing token file', /Cannot read the federated token file .*ENOENT/, /Cannot read the federated token file \/.*no-token \(ENOENT\)/)
    await refusedClearly(t, await startGateway({ managedIdentity: { clientId: '3a7e0000-0000-4000-8000-0000000000ff' } }), 'unknown managed identity', /No token from user-assigned managed identity 3a7e0000-0000-4000-8000-0000000000ff/)
  })
})
