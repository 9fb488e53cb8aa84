import t from 'tap'
import { clientResponseHeaders, mergeVary, upstreamRequestHeaders } from '../../src/forwarding/headers'
import { refuseQueryToken } from '../../src/forwarding/query-token'
import { targetPath } from '../../src/forwarding/target-path'

t.test('the upstream path is the path below the prefix, on the upstream base', async (t) => {
  t.equal(targetPath('/graph/me?x=1', '/graph', '/v1.0'), '/v1.0/me?x=1')
  t.equal(targetPath('/graph', '/graph', '/v1.0/'), '/v1.0')
  t.equal(targetPath('/graph?$select=id', '/graph', '/'), '/?$select=id')
  t.equal(targetPath('/graph/a%20b/c', '/graph', ''), '/a%20b/c', 'encoding is kept as the client sent it')
  for (const bad of ['/graph/../admin', '/graph/%2e%2e/admin', '/graph/a%2Fb', '/graph/a%5cb', '/graph//x', '/graph/%E0%A4%A', '/graph/./x']) {
    t.throws(() => targetPath(bad, '/graph', '/v1.0'), { code: 'OBO_BAD_PATH' }, bad)
  }
  t.throws(() => targetPath('/graphx', '/graph', '/'), { code: 'OBO_BAD_PATH' })
})

const CLIENT_CLAIMS = {
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-port': '443',
  forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
  'x-real-ip': '6.6.6.6',
  'true-client-ip': '6.6.6.6',
  'x-original-url': '/admin',
  'x-rewrite-url': '/admin'
}
const CTX = { downstreamToken: 'downstream', peerAddress: '127.0.0.1', protocol: 'http', host: 'gateway.example', correlationId: 'corr-1' }

t.test('request headers: credentials, hop-by-hop and the client\'s forwarding claims out, the gateway\'s own and the downstream token in', async (t) => {
  const out = upstreamRequestHeaders({
    authorization: 'Bearer incoming',
    cookie: 'session=1',
    connection: 'keep-alive, x-secret-hop',
    'x-secret-hop': '1',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    expect: '100-continue',
    'proxy-authorization': 'Basic x',
    host: 'gateway.example',
    ...CLIENT_CLAIMS,
    'client-request-id': 'spoofed',
    'content-type': 'application/json',
    accept: 'application/json'
  }, CTX, false)
  t.same(out, {
    'content-type': 'application/json',
    accept: 'application/json',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'gateway.example',
    'client-request-id': 'corr-1',
    authorization: 'Bearer downstream'
  })
  t.same(Object.keys(out).slice(0, 5), ['authorization', 'client-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'],
    'the gateway\'s own headers come first, so an upstream that stops reading at N fields still sees them')
})

t.test('request headers behind a trusted load balancer: its X-Forwarded-For chain with its own address appended, its Proto and Host kept', async (t) => {
  const lb = { ...CLIENT_CLAIMS, 'x-forwarded-for': '203.0.113.7, 10.0.0.2', host: 'gateway.internal' }
  t.same(upstreamRequestHeaders(lb, { ...CTX, peerAddress: '10.0.0.3', host: 'gateway.internal' }, true), {
    authorization: 'Bearer downstream',
    'client-request-id': 'corr-1',
    'x-forwarded-for': '203.0.113.7, 10.0.0.2, 10.0.0.3',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.example'
  }, 'the rest (Forwarded, X-Real-IP, X-Original-URL, other X-Forwarded-*) is dropped all the same')
  t.same(upstreamRequestHeaders({ host: 'gateway.internal' }, { ...CTX, peerAddress: '10.0.0.3', host: 'gateway.internal' }, true), {
    authorization: 'Bearer downstream',
    'client-request-id': 'corr-1',
    'x-forwarded-for': '10.0.0.3',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'gateway.internal'
  }, 'without them, the gateway\'s own view')
  t.equal(upstreamRequestHeaders({}, { ...CTX, peerAddress: undefined }, false)['x-forwarded-for'], undefined, 'a peer already gone is not named')
})

t.test('response headers: hop-by-hop and CORS stripped, the rest passed', async (t) => {
  t.same(clientResponseHeaders({
    connection: 'close, x-hop',
    'x-hop': '1',
    'transfer-encoding': 'chunked',
    'access-control-allow-origin': '*',
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': '*',
    'content-type': 'text/plain',
    'set-cookie': ['a=1', 'b=2'],
    'www-authenticate': 'Bearer error="insufficient_claims"',
    missing: undefined
  }), { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'www-authenticate': 'Bearer error="insufficient_claims"' })
})

t.test('Vary: the gateway\'s and the upstream\'s tokens, each once, * for anything', async (t) => {
  t.equal(mergeVary('Origin', 'x-tenant'), 'Origin, x-tenant')
  t.equal(mergeVary('Origin', 'origin, Accept-Encoding'), 'Origin, Accept-Encoding', 'case-insensitive, the first spelling kept')
  t.equal(mergeVary('Origin', ['Accept', 'accept-language,  Origin']), 'Origin, Accept, accept-language')
  t.equal(mergeVary('Origin', '*'), '*')
  t.equal(mergeVary('Origin', undefined), 'Origin')
  t.equal(mergeVary(undefined, ['a', 'b']), 'a, b')
  t.equal(mergeVary(undefined, undefined), undefined)
})

t.test('access_token in the query is refused in every spelling an upstream framework would read as it', async (t) => {
  for (const url of ['/api/x?access_token=eyJ.a.b', '/api?a=1&access_token=t', '/api?access_token', '/api?access_token=', '/api?ACCESS_TOKEN=t', '/api?Access_Token=t',
    '/api?access%5Ftoken=t', '/api?%61ccess_token=t', '/api?a=1;access_token=t', '/api?access.token=t', '/api?access+token=t', '/api?access%20token=t', '/api?access_token[]=t', '/api?access_token[0]=t']) {
    t.throws(() => { refuseQueryToken(url) }, { code: 'OBO_TOKEN_IN_QUERY' }, url)
  }
  for (const url of ['/api/access_token', '/api?q=access_token', '/api?my_access_token=1', '/api?access_tokens=1', '/api?id_token=t', '/api?access_toke=1', '/api?%E0%A4%A=1', '/api?']) {
    t.doesNotThrow(() => { refuseQueryToken(url) }, url)
  }
})
