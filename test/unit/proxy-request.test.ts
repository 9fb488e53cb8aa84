import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { assertionFrom } from '../../src/validation/assertion'
import type { DownstreamToken } from '../../src/acquisition/token-acquirer'
import { resolveConfig } from '../../src/config/load'
import { Forwarder } from '../../src/forwarding/forwarder'
import { proxyRequest, type DownstreamTokens, type ProxiedRequest } from '../../src/pipeline/proxy-request'
import { principalFromClaims, type Principal } from '../../src/validation/principal'

const CAE = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
const TENANT = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'

interface Received { method: string, url: string, headers: IncomingHttpHeaders, body: string }

/** A real upstream on loopback: refuses the token `revoked` with a CAE claims challenge, answers the rest. */
async function startUpstream (t: Test): Promise<{ url: string, received: Received[] }> {
  const received: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() })
      if (req.headers.authorization === 'Bearer revoked') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="", error="insufficient_claims", claims="${Buffer.from(CAE).toString('base64')}"` })
        res.end()
        return
      }
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ seen: req.headers.authorization }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }
}

/** Token acquisition that hands out the scripted tokens in order and remembers each call. */
function scriptedTokens (issued: string[]): DownstreamTokens & { calls: string[] } {
  const calls: string[] = []
  const next = (what: string): DownstreamToken => {
    calls.push(what)
    const accessToken = issued.shift() ?? 'fresh'
    return { accessToken, expiresOn: null, cacheKey: `key-of-${accessToken}`, source: 'entra' }
  }
  return {
    calls,
    forUser: async (principal, assertion, scopes, options) => next(`user ${principal.objectId} ${assertion.token} ${scopes.join(',')}${options?.claims !== undefined ? ` claims=${options.claims}` : ''}`),
    forApp: async (principal, scopes) => next(`app ${principal.clientId} ${scopes.join(',')}`),
    evict: async (key) => { calls.push(`evict ${key}`) }
  }
}

async function setup (t: Test, issued: string[]) {
  const upstream = await startUpstream(t)
  const config = resolveConfig({
    identity: { tenantId: TENANT, clientId: TENANT, credential: { clientSecret: 's' } },
    routes: [{
      prefix: '/api',
      upstream: `${upstream.url}/base`,
      user: { requireScopes: ['access_as_user'], scopes: ['api://down/Items.Read'] },
      app: { requireRoles: ['Gateway.Relay'], scopes: ['api://down/.default'] }
    }]
  }, { source: 'test', env: {} })
  const route = config.routes[0]!
  const forwarder = new Forwarder(route)
  t.teardown(() => forwarder.close())
  const tokens = scriptedTokens(issued)
  return { upstream, tokens, target: { route, forwarder, tokens } }
}

const user = principalFromClaims({ scp: 'access_as_user', azp: 'spa', oid: 'alice', xms_cc: ['cp1'] }, TENANT)
const app = principalFromClaims({ roles: ['Gateway.Relay'], azp: 'daemon', oid: 'sp' }, TENANT)

function request (principal: Principal, overrides: Partial<ProxiedRequest> = {}): ProxiedRequest {
  return {
    principal,
    assertion: assertionFrom('incoming-token'),
    method: 'POST',
    url: '/api/items?top=2',
    headers: { authorization: 'Bearer incoming-token', 'content-type': 'text/plain', 'content-length': '5', host: 'gw.example' },
    body: Readable.from([Buffer.from('hello')]),
    continueBody: () => {},
    peerAddress: '10.0.0.9',
    protocol: 'https',
    correlationId: 'corr-1',
    signal: new EventEmitter(),
    ...overrides
  }
}

async function text (body: Buffer | Readable): Promise<string> {
  if (Buffer.isBuffer(body)) return body.toString()
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString()
}

t.test('a user: OBO token for the route\'s scopes, forwarded with the body below the upstream base', async (t) => {
  const { upstream, tokens, target } = await setup(t, ['downstream-1'])
  const answer = await proxyRequest(target, request(user))
  t.equal(answer.status, 201)
  t.same(JSON.parse(await text(answer.body)), { seen: 'Bearer downstream-1' })
  t.same(tokens.calls, ['user alice incoming-token api://down/Items.Read'])
  t.equal(upstream.received.length, 1)
  t.match(upstream.received[0], {
    method: 'POST',
    url: '/base/items?top=2',
    body: 'hello',
    headers: { authorization: 'Bearer downstream-1', 'x-forwarded-for': '10.0.0.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gw.example', 'client-request-id': 'corr-1' }
  })
})

t.test('a workload: client credentials for the route\'s app scopes', async (t) => {
  const { tokens, target } = await setup(t, ['app-token'])
  const answer = await proxyRequest(target, request(app, { method: 'GET', body: undefined, headers: {} }))
  t.same(JSON.parse(await text(answer.body)), { seen: 'Bearer app-token' })
  t.same(tokens.calls, ['app daemon api://down/.default'])
})

t.test('refusals come before any token is acquired or anything is sent', async (t) => {
  const { upstream, tokens, target } = await setup(t, [])
  const noScope = principalFromClaims({ scp: 'other', azp: 'spa', oid: 'bob' }, TENANT)
  await t.rejects(proxyRequest(target, request(noScope)), { code: 'OBO_INSUFFICIENT_SCOPE', scopes: ['access_as_user'] })
  await t.rejects(proxyRequest(target, request(user, { url: '/api/%2e%2e/admin' })), { code: 'OBO_BAD_PATH' })
  t.same(tokens.calls, [])
  t.same(upstream.received, [])
})

t.test('a client waiting to send its body is invited once the caller and the path have passed, and only then', async (t) => {
  const { upstream, target } = await setup(t, ['downstream-1', 'downstream-2'])
  const watched = (events: string[]): Partial<ProxiedRequest> => ({
    body: new Readable({ read () { events.push('body read'); this.push('hello'); this.push(null) } }),
    continueBody: () => { events.push('100 Continue') }
  })
  const passed: string[] = []
  t.equal((await proxyRequest(target, request(user, watched(passed)))).status, 201)
  t.same(passed, ['100 Continue', 'body read'])
  t.equal(upstream.received.at(-1)?.body, 'hello')

  const noScope = principalFromClaims({ scp: 'other', azp: 'spa', oid: 'bob' }, TENANT)
  for (const [name, refusal] of [['no scope', { principal: noScope }], ['bad path', { url: '/api/%2e%2e/admin' }]] as const) {
    const events: string[] = []
    await t.rejects(proxyRequest(target, request(user, { ...refusal, ...watched(events) })), name)
    t.same(events, [], `${name}: not invited, body not read`)
  }
})

t.test('a downstream claims challenge: the refused token is evicted and the request sent again with a token for those claims', async (t) => {
  const { upstream, tokens, target } = await setup(t, ['revoked', 'with-claims'])
  const answer = await proxyRequest(target, request(user))
  t.equal(answer.status, 201)
  t.same(tokens.calls, [
    'user alice incoming-token api://down/Items.Read',
    'evict key-of-revoked',
    `user alice incoming-token api://down/Items.Read claims=${CAE}`
  ])
  t.same(upstream.received.map((r) => [r.headers.authorization, r.body]), [['Bearer revoked', 'hello'], ['Bearer with-claims', 'hello']], 'the body is sent both times')
})

t.test('challenged again: the caller gets the challenge (cp1) or a sign-in-again refusal', async (t) => {
  const { target } = await setup(t, ['revoked', 'revoked', 'revoked', 'revoked'])
  await t.rejects(proxyRequest(target, request(user)), { code: 'OBO_INSUFFICIENT_CLAIMS', claims: CAE, origin: 'downstream' })
  const incapable = principalFromClaims({ scp: 'access_as_user', azp: 'spa', oid: 'carol' }, TENANT)
  await t.rejects(proxyRequest(target, request(incapable)), { code: 'OBO_DOWNSTREAM_CHALLENGE_UNSUPPORTED' })
})
