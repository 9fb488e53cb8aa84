import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { buildSampleApi, CAE_DESCRIPTION } from '../../src/dev/sample-api'
import { DEV_IDS, startEmulator } from '../../src/emulator'
import { JWT_BEARER } from '../../src/emulator/grants/on-behalf-of'
import { jwtClaims, MsalKit } from '../helpers/msal-clients'

const SAMPLE = DEV_IDS.sampleApi.identifierUri
const REPLAY_LIMIT = 1024

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown> }
interface Seen { method: string, authorization: string, body: string, headers: IncomingHttpHeaders }

/** What a client does with a 401 insufficient_claims: take claims="..." out of WWW-Authenticate and base64-decode it. */
function challengedClaims (answer: Answer): string {
  const header = String(answer.headers['www-authenticate'] ?? '')
  const encoded = /error="insufficient_claims".*claims="([^"]+)"/.exec(header)?.[1]
  if (encoded === undefined) throw new Error(`no claims challenge in ${header}`)
  return atob(encoded)
}

/**
 * An upstream that, when armed, answers the next request with 401 and a claims challenge (the way
 * a CAE-enabled API demands a token newer than `nbf`), then 200 again; told to refuse, it answers
 * the next requests with a plain 401 that quotes the token in its challenge and its body, as some
 * APIs do. It records every request.
 */
async function startChallenger (): Promise<{ url: string, seen: Seen[], arm: (claims: string) => void, refuse: (times: number) => void, close: () => Promise<void> }> {
  const seen: Seen[] = []
  let armed: string | undefined
  let refusals = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ method: req.method ?? '', authorization: req.headers.authorization ?? '', body: Buffer.concat(chunks).toString('utf8'), headers: req.headers })
      if (refusals > 0) {
        refusals--
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer error="invalid_token", error_description="${req.headers.authorization ?? ''} is not valid"` })
        res.end(JSON.stringify({ error: 'invalid_token', token: req.headers.authorization }))
        return
      }
      if (armed !== undefined) {
        const claims = Buffer.from(armed).toString('base64')
        armed = undefined
        res.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="${DEV_IDS.sampleApi.clientId}", error="insufficient_claims", claims="${claims}"`
        })
        res.end(JSON.stringify({ error: { code: 'InvalidAuthenticationToken', message: 'token too old' } }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, bytes: Buffer.concat(chunks).length }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    arm: (claims) => { armed = claims },
    refuse: (times) => { refusals = times },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

t.test('claims challenges end to end: MFA policies, CAE revocation, downstream challenges', async (t) => {
  const emulator = await startEmulator()
  t.teardown(() => emulator.close())
  const kit = new MsalKit(emulator)
  t.teardown(() => kit.close())
  const sampleApi = await buildSampleApi({
    instance: emulator.url,
    tenantId: DEV_IDS.tenantId,
    clientId: DEV_IDS.sampleApi.clientId,
    identifierUri: SAMPLE,
    ca: [emulator.caPem],
    revocationTime: (tenantId, oid) => emulator.sessions.revocationTime(tenantId, oid)
  })
  t.teardown(() => sampleApi.close())
  const sampleApiUrl = await sampleApi.listen({ host: '127.0.0.1', port: 0 })
  const challenger = await startChallenger()
  t.teardown(() => challenger.close())

  const logs: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { logs.push(chunk.toString()); done() } })
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0 },
    identity: devGatewayIdentity(emulator),
    routes: [
      { prefix: '/api', upstream: sampleApiUrl, user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] } },
      { prefix: '/chal', upstream: challenger.url, user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Write`] }, replayBodyLimitBytes: REPLAY_LIMIT }
    ]
  }, { source: 'test' })
  const gateway = await buildGateway(config, { logger: { level: 'debug', stream } })
  t.teardown(() => gateway.close())
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 })

  const errorBodies: string[] = []
  const call = async (path: string, token: string, init: { method?: 'GET' | 'POST', body?: string } = {}): Promise<Answer> => {
    const res = await request(`${gatewayUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(init.body === undefined ? {} : { body: init.body })
    })
    const text = await res.body.text()
    if (res.statusCode >= 400) errorBodies.push(text)
    return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> }
  }
  const oboRequestsSince = (mark: number) => emulator.records.tokenRequests().slice(mark).filter((r) => r.grantType === JWT_BEARER)
  const bob = { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }

  await t.test('a signed-in user reaches the CAE-enabled sample API', async (t) => {
    const res = await call('/api/items', (await kit.signIn({ clientCapabilities: ['CP1'] })).accessToken)
    t.equal(res.status, 200)
    t.match(res.body, { api: 'sample-api', token: { aud: DEV_IDS.sampleApi.clientId, oid: DEV_IDS.alice.objectId, amr: ['pwd'], xms_cc: ['cp1'] } })
  })

  await t.test('MFA required for the downstream API: 401 with the policy\'s claims, a sign-in with them gets through with mfa in amr', async (t) => {
    const shapes = [
      { shape: 'interaction_required', resource: SAMPLE, capabilities: undefined, claimName: 'polids', aadsts: 50079 },
      { shape: 'basic_action', resource: DEV_IDS.sampleApi.clientId, capabilities: ['CP1'], claimName: 'capolids', aadsts: 50076 }
    ] as const
    for (const { shape, resource, capabilities, claimName, aadsts } of shapes) {
      const policy = emulator.mfa.require({ resource, shape, userObjectId: DEV_IDS.alice.objectId })
      const signIn = (claims?: string) => kit.signIn({ ...(capabilities === undefined ? {} : { clientCapabilities: [...capabilities] }), ...(claims === undefined ? {} : { claims }) })
      const mark = emulator.records.tokenRequests().length

      const refused = await call('/api/items', (await signIn()).accessToken)
      t.equal(refused.status, 401, shape)
      t.match(refused.headers['www-authenticate'], /^Bearer realm="", authorization_uri="[^"]+", client_id="[^"]+", error="insufficient_claims", claims="[A-Za-z0-9+/=]+"$/, shape)
      t.match(refused.body, { error: 'insufficient_claims', correlation_id: String }, shape)
      const claims = challengedClaims(refused)
      t.same(JSON.parse(claims), { access_token: { [claimName]: { essential: true, values: [policy.policyId] } } }, `${shape}: the policy's claims, as Entra sent them`)
      t.match(oboRequestsSince(mark), [{ status: 400, errorCode: aadsts, userObjectId: DEV_IDS.alice.objectId }], `${shape}: Entra refused the OBO`)
      t.equal(policy.hits(), 1)

      const other = await call('/api/items', (await kit.signIn(bob)).accessToken)
      t.equal(other.status, 200, `${shape}: a user the policy does not name is not asked for MFA`)

      const stepped = await signIn(claims)
      t.same(jwtClaims(stepped.accessToken).amr, ['pwd', 'mfa'], `${shape}: the sign-in with the claims completed MFA`)
      const passed = await call('/api/items', stepped.accessToken)
      t.equal(passed.status, 200, shape)
      t.match(passed.body, { token: { oid: DEV_IDS.alice.objectId, amr: ['pwd', 'mfa'] } }, `${shape}: the downstream token carries mfa`)
      policy.remove()
    }
  })

  await t.test('CAE revocation: the sample API\'s Graph-style challenge reaches a cp1 client, a new sign-in with the claims gets through', async (t) => {
    const before = await kit.signIn({ clientCapabilities: ['CP1'] })
    const warm = await call('/api/items', before.accessToken)
    t.equal(warm.status, 200, 'a cached downstream token before the revocation')
    const downstream = await kit.confidentialClient().acquireTokenOnBehalfOf({ oboAssertion: before.accessToken, scopes: [`${SAMPLE}/Items.Read`], skipCache: true })

    const revokedAt = emulator.sessions.revoke(DEV_IDS.tenantId, DEV_IDS.alice.objectId)
    t.equal(emulator.sessions.revocationTime(DEV_IDS.tenantId, DEV_IDS.alice.objectId), revokedAt)
    t.ok(Number(jwtClaims(before.accessToken).iat) < revokedAt, 'the token predates the revocation')

    // The sample API itself answers exactly like Microsoft Graph.
    const direct = await request(`${sampleApiUrl}/items`, { headers: { authorization: `Bearer ${downstream!.accessToken}` } })
    t.equal(direct.statusCode, 401)
    const nbfClaims = `{"access_token":{"nbf":{"essential":true, "value":"${revokedAt}"}}}`
    t.equal(direct.headers['www-authenticate'],
      `Bearer realm="", authorization_uri=${emulator.url}/common/oauth2/authorize, client_id="${DEV_IDS.sampleApi.clientId}", error="insufficient_claims", claims="${Buffer.from(nbfClaims).toString('base64')}", errorDescription="${CAE_DESCRIPTION}"`)
    t.same(await direct.body.json(), { error: { code: 'InvalidAuthenticationToken', message: CAE_DESCRIPTION } })

    const mark = emulator.records.tokenRequests().length
    const refused = await call('/api/items', before.accessToken)
    t.equal(refused.status, 401)
    t.match(refused.body, { error: 'insufficient_claims' })
    const claims = challengedClaims(refused)
    t.same(JSON.parse(claims), { access_token: { nbf: { essential: true, value: String(revokedAt) } } }, 'the nbf claims of the revocation')

    const attempts = oboRequestsSince(mark)
    t.equal(attempts.length, 1, 'the gateway asked Entra once, with the downstream\'s claims')
    t.match(attempts[0], { status: 400, errorCode: 50173, userObjectId: DEV_IDS.alice.objectId })
    t.match(JSON.parse(attempts[0]?.claims ?? '{}'), { access_token: { nbf: { essential: true, value: String(revokedAt) }, xms_cc: { values: ['cp1'] } } }, 'the OBO attempt carried the claims (and cp1)')

    const fresh = await kit.signIn({ clientCapabilities: ['CP1'], claims })
    t.ok(Number(jwtClaims(fresh.accessToken).iat) >= revokedAt, 'the new sign-in is not older than the revocation')
    const passed = await call('/api/items', fresh.accessToken)
    t.equal(passed.status, 200)
    t.match(passed.body, { token: { oid: DEV_IDS.alice.objectId } })
    t.ok(Number((passed.body.token as Record<string, unknown>).iat) >= revokedAt, 'the downstream token is newer than the revocation')
  })

  await t.test('CAE revocation for a client without cp1: the explanatory 401, not a raw challenge', async (t) => {
    const before = (await kit.signIn(bob)).accessToken
    t.equal((await call('/api/items', before)).status, 200)
    const revokedAt = emulator.sessions.revoke(DEV_IDS.tenantId, DEV_IDS.bob.objectId)
    const mark = emulator.records.tokenRequests().length

    const refused = await call('/api/items', before)
    t.equal(refused.status, 401)
    t.match(refused.body, { error: 'claims_challenge_unsupported', error_description: /cp1/i })
    t.match(refused.headers['www-authenticate'], /error="invalid_token"/)
    t.notMatch(refused.headers['www-authenticate'], /claims=|insufficient_claims/)
    t.match(oboRequestsSince(mark), [{ status: 400, errorCode: 50173, claims: new RegExp(`"nbf":\\{"essential":true, ?"value":"${revokedAt}"`) }], 'the gateway still tried Entra with the claims first')

    const again = await call('/api/items', (await kit.signIn(bob)).accessToken)
    t.equal(again.status, 200, 'a new sign-in works')
  })

  await t.test('a downstream challenge the gateway can satisfy is retried once; a body too large to replay gets the challenge', async (t) => {
    const token = (await kit.signIn({ clientCapabilities: ['CP1'] })).accessToken
    const demanded = `{"access_token":{"nbf":{"essential":true,"value":"${String(jwtClaims(token).iat)}"}}}`

    challenger.arm(demanded)
    let mark = challenger.seen.length
    const body = JSON.stringify({ qty: 3, note: 'twice' })
    const retried = await call('/chal/orders', token, { method: 'POST', body })
    t.equal(retried.status, 200, 'the client never saw the challenge')
    t.match(retried.body, { ok: true })
    const [first, second] = challenger.seen.slice(mark)
    t.equal(challenger.seen.length - mark, 2, 'the upstream saw the request twice')
    t.equal(first?.method, 'POST')
    t.equal(second?.method, 'POST')
    t.equal(first?.body, body, 'the body arrived intact the first time')
    t.equal(second?.body, body, 'and again on the retry')
    t.not(first?.authorization, second?.authorization, 'with a new downstream token')
    const retryToken = jwtClaims(String(second?.authorization).replace(/^Bearer /, ''))
    t.ok(Number(retryToken.iat) >= Number(jwtClaims(token).iat), 'not older than the demanded nbf')

    challenger.arm(demanded)
    mark = challenger.seen.length
    const large = JSON.stringify({ data: 'x'.repeat(REPLAY_LIMIT * 4) })
    const refused = await call('/chal/orders', token, { method: 'POST', body: large })
    t.equal(refused.status, 401, 'a body over replayBodyLimitBytes cannot be sent again')
    t.match(refused.body, { error: 'insufficient_claims' })
    t.same(JSON.parse(challengedClaims(refused)), JSON.parse(demanded), 'the downstream\'s claims, passed on')
    t.equal(challenger.seen.length - mark, 1, 'no retry')
    t.equal(challenger.seen.at(-1)?.body.length, large.length, 'the large body streamed through once, whole')
  })

  await t.test('a 401 without a claims challenge: retried once with a new OBO token; refused again, the gateway\'s 502, never the upstream\'s 401', async (t) => {
    const token = (await kit.signIn({ clientCapabilities: ['CP1'] })).accessToken
    const body = JSON.stringify({ qty: 1 })
    t.equal((await call('/chal/orders', token, { method: 'POST', body })).status, 200, 'a downstream token in the cache')

    challenger.refuse(1)
    let mark = challenger.seen.length
    let obo = emulator.records.tokenRequests().length
    const retried = await call('/chal/orders', token, { method: 'POST', body })
    t.equal(retried.status, 200, 'the client never saw the 401')
    const [refused, retry] = challenger.seen.slice(mark)
    t.equal(challenger.seen.length - mark, 2, 'the upstream saw the request twice')
    t.equal(retry?.body, body, 'the body sent again')
    t.not(retry?.authorization, refused?.authorization, 'with another downstream token')
    t.equal(oboRequestsSince(obo).length, 1, 'which the gateway got from Entra, not its cache')

    challenger.refuse(2)
    mark = challenger.seen.length
    const failed = await call('/chal/orders', token, { method: 'POST', body })
    t.equal(failed.status, 502)
    t.same(Object.keys(failed.body).sort(), ['correlation_id', 'error', 'error_description'])
    t.equal(failed.body.error, 'upstream_refused_token')
    t.equal(failed.headers['www-authenticate'], undefined, 'no challenge: the caller\'s token is fine')
    t.notMatch(JSON.stringify(failed.body), /Bearer|eyJ/, 'nothing of the upstream\'s answer')
    t.equal(challenger.seen.length - mark, 2, 'one retry only')
    t.ok(logs.some((line) => line.includes('OBO_UPSTREAM_REFUSED_TOKEN') && line.includes('error=\\"invalid_token\\"')), 'the log has the upstream\'s error code')

    challenger.refuse(1)
    mark = challenger.seen.length
    const large = JSON.stringify({ data: 'x'.repeat(REPLAY_LIMIT * 4) })
    const streamed = await call('/chal/orders', token, { method: 'POST', body: large })
    t.equal(streamed.status, 502, 'a body that cannot be sent again is not retried')
    t.equal(streamed.body.error, 'upstream_refused_token')
    t.equal(challenger.seen.length - mark, 1)
    obo = emulator.records.tokenRequests().length
    t.equal((await call('/chal/orders', token, { method: 'POST', body })).status, 200)
    t.equal(oboRequestsSince(obo).length, 1, 'the refused token was dropped: the next request got a new one from Entra')
    t.not(challenger.seen.at(-1)?.authorization, challenger.seen.at(-2)?.authorization)
  })

  await t.test('no token or secret in error bodies or logs', async (t) => {
    t.ok(errorBodies.length > 0 && logs.length > 0)
    for (const [name, text] of [['error bodies', errorBodies.join('\n')], ['logs', logs.join('\n')]] as const) {
      t.notMatch(text, /eyJ[A-Za-z0-9_-]+\.eyJ/, `${name}: no JWT`)
      t.notMatch(text, DEV_IDS.gateway.secret, `${name}: no client secret`)
      t.notMatch(text, DEV_IDS.alice.password, `${name}: no password`)
    }
  })
})
