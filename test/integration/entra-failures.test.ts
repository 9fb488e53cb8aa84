import { Writable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS, startEmulator, type FailureRule } from '../../src/emulator'
import { freePort } from '../../src/net/free-port'
import { MsalKit } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'
import { startUpstreamRecorder } from '../helpers/upstream-recorder'

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const MFA_CLAIMS = '{"access_token":{"polids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}'
const CA_CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["3e5e4b1c-7b0b-4f38-8a7d-4c2b8e1d9f00"]}}}'
const b64 = (s: string): string => Buffer.from(s).toString('base64')

t.test('Entra failures through the gateway: real msal-node, emulator, real upstream', async (t) => {
  const { emulator, kit, recorder } = await startTestbed(t)

  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0 },
    identity: {
      ...devGatewayIdentity(emulator),
      // Short, so the slow case ends quickly; the emulator waits longer than this.
      timeoutMs: 800
    },
    routes: [{
      prefix: '/rec',
      upstream: recorder.url,
      user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] },
      app: { requireRoles: ['Gateway.Relay'], scopes: [`${SAMPLE}/.default`] }
    }]
  }, { source: 'test' })
  const gateway = await buildGateway(config, { logger: { level: 'info', stream } })
  t.teardown(() => gateway.close())
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 })

  // A fresh sign-in per call: the gateway caches per incoming token, and each case must reach Entra.
  const freshToken = async (who: 'alice' | 'bob' = 'alice'): Promise<string> =>
    (await kit.signIn(who === 'alice' ? {} : { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password })).accessToken
  const call = async (token: string): Promise<{ status: number, headers: Record<string, unknown>, body: Record<string, unknown> }> => {
    const res = await request(`${url}/rec/items`, { headers: { authorization: `Bearer ${token}` } })
    return { status: res.statusCode, headers: res.headers, body: await res.body.json() as Record<string, unknown> }
  }
  const errorLogsSince = (n: number): Array<Record<string, unknown>> => logs.slice(n).filter((l) => l.level === 50)

  await t.test('MFA in both of Entra\'s shapes: 401 insufficient_claims with the claims, base64', async (t) => {
    for (const [kind, claims] of [['mfa_interaction_required', MFA_CLAIMS], ['mfa_basic_action', CA_CLAIMS]] as const) {
      emulator.failures.inject({ grant: 'obo', kind, times: 1 })
      const res = await call(await freshToken())
      t.equal(res.status, 401, kind)
      t.match(res.headers['www-authenticate'], `error="insufficient_claims", claims="${b64(claims)}"`, kind)
      t.match(res.body, { error: 'insufficient_claims', correlation_id: String }, kind)
    }
  })

  await t.test('consent missing: 403 with proposedAction="consent"', async (t) => {
    emulator.failures.inject({ grant: 'obo', kind: 'consent_required', times: 1 })
    const res = await call(await freshToken())
    t.equal(res.status, 403)
    t.match(res.headers['www-authenticate'], /error="insufficient_scope", scope="api:\/\/bf8d80f9-9098-4972-b203-500f535113b1\/Items\.Read", proposedAction="consent", consentUri="https:\/\//)
    t.match(res.body, { error: 'consent_required' })
  })

  await t.test('the incoming token refused as an assertion (500133, 500131, 7000114): 401 invalid_token', async (t) => {
    // Within the gateway's clock skew but past Entra's expiry: Entra answers 500133 itself.
    const now = Math.floor(Date.now() / 1000)
    const alice = await freshToken()
    const claims = JSON.parse(Buffer.from(alice.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
    const nearlyExpired = emulator.keys.sign(DEV_IDS.tenantId, { ...claims, exp: now - 30 })
    const expired = await call(nearlyExpired)
    t.equal(expired.status, 401)
    t.match(expired.headers['www-authenticate'], /error="invalid_token"/)
    t.match(expired.body, { error: 'invalid_token', error_description: /expired/ })
    t.match(emulator.records.tokenRequests().at(-1), { status: 400, userObjectId: DEV_IDS.alice.objectId }, 'Entra was asked and refused')

    for (const [code, error] of [[500131, 'invalid_grant'], [7000114, 'unauthorized_client']] as const) {
      emulator.failures.inject({ grant: 'obo', kind: 'response', status: 400, times: 1, body: { error, error_description: `AADSTS${code}: refused.\r\nTrace ID: x`, error_codes: [code] } })
      const res = await call(await freshToken())
      t.equal(res.status, 401, `AADSTS${code}`)
      t.match(res.headers['www-authenticate'], /error="invalid_token"/)
      t.match(res.body, { error: 'invalid_token' })
    }
  })

  await t.test('what the client cannot fix: invalid scope 502, bad gateway credential 503, both logged at error level', async (t) => {
    let mark = logs.length
    emulator.failures.inject({ grant: 'obo', kind: 'invalid_scope', times: 1 })
    const scope = await call(await freshToken())
    t.equal(scope.status, 502)
    t.match(scope.body, { error: 'token_acquisition_failed', error_description: /scopes configured for this route are not valid.*AADSTS70011/ })
    t.match(errorLogsSince(mark), [{ msg: /AADSTS70011/ }])

    mark = logs.length
    emulator.failures.inject({ grant: 'obo', kind: 'invalid_client_secret', times: 1 })
    const credential = await call(await freshToken())
    t.equal(credential.status, 503)
    t.match(credential.body, { error: 'gateway_credential_invalid', error_description: /client secret.*AADSTS7000215/ })
    t.match(errorLogsSince(mark), [{ msg: /AADSTS7000215/ }])
    t.notMatch(JSON.stringify(logs), DEV_IDS.gateway.secret, 'the secret is in no log line')
  })

  await t.test('Entra 5xx, 429 or too slow: 503 with Retry-After (Entra\'s when it sent one)', async (t) => {
    const cases: Array<[string, FailureRule, string]> = [
      ['500', { grant: 'obo', kind: 'server_error', times: 1 }, '30'],
      ['503 + Retry-After', { grant: 'obo', kind: 'server_error', status: 503, retryAfterSeconds: 3, times: 1 }, '3'],
      ['429 + Retry-After', { grant: 'obo', kind: 'throttled', retryAfterSeconds: 9, times: 1 }, '9'],
      ['slower than identity.timeoutMs', { grant: 'obo', kind: 'slow', delayMs: 2_000, times: 1 }, '30']
    ]
    for (const [name, rule, retryAfter] of cases) {
      emulator.failures.inject(rule)
      const res = await call(await freshToken())
      t.equal(res.status, 503, name)
      t.equal(res.headers['retry-after'], retryAfter, name)
      t.match(res.body, { error: 'identity_unavailable' }, name)
    }
    emulator.failures.inject({ grant: 'client_credentials', clientId: DEV_IDS.gateway.clientId, kind: 'throttled', retryAfterSeconds: 4, times: 1 })
    const daemon = (await kit.appToken()).accessToken
    const app = await call(daemon)
    t.equal(app.status, 503, 'client credentials too')
    t.equal(app.headers['retry-after'], '4')
  })

  await t.test('one user\'s throttling never blocks another user', async (t) => {
    const [alice, bob] = [await freshToken('alice'), await freshToken('bob')]
    emulator.failures.inject({ grant: 'obo', userObjectId: DEV_IDS.alice.objectId, kind: 'throttled', retryAfterSeconds: 60, times: 1 })
    const before = emulator.records.tokenRequests().length
    const throttled = await call(alice)
    t.equal(throttled.status, 503)
    t.equal(throttled.headers['retry-after'], '60')

    const other = await call(bob)
    t.equal(other.status, 200, 'bob, same client, authority and scopes, right after: served')
    const seen = emulator.records.tokenRequests().slice(before)
    t.match(seen, [{ userObjectId: DEV_IDS.alice.objectId, status: 429 }, { userObjectId: DEV_IDS.bob.objectId, status: 200 }], 'the emulator saw bob\'s request: msal did not refuse it locally')

    const again = await call(alice)
    t.equal(again.status, 200, 'alice herself is not locked out by msal either; retrying is the client\'s call')
  })
})

t.test('Entra unreachable: the 503 says what failed but names no address; the error log line and /readyz do', async (t) => {
  // An emulator of this test's own: it is stopped halfway.
  const emulator = await startEmulator()
  let stopped = false
  t.teardown(async () => { if (!stopped) await emulator.close() })
  const kit = new MsalKit(emulator)
  t.teardown(() => kit.close())
  const recorder = await startUpstreamRecorder()
  t.teardown(() => recorder.close())

  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  const gateway = async (identity: Record<string, unknown>): Promise<string> => {
    const config = resolveConfig({
      server: { host: '127.0.0.1', port: 0 },
      identity,
      routes: [{ prefix: '/rec', upstream: recorder.url, user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] } }]
    }, { source: 'test' })
    const app = await buildGateway(config, { logger: { level: 'info', stream } })
    t.teardown(() => app.close())
    return await app.listen({ host: '127.0.0.1', port: 0 })
  }
  const get = async (url: string, token?: string): Promise<{ status: number, text: string, body: Record<string, unknown> }> => {
    const res = await request(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    const text = await res.body.text()
    return { status: res.statusCode, text, body: JSON.parse(text) as Record<string, unknown> }
  }
  const errorLine = (correlationId: unknown): Record<string, unknown> | undefined => logs.find((l) => l.level === 50 && l.reqId === correlationId)
  const [first, second] = [(await kit.signIn()).accessToken, (await kit.signIn()).accessToken]

  await t.test('the OpenID metadata cannot be loaded', async (t) => {
    const where = `127.0.0.1:${await freePort()}`
    const url = await gateway({ ...devGatewayIdentity(emulator), instance: `https://${where}` })
    const answer = await get(`${url}/rec/items`, first)
    t.equal(answer.status, 503)
    t.match(answer.body, { error: 'identity_unavailable', error_description: 'The OpenID metadata of the token issuer could not be loaded (ECONNREFUSED); retry later', correlation_id: String })
    t.notOk(answer.text.includes(where), `the body names no address: ${answer.text}`)
    t.match(errorLine(answer.body.correlation_id), { msg: `The OpenID metadata of https://${where}/${DEV_IDS.tenantId} could not be loaded (connect ECONNREFUSED ${where})` }, 'the error line does')
    const ready = await get(`${url}/readyz`)
    t.match(ready.body, { status: 'not_ready', checks: { identity: { status: 'failed', detail: `OpenID metadata of https://${where}/${DEV_IDS.tenantId}: connect ECONNREFUSED ${where}` } } }, 'and so does /readyz')
  })

  await t.test('the token endpoint cannot be reached', async (t) => {
    const url = await gateway(devGatewayIdentity(emulator))
    t.equal((await get(`${url}/rec/items`, first)).status, 200, 'keys, metadata and the authority are loaded')
    stopped = true
    await emulator.close()
    const answer = await get(`${url}/rec/items`, second)
    t.equal(answer.status, 503)
    t.match(answer.body, { error: 'identity_unavailable', error_description: 'Entra ID is unavailable (unreachable); retry later', correlation_id: String })
    t.notOk(answer.text.includes(emulator.host), `the body names no address: ${answer.text}`)
    t.match(errorLine(answer.body.correlation_id), { msg: `POST ${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token failed: connect ECONNREFUSED ${emulator.host}` }, 'the error line does')
  })
})
