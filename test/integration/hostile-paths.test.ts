import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { buildGateway } from '../../src/app'
import { buildAdminListener } from '../../src/server/admin-listener'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { startTestbed } from '../helpers/testbed'

// Request targets and Host headers (the target URI's two halves) a security review sent as raw
// bytes, which no client library normalises first, to a gateway whose routes nest: /graph for
// Alice's scope, /graph/admin for a scope she lacks.

const READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`

interface RawAnswer { status: number, headers: Record<string, string>, body: Record<string, unknown>, text: string }

async function setup (t: Test, server: Record<string, unknown> = {}, nested = true) {
  const bed = await startTestbed(t)
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 }, ...server },
    identity: devGatewayIdentity(bed.emulator),
    routes: [
      { prefix: '/graph', upstream: `${bed.recorder.url}/base`, user: { requireScopes: ['access_as_user'], scopes: [READ] } },
      ...(nested ? [{ prefix: '/graph/admin', upstream: `${bed.recorder.url}/base/admin`, user: { requireScopes: ['Nobody.Has.This'], scopes: [READ] } }] : [])
    ]
  }, { source: 'test' })
  const logLines: Array<Record<string, unknown>> = []
  const gateway = await buildGateway(config, { logger: { level: 'info', stream: { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>) } } } })
  t.teardown(() => gateway.close())
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 })
  const token = (await bed.kit.signIn()).accessToken
  /** `target` exactly as written on the request line; `headers` replace the default Host and Authorization lines. */
  const send = async (target: string, headers = `host: gw.example\r\nauthorization: Bearer ${token}\r\n`, to = url): Promise<RawAnswer> => {
    const raw = await rawExchange(to, `GET ${target} HTTP/1.1\r\n${headers}connection: close\r\n\r\n`)
    return parseAnswer(raw)
  }
  return { ...bed, gateway, token, send, logLines }
}

async function rawExchange (url: string, head: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.write(head)
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('latin1')
}

function parseAnswer (raw: string): RawAnswer {
  const end = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
  const text = raw.slice(end + 4)
  let body: Record<string, unknown> = {}
  try { body = JSON.parse(text) as Record<string, unknown> } catch {}
  return { status: Number(statusLine.split(' ')[1]), headers, body, text }
}

/** DESIGN.md's error answer: the JSON body and the correlation id, in the body and the header. */
function isErrorAnswer (t: Test, answer: RawAnswer, status: number, error: string, name: string): void {
  t.equal(answer.status, status, `${name}: ${answer.status} ${answer.text.slice(0, 200)}`)
  t.same(Object.keys(answer.body).sort(), ['correlation_id', 'error', 'error_description'], `${name}: the gateway's JSON body`)
  t.equal(answer.body.error, error, `${name}: ${error}`)
  t.ok(answer.headers['client-request-id'] !== undefined && answer.headers['client-request-id'] === answer.body.correlation_id, `${name}: client-request-id is the body's correlation id`)
}

t.test('characters a request target may not hold raw are refused, in the path and in the query', async (t) => {
  const { send, recorder } = await setup(t)
  const refused = [
    '/graph/..#x', '/graph/%2e%2e#x', '/graph/..#/admin', '/graph/%2E%2E#/admin', '/graph/a#/../admin', '/graph/x?a=1#/..',
    '/graph/a"b', '/graph/<script>', '/graph/x?q=<b>', '/graph/x?q="'
  ]
  for (const target of refused) isErrorAnswer(t, await send(target), 400, 'bad_path', target)
  t.same(recorder.requests.map((r) => r.url), [], 'none reached the upstream')
  // Invalid too, but WHATWG URL (browsers, fetch) sends these raw in a query and axios its brackets.
  for (const target of ['/graph/x?filter[name]=a|b', '/graph/x?q={}^`', '/graph/a|b[1]^']) {
    t.equal((await send(target)).status, 200, `${target} is passed on`)
    t.equal(recorder.requests.at(-1)?.url, `/base${target.slice('/graph'.length)}`, `${target}: as sent`)
  }
})

t.test('encodings deeper than the gateway decodes, and Unicode that normalises to a dot or a slash, are refused', async (t) => {
  const { send, recorder } = await setup(t)
  const refused = [
    '/graph/%2525252e%2525252e/x', '/graph/%2525252e', '/graph/a/%252525252f/x', '/graph/..%2525253b/x', '/graph/a%2525255cb', '/graph/a%25252500',
    '/graph/%ef%bc%8e%ef%bc%8e/x', '/graph/%EF%BC%8E/x', '/graph/a%ef%bc%8fb', '/graph/a%ef%bc%bcb', '/graph/%e2%80%a5/x', '/graph/%ef%b9%92%ef%b9%92/x',
    '/graph/%ef%bc%8e%ef%bc%8e;x/y', '/graph/%25ef%25bc%258e%25ef%25bc%258e/x', '/graph/%ef%bd%81dmin/x'
  ]
  for (const target of refused) isErrorAnswer(t, await send(target), 400, 'bad_path', target)
  t.same(recorder.requests.map((r) => r.url), [], 'none reached the upstream')
  for (const target of ['/graph/caf%c3%a9', '/graph/%e6%97%a5%e6%9c%ac', '/graph/100%25', '/graph/a%252eb', '/graph/file%2525.txt', '/graph/%ef%bc%a1']) {
    t.equal((await send(target)).status, 200, `${target} is an ordinary path`)
    t.equal(recorder.requests.at(-1)?.url, `/base${target.slice('/graph'.length)}`, `${target}: as sent`)
  }
})

t.test('an absolute-form target is refused rather than read from its path', async (t) => {
  const { send, recorder } = await setup(t)
  // The router takes /graph/x from it; the raw target used to put 'admin' under /graph's base.
  for (const target of ['http://admin/graph/x', 'https://admin/graph/x', 'http://gw.example/graph/x']) {
    isErrorAnswer(t, await send(target), 400, 'bad_path', target)
  }
  t.same(recorder.requests.map((r) => r.url), [], 'none reached the upstream')
  t.equal((await send('/graph/x')).status, 200, 'the same path in origin-form is forwarded')
})

t.test('a nested route cannot be reached through the route it is nested in', async (t) => {
  const { send, recorder } = await setup(t)
  t.equal((await send('/graph/admin/x')).status, 403, 'the nested route itself: Alice lacks its scope')
  t.equal((await send('/graph/admi%6e/x')).status, 403, 'the router decodes an encoded letter once, so that is the nested route too')
  const aliases = ['/graph/admin;x/y', '/graph/admin;jsessionid=1', '/graph/Admin/x', '/graph/ADMIN', '/graph/aDmIn;a=b/c',
    '/graph/admin%3bx/y', '/graph/%2561dmin/x', '/graph/%252561dmin/x']
  for (const target of aliases) isErrorAnswer(t, await send(target), 400, 'bad_path', target)
  t.same(recorder.requests.map((r) => r.url), [], 'none reached the upstream')
  for (const target of ['/graph/administrator/x', '/graph/admins', '/graph/x/admin', '/graph/x/Admin;y', '/graph/adm;in']) {
    t.equal((await send(target)).status, 200, `${target} is /graph's`)
    t.equal(recorder.requests.at(-1)?.url, `/base${target.slice('/graph'.length)}`, `${target}: as sent`)
  }
})

t.test('without nested routes the same paths are forwarded as sent', async (t) => {
  const { send, recorder } = await setup(t, {}, false)
  for (const target of ['/graph/admin;x/y', '/graph/Admin/x', '/graph/%2561dmin/x', '/graph/admin/x']) {
    t.equal((await send(target)).status, 200, target)
    t.equal(recorder.requests.at(-1)?.url, `/base${target.slice('/graph'.length)}`, `${target}: as sent`)
  }
})

t.test('two Host headers, or one that is not host[:port], are refused with 400', async (t) => {
  const { send, recorder, token } = await setup(t)
  const auth = `authorization: Bearer ${token}\r\n`
  const refused = [
    'host: gw.example\r\nhost: evil.example', 'Host: gw.example\r\nHOST: gw.example', 'host: evil.example/<script>"',
    'host: gw.example/x', 'host: user@gw.example', 'host: gw.example:80x', 'host: gw.example:80:81', 'host: [::1', 'host: gw.example,evil.example', 'host: a%2fb'
  ]
  for (const host of refused) isErrorAnswer(t, await send('/graph/x', `${host}\r\n${auth}`), 400, 'bad_request', JSON.stringify(host))
  t.same(recorder.requests.map((r) => r.url), [], 'none reached the upstream')
  for (const host of ['gw.example', 'GW.Example.', 'gw.example:8443', '127.0.0.1:1', '[::1]:8080', '[2001:db8::1]', 'gw.example:', '  gw.example  ']) {
    t.equal((await send('/graph/x', `host: ${host}\r\n${auth}`)).status, 200, `host: ${JSON.stringify(host)} is passed`)
  }
})

t.test('a URL the router cannot decode is the gateway\'s JSON error and one log line, neither quoting the URL', async (t) => {
  const { send, recorder, gateway, logLines, token } = await setup(t, { adminPort: 0 })
  const adminUrl = await gateway.adminApp!.listen({ host: '127.0.0.1', port: 0 })
  const targets = ['/graph/%ff?access_token=SECRET', '/graph/%u002e?access_token=SECRET', '/graph/%c0%ae?code=SECRET', '/nowhere/%e0%a4%a?SECRET']
  for (const [port, base] of [['public', undefined], ['admin', adminUrl]] as const) {
    for (const target of targets) {
      const name = `${port} ${target}`
      const answer = await send(target, `host: gw.example\r\nauthorization: Bearer ${token}\r\n`, base)
      isErrorAnswer(t, answer, 400, 'bad_path', name)
      t.equal(answer.body.error_description, 'The path is not valid percent-encoding', name)
      t.match(answer.headers['content-type'], /^application\/json/, name)
      t.notMatch(answer.text, /SECRET|%ff|%u|%c0|%e0/i, `${name}: the URL is not quoted`)
    }
    const named = await send('/graph/%ff?x=SECRET', 'host: gw.example\r\nclient-request-id: 5f1c8c1e-0d9e-4c55-b0a4-3f3c2d1e0a9b\r\n', base)
    t.equal(named.headers['client-request-id'], '5f1c8c1e-0d9e-4c55-b0a4-3f3c2d1e0a9b', `${port}: the client's own correlation id is echoed`)
    const notPath = await send('ftp://gw.example/graph/x?SECRET', 'host: gw.example\r\n', base)
    isErrorAnswer(t, notPath, 400, 'bad_path', `${port}: a target that is no path`)
    t.equal(notPath.body.error_description, 'The request target is not a path')
  }
  t.same(recorder.requests, [], 'nothing reached the upstream')
  const lines = logLines.filter((l) => l.msg === 'request')
  t.equal(lines.length, 2 * (targets.length + 2), 'one request line for each')
  t.ok(lines.every((l) => l.status === 400 && l.code === 'FST_ERR_BAD_URL' && l.route === 'unmatched' && typeof l.reqId === 'string'), 'status, the router\'s code and the correlation id')
  t.match(lines.find((l) => l.reqId === '5f1c8c1e-0d9e-4c55-b0a4-3f3c2d1e0a9b'), { method: 'GET', path: '/graph/%ff', error: 'The path is not valid percent-encoding' })
  t.notMatch(JSON.stringify(logLines), /SECRET/, 'no log line holds the query')
})

t.test('the router\'s other refusals on a listener with routes of its own: 414 for a long parameter, 500 for a failed constraint', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const listener = async (addRoutes: (admin: Awaited<ReturnType<typeof buildAdminListener>>) => void): Promise<string> => {
    const admin = await buildAdminListener({
      logger: { level: 'info', stream: { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>) } } },
      challengeContext: { instance: 'https://login.example', tenantId: 'tid', clientId: 'gw' }
    })
    t.teardown(() => admin.close())
    addRoutes(admin)
    return await admin.listen({ host: '127.0.0.1', port: 0 })
  }
  const withParameter = await listener((admin) => { admin.get('/items/:id', async () => ({ ok: true })) })
  const long = parseAnswer(await rawExchange(withParameter, `GET /items/${'a'.repeat(200)}?SECRET HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`))
  isErrorAnswer(t, long, 414, 'bad_request', 'a parameter over maxParamLength')
  t.notMatch(long.text, /SECRET|aaaa/)

  const withConstraint = await listener((admin) => {
    admin.addConstraintStrategy({
      name: 'tenant',
      isAsync: true,
      storage: () => {
        const map = new Map<string, unknown>()
        return { get: (k: string) => map.get(k) ?? null, set: (k: string, v: unknown) => { map.set(k, v) } }
      },
      deriveConstraint: (_req: unknown, _ctx: unknown, done: (err: Error | null, value?: string) => void) => { done(new Error('constraint failed for /tenants/1?SECRET')) }
    } as unknown as Parameters<typeof admin.addConstraintStrategy>[0])
    admin.get('/tenants/:id', { constraints: { tenant: 'a' } }, async () => ({ ok: true }))
  })
  const failed = parseAnswer(await rawExchange(withConstraint, 'GET /tenants/1?SECRET HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'))
  isErrorAnswer(t, failed, 500, 'internal_error', 'an async constraint that failed')
  t.notMatch(failed.text, /SECRET|constraint/)

  t.same(logLines.filter((l) => l.msg === 'request').map((l) => [l.status, l.code]), [[414, 'FST_ERR_MAX_PARAM_LENGTH'], [500, 'FST_ERR_ASYNC_CONSTRAINT']])
  t.notMatch(JSON.stringify(logLines), /SECRET/)
})
