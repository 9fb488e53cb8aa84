import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { buildGateway } from '../../src/app'
import { resolveConfig } from '../../src/config/load'
import { devGatewayIdentity } from '../../src/dev/dev-identity'
import { DEV_IDS } from '../../src/emulator'
import { startTestbed } from '../helpers/testbed'

// Request targets a security review sent as raw bytes (no client library normalises them first),
// against a gateway whose routes nest: /graph for Alice's scope, /graph/admin for a scope she lacks.

const READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`

interface RawAnswer { status: number, headers: Record<string, string>, body: Record<string, unknown>, text: string }

async function setup (t: Test) {
  const bed = await startTestbed(t)
  const config = resolveConfig({
    server: { host: '127.0.0.1', port: 0, overload: { maxEventLoopDelayMs: 0 } },
    identity: devGatewayIdentity(bed.emulator),
    routes: [
      { prefix: '/graph', upstream: `${bed.recorder.url}/base`, user: { requireScopes: ['access_as_user'], scopes: [READ] } },
      { prefix: '/graph/admin', upstream: `${bed.recorder.url}/base/admin`, user: { requireScopes: ['Nobody.Has.This'], scopes: [READ] } }
    ]
  }, { source: 'test' })
  const logLines: Array<Record<string, unknown>> = []
  const gateway = await buildGateway(config, { logger: { level: 'info', stream: { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>) } } } })
  t.teardown(() => gateway.close())
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 })
  const token = (await bed.kit.signIn()).accessToken
  /** `target` exactly as written on the request line; `headers` replace the default Host and Authorization lines. */
  const send = async (target: string, headers = `host: gw.example\r\nauthorization: Bearer ${token}\r\n`): Promise<RawAnswer> => {
    const raw = await rawExchange(url, `GET ${target} HTTP/1.1\r\n${headers}connection: close\r\n\r\n`)
    return parseAnswer(raw)
  }
  return { ...bed, token, send, logLines }
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

t.test('an absolute-form target is refused rather than read from its path', async (t) => {
  const { send, recorder } = await setup(t)
  // The router takes /graph/x from it; the raw target used to put 'admin' under /graph's base.
  for (const target of ['http://admin/graph/x', 'https://admin/graph/x', 'http://gw.example/graph/x']) {
    isErrorAnswer(t, await send(target), 400, 'bad_path', target)
  }
  t.same(recorder.requests.map((r) => r.url), [], 'none reached the upstream')
  t.equal((await send('/graph/x')).status, 200, 'the same path in origin-form is forwarded')
})
