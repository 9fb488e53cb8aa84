import t from 'tap'
import { Client, request } from 'undici'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { buildSampleApi } from '../../src/dev/sample-api'
import { DEV_IDS } from '../../src/emulator'
import { jwtClaims as claimsOf } from '../helpers/msal-clients'
import { startTestbed } from '../helpers/testbed'

const SAMPLE = DEV_IDS.sampleApi.identifierUri

t.test('OBO end to end: real msal-node, emulator over TLS, gateway, real upstreams', async (t) => {
  const { emulator, kit: clients, recorder } = await startTestbed(t)
  const sampleApi = await buildSampleApi({ instance: emulator.url, tenantId: DEV_IDS.tenantId, clientId: DEV_IDS.sampleApi.clientId, identifierUri: SAMPLE, ca: [emulator.caPem] })
  t.teardown(() => sampleApi.close())
  const sampleApiUrl = await sampleApi.listen({ host: '127.0.0.1', port: 0 })

  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0 },
    identity: devGatewayIdentity(emulator),
    routes: [
      { prefix: '/api', upstream: sampleApiUrl, user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Read`] } },
      {
        prefix: '/rec',
        upstream: `${recorder.url}/base`,
        user: { requireScopes: ['access_as_user'], scopes: [`${SAMPLE}/Items.Write`] },
        app: { requireRoles: ['Gateway.Relay'], scopes: [`${SAMPLE}/.default`] }
      },
      { prefix: '/strict', upstream: recorder.url, user: { requireScopes: ['Admin.All'], scopes: [`${SAMPLE}/Items.Read`] } }
    ]
  }, { source: 'test' })
  const gateway = await buildGateway(config)
  t.teardown(() => gateway.close())
  const gatewayUrl = await gateway.listen({ host: '127.0.0.1', port: 0 })
  const call = (path: string, init: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string } = {}) =>
    request(`${gatewayUrl}${path}`, { method: init.method ?? 'GET', headers: init.headers ?? {}, ...(init.body !== undefined ? { body: init.body } : {}) })
  const challengeBase = `Bearer realm="", authorization_uri="${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize", client_id="${DEV_IDS.gateway.clientId}"`

  const aliceToken = (await clients.signIn()).accessToken
  const bearer = { authorization: `Bearer ${aliceToken}` }

  await t.test('a signed-in user reaches the sample API with a downstream token obtained on their behalf', async (t) => {
    const res = await call('/api/items?top=2', { headers: bearer })
    t.equal(res.statusCode, 200)
    const body = await res.body.json() as { url: string, token: Record<string, unknown>, caller: Record<string, unknown> }
    t.equal(body.url, '/items?top=2')
    t.equal(body.token.aud, DEV_IDS.sampleApi.clientId)
    t.equal(body.token.scp, 'Items.Read')
    t.equal(body.token.oid, DEV_IDS.alice.objectId)
    t.equal(body.token.azp, DEV_IDS.gateway.clientId)
    t.match(body.caller, { kind: 'user', objectId: DEV_IDS.alice.objectId })
  })

  await t.test('the upstream receives method, path, query, body and the downstream token, never the incoming one', async (t) => {
    const before = recorder.requests.length
    const res = await call('/rec/orders/42?expand=lines', {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json', cookie: 'session=secret', 'client-request-id': 'e2e-corr-1' },
      body: JSON.stringify({ qty: 3 })
    })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-upstream'], 'recorder')
    t.equal(res.headers['client-request-id'], 'e2e-corr-1')
    t.equal(res.headers.connection, 'keep-alive', 'Node\'s own keep-alive, not the upstream\'s hop-by-hop value passed on')
    await res.body.dump()
    t.equal(recorder.requests.length, before + 1)
    const seen = recorder.requests.at(-1)!
    t.equal(seen.method, 'POST')
    t.equal(seen.url, '/base/orders/42?expand=lines')
    t.equal(seen.body, '{"qty":3}')
    t.equal(seen.headers['content-type'], 'application/json')
    t.equal(seen.headers.cookie, undefined)
    t.equal(seen.headers['client-request-id'], 'e2e-corr-1')
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    const forwarded = String(seen.headers.authorization).replace(/^Bearer /, '')
    t.not(forwarded, aliceToken)
    t.match(claimsOf(forwarded), { aud: DEV_IDS.sampleApi.clientId, scp: 'Items.Write', oid: DEV_IDS.alice.objectId, azp: DEV_IDS.gateway.clientId })
  })

  await t.test('cp1 is declared to Entra only for callers that declared it themselves', async (t) => {
    const capable = (await clients.signIn({ clientCapabilities: ['CP1'] })).accessToken
    t.same(claimsOf(capable).xms_cc, ['CP1'])
    for (const [token, expected] of [[capable, ['cp1']], [aliceToken, undefined]] as const) {
      const res = await call('/rec/caps', { headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 200)
      await res.body.dump()
      const forwarded = String(recorder.requests.at(-1)!.headers.authorization).replace(/^Bearer /, '')
      t.same(claimsOf(forwarded).xms_cc, expected)
    }
  })

  await t.test('no token, a tampered signature and an expired token are 401 with the challenge', async (t) => {
    const none = await call('/api/items')
    t.equal(none.statusCode, 401)
    t.equal(none.headers['www-authenticate'], challengeBase)
    const noneBody = await none.body.json() as Record<string, string>
    t.equal(noneBody.error, 'missing_token')
    t.equal(noneBody.correlation_id, none.headers['client-request-id'])

    const [h, p, s] = aliceToken.split('.')
    const tampered = `${h}.${p}.${s!.slice(0, -4)}${s!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claimsOf(aliceToken), oid: DEV_IDS.bob.objectId })).toString('base64url')}.${s}`
    const now = Math.floor(Date.now() / 1000)
    const expired = emulator.keys.sign(DEV_IDS.tenantId, { ...claimsOf(aliceToken), iat: now - 7200, nbf: now - 7200, exp: now - 3600 })
    for (const [name, token] of [['tampered signature', tampered], ['forged claims', forged], ['expired', expired], ['garbage', 'not-a-jwt']] as const) {
      const res = await call('/api/items', { headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 401, name)
      t.equal(res.headers['www-authenticate'], `${challengeBase}, error="invalid_token"`, name)
      const body = await res.body.json() as Record<string, string>
      t.equal(body.error, 'invalid_token', name)
      t.notMatch(JSON.stringify(body), /eyJ/, `${name}: no token in the body`)
    }
  })

  await t.test('a valid token without the route\'s scope is 403 insufficient_scope', async (t) => {
    const res = await call('/strict/x', { headers: bearer })
    t.equal(res.statusCode, 403)
    t.equal(res.headers['www-authenticate'], `${challengeBase}, error="insufficient_scope", scope="Admin.All"`)
    t.match(await res.body.json(), { error: 'insufficient_scope' })
  })

  await t.test('a workload token is refused on a route without an app block and accepted on one with it', async (t) => {
    const daemonToken = (await clients.appToken()).accessToken
    t.match(claimsOf(daemonToken), { idtyp: 'app', roles: ['Gateway.Relay'] })
    const refused = await call('/api/items', { headers: { authorization: `Bearer ${daemonToken}` } })
    t.equal(refused.statusCode, 403)
    t.match(await refused.body.json(), { error: 'insufficient_scope', error_description: 'This route does not accept app-only tokens' })

    const accepted = await call('/rec/jobs', { headers: { authorization: `Bearer ${daemonToken}` } })
    t.equal(accepted.statusCode, 200)
    await accepted.body.dump()
    const forwarded = String(recorder.requests.at(-1)!.headers.authorization).replace(/^Bearer /, '')
    t.match(claimsOf(forwarded), { aud: DEV_IDS.sampleApi.clientId, roles: ['Items.Read.All'], idtyp: 'app', azp: DEV_IDS.gateway.clientId })
  })

  await t.test('unknown paths and traversal attempts get JSON errors, not 5xx', async (t) => {
    const unknown = await call('/nowhere', { headers: bearer })
    t.equal(unknown.statusCode, 404)
    t.match(await unknown.body.json(), { error: 'not_found' })
    // A raw client: WHATWG URL parsing would resolve the dot segments before they left the test.
    const raw = new Client(gatewayUrl)
    t.teardown(() => raw.close())
    const before = recorder.requests.length
    for (const path of ['/rec/%2e%2e/admin', '/rec/../admin', '/rec/a%2Fb', '/rec/a%5C..%5Cb', '/rec//x']) {
      const climb = await raw.request({ method: 'GET', path, headers: bearer })
      t.equal(climb.statusCode, 400, path)
      t.match(await climb.body.json(), { error: 'bad_path' }, path)
    }
    t.equal(recorder.requests.length, before, 'nothing reached the upstream')
  })
})
