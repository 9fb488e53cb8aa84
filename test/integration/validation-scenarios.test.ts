import t, { type Test } from 'tap'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import { Pool } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, type RunningEmulator } from '../../src/emulator'
import { jwtClaims, jwtHeader } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'
import { EVIL, FABRIKAM, multiTenantSeed } from '../helpers/seeds'
import { type UpstreamRecorder } from '../helpers/upstream-recorder'

const SAMPLE = DEV_IDS.sampleApi.identifierUri

async function gatewayFor (t: Test, emulator: RunningEmulator, recorder: UpstreamRecorder, identity: Record<string, unknown>, user: Record<string, unknown> = {}): Promise<Pool> {
  const config = resolveConfig({
    // Load shedding is off: 1,000 RSA signatures in this same process stall its event loop for
    // seconds, and under-pressure then answered 503 overloaded for some of the random kids.
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: { ...devGatewayIdentity(emulator), ...identity },
    routes: [{ prefix: '/api', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`], ...user } }]
  }, { source: 'test' })
  const gateway = await buildGateway(config)
  t.teardown(() => gateway.close())
  const pool = new Pool(await gateway.listen({ host: '127.0.0.1', port: 0 }), { connections: 16 })
  t.teardown(() => pool.close())
  return pool
}

async function get (pool: Pool, token: string): Promise<{ status: number, headers: Record<string, unknown>, body: Record<string, unknown> }> {
  const res = await pool.request({ method: 'GET', path: '/api/x', headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, headers: res.headers, body: await res.body.json() as Record<string, unknown> }
}

t.test('multi-tenant: allowed tenants pass with their own keys and OBO goes to their own tenant; others get 401', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t, { seed: multiTenantSeed() })
  const pool = await gatewayFor(t, emulator, recorder, { tenantId: 'organizations', allowedTenants: [DEV_IDS.tenantId, FABRIKAM.tenantId] })

  const carol = (await kit.signIn({ tenant: FABRIKAM.tenantId, username: FABRIKAM.user.username, password: FABRIKAM.user.password })).accessToken
  t.equal(jwtClaims(carol).iss, `${emulator.url}/${FABRIKAM.tenantId}/v2.0`)
  t.equal((await get(pool, carol)).status, 200)
  t.match(jwtClaims(String(recorder.requests.at(-1)?.headers.authorization).slice(7)), { tid: FABRIKAM.tenantId, oid: FABRIKAM.user.objectId })
  t.ok(emulator.records.tokenRequests().some((r) => r.tenantId === FABRIKAM.tenantId && r.grantType.includes('jwt-bearer')), 'the OBO call went to the caller\'s tenant')

  t.equal((await get(pool, (await kit.signIn()).accessToken)).status, 200, 'the home tenant too')
  t.ok(emulator.keys.jwksFetches(FABRIKAM.tenantId) >= 1 && emulator.keys.jwksFetches(DEV_IDS.tenantId) >= 1, 'keys fetched per tenant')

  const mallory = (await kit.signIn({ tenant: EVIL.tenantId, username: EVIL.user.username, password: EVIL.user.password })).accessToken
  const refused = await get(pool, mallory)
  t.equal(refused.status, 401)
  t.equal(refused.body.error_description, `Tenant ${EVIL.tenantId} is not allowed to call this API`)
  t.equal(emulator.keys.jwksFetches(EVIL.tenantId), 0, 'no key of a tenant that is not allowed is ever fetched')
})

t.test('v1 tokens: sts.windows.net issuer, aud as App ID URI or client id', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t, { seed: multiTenantSeed({ gatewayTokenVersion: 1 }) })
  const pool = await gatewayFor(t, emulator, recorder, { tenantId: DEV_IDS.tenantId })
  for (const resource of [DEV_IDS.gateway.identifierUri, DEV_IDS.gateway.clientId]) {
    const token = (await kit.signIn({ scopes: [`${resource}/access_as_user`] })).accessToken
    t.match(jwtClaims(token), { ver: '1.0', iss: `https://sts.windows.net/${DEV_IDS.tenantId}/`, aud: resource, appid: DEV_IDS.devClient.clientId })
    t.ok(jwtHeader(token).x5t, 'v1 tokens carry x5t')
    const res = await get(pool, token)
    t.equal(res.status, 200, `aud ${resource}`)
    t.match(jwtClaims(String(recorder.requests.at(-1)?.headers.authorization).slice(7)), { oid: DEV_IDS.alice.objectId, aud: DEV_IDS.sampleApi.clientId })
  }
})

t.test('key rollover: a new key is learned with one refetch; random kids cannot delay that beyond one cooldown', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const cooldownMs = 1000
  const pool = await gatewayFor(t, emulator, recorder, { tenantId: DEV_IDS.tenantId, keyRefreshCooldownSeconds: cooldownMs / 1000 })
  t.equal((await get(pool, (await kit.signIn()).accessToken)).status, 200)
  const fetches = (): number => emulator.keys.jwksFetches(DEV_IDS.tenantId)
  await sleep(cooldownMs + 100)

  const before = fetches()
  await emulator.keys.rotate(DEV_IDS.tenantId)
  const rotated = (await kit.signIn()).accessToken
  t.equal((await get(pool, rotated)).status, 200, 'a token signed by the new key validates...')
  t.equal(fetches(), before + 1, '...after exactly one JWKS refetch')

  await sleep(cooldownMs + 100)
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const claims = jwtClaims(rotated)
  const noiseStart = Date.now()
  const beforeNoise = fetches()
  const statuses = await Promise.all(Array.from({ length: 1000 }, () =>
    get(pool, createSigner({ key: attacker, algorithm: 'RS256', kid: randomUUID(), noTimestamp: true })(claims)).then((r) => r.status)))
  const noiseMs = Date.now() - noiseStart
  const notRefused = statuses.filter((s) => s !== 401)
  t.same(notRefused, [], `1,000 random kids: all 401 (other statuses: ${JSON.stringify(notRefused)})`)
  const noiseFetches = fetches() - beforeNoise
  t.ok(noiseFetches <= 1 + Math.floor(noiseMs / cooldownMs), `${noiseFetches} refetches in ${noiseMs} ms of noise (cooldown ${cooldownMs} ms)`)

  await emulator.keys.rotate(DEV_IDS.tenantId)
  const fresh = (await kit.signIn()).accessToken
  await sleep(cooldownMs + 100)
  t.equal((await get(pool, fresh)).status, 200, 'right after the noise, the newly rotated key is accepted once a cooldown has passed')
})

t.test('auth context step-up: capable clients get the claims challenge and pass after stepping up; others get 403', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)
  const pool = await gatewayFor(t, emulator, recorder, { tenantId: DEV_IDS.tenantId }, { authContext: 'c1' })

  const capable = (await kit.signIn({ clientCapabilities: ['CP1'] })).accessToken
  const challenged = await get(pool, capable)
  t.equal(challenged.status, 401)
  const header = String(challenged.headers['www-authenticate'])
  t.match(header, /error="insufficient_claims", claims="[A-Za-z0-9+/=]+", cc_type="authcontext"$/)
  t.equal(challenged.body.error, 'insufficient_claims')
  const claims = Buffer.from(/claims="([^"]+)"/.exec(header)?.[1] ?? '', 'base64').toString('utf8')
  t.same(JSON.parse(claims), { access_token: { acrs: { essential: true, value: 'c1' } } })

  const steppedUp = (await kit.signIn({ clientCapabilities: ['CP1'], claims })).accessToken
  t.same(jwtClaims(steppedUp).acrs, ['c1'])
  t.equal((await get(pool, steppedUp)).status, 200)

  const incapable = await get(pool, (await kit.signIn()).accessToken)
  t.equal(incapable.status, 403)
  t.equal(incapable.body.error, 'client_capability_required')
  t.match(incapable.body.error_description, /cp1/)
})
